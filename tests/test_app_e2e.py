"""End to end through the script API: `app.py --tiny` driven by gradio_client.

caption -> score / critique / revise / score all / best of N -> compose -> generate from the
reference frame -> two videos and run.json -> history, reload, import, judge; then the API's answers
to bad inputs and a client's cancel. The tiny models have random weights, so the assertions are
about wiring, files and shapes, never about what the text says.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from studio.caption.structured import ASPECTS, StructuredCaption


@pytest.fixture(scope="module")
def client(studio_server):
    return Client(studio_server.url, verbose=False)


def _path(value) -> Path:
    """A file output as the client returns it: a path, or a dict holding one."""
    if isinstance(value, dict):
        value = value.get("path") or value.get("value")
    return Path(value)


def run_ids(server) -> set[str]:
    return {p.parent.name for p in server.output_dir.glob("*/run.json")}


def test_full_flow(client, studio_server, reference_clip):
    clip = handle_file(str(reference_clip))

    # Caption shot 2 (numbered from 1, as `studio shots` and the page list them).
    caption = client.predict(clip, None, None, 2, False, api_name="/caption")
    texts = [caption["aspects"][a]["text"] for a in ASPECTS]
    assert all(isinstance(t, str) and t.strip() for t in texts), texts
    assert (caption["provenance"]["start"], caption["provenance"]["end"]) == (1.0, 2.0)
    assert caption["provenance"]["clip"] == "two_shots.mp4"  # a file name, never the server's upload path

    # The CHAI loop on one aspect.
    camera = "The camera holds still at eye level."
    assert 0.0 <= client.predict(clip, 0, 1, "Camera", camera, api_name="/score") <= 1.0
    assert client.predict(clip, 0, 1, "Camera", camera, api_name="/critique").strip()
    revised = client.predict(clip, 0, 1, "Camera", camera, "Mention the framing.", api_name="/revise")
    assert isinstance(revised, str) and revised.strip()
    rewards = client.predict(clip, 0, 1, caption, api_name="/score_all")
    assert set(rewards) == set(ASPECTS) and all(0 <= r <= 1 for r in rewards.values())
    ranked = client.predict(clip, 0, 1, "Subject", 2, api_name="/best_of_n")
    assert len(ranked) == 2 and ranked[0]["reward"] >= ranked[1]["reward"] and ranked[0]["text"].strip()

    # Compose (from readable texts: the tiny captioner's noise can run past the token limit), counted with
    # the tiny baseline's own tokenizer.
    readable = {"Subject": "A dog.", "Scene": "A park at noon.", "Motion": "The dog runs left.",
                "Spatial": "Wide shot, dog centred.", "Camera": revised[:200]}
    composed = client.predict(readable, "Extractive", 120, api_name="/compose")
    prompt = composed["prompt"]
    assert prompt and len(prompt.split()) <= 120 and composed["exact_tokens"] is True
    assert 0 < composed["tokens"] <= composed["token_limit"] == 512 and "coverage" in composed["report"]

    # Generate from the reference frame at 1.0 s: two videos, side_by_side.mp4 and run.json.
    before = run_ids(studio_server)
    settings = {"seconds": 0.3, "resolution": "64x64", "steps": 2, "seed": 11}
    result, files = client.predict(prompt, settings, clip, 1.0, api_name="/generate")
    run_id = result["run_id"]
    assert run_ids(studio_server) == before | {run_id} and result["seed"] == 11
    assert [side["video"] for side in result["sides"]] == ["finetuned.mp4", "baseline.mp4"]
    assert sorted(_path(f).name for f in files) == ["run.json", "side_by_side.mp4"]
    record = json.loads(next(_path(f) for f in files if _path(f).name == "run.json").read_text())
    assert record["prompt"] == prompt and record["seed"] == 11 and record["image"]["file"] == "start_image.png"
    assert (studio_server.output_dir / run_id / "start_image.png").is_file()

    # History, reload, a dropped run.json, the judge.
    assert run_id in [card["run_id"] for card in client.predict(api_name="/history")]
    view, files = client.predict(run_id, api_name="/reload_run")
    assert view["prompt"] == prompt and view["settings"]["seed"] == 11 and view["settings"]["start_from_frame"]
    assert view["reference"]["start"] == 1.0 and {_path(f).name for f in files} == {
        "finetuned.mp4", "baseline.mp4", "run.json"}
    imported = client.predict(handle_file(str(studio_server.output_dir / run_id / "run.json")),
                              api_name="/import_run")
    assert imported["settings"] == view["settings"] and imported["run_id"] is None
    judged = client.predict(run_id, api_name="/judge")
    assert set(judged["aspects"]) == set(ASPECTS) and len(judged["sides"]) == 2


def test_bad_inputs_get_clear_messages(studio_server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a run")
    for args, api_name, expected in (
        ((StructuredCaption().to_dict(), "Extractive", 120), "/compose", "every aspect is empty"),
        (({"Lens": "wide"}, "Extractive", 120), "/compose", "unknown aspect 'Lens'"),
        (("", {}, None, None), "/generate", "the prompt is empty"),
        (("A dog.", {"resolution": "huge"}, None, None), "/generate", "expected WIDTHxHEIGHT"),
        ((None, 0, 1, "Camera", "Static."), "/critique", "upload a reference clip"),
        ((handle_file(str(notes)),), "/import_run", "notes.txt is neither a run.json nor a studio mp4"),
        (("../outside",), "/reload_run", "there is no run"),
        (("/etc",), "/pick_finetune", "not one of the models in the models folder"),
    ):
        # Each call its own session: a refused model job keeps one of a visitor's two places in the
        # model queue for the admission's few seconds of grace, so a third in a row would be turned away.
        client = Client(studio_server.url, verbose=False)
        with pytest.raises(Exception, match=re.escape(expected)) as refused:
            client.predict(*args, api_name=api_name)
        assert str(tmp_path) not in str(refused.value) and "Traceback" not in str(refused.value)


def test_the_api_takes_numbers_as_sent(studio_server, reference_clip):
    # gradio would round a Number with a precision before the handler saw it (2.5 -> 2, true -> 1).
    clip = handle_file(str(reference_clip))
    for args, api_name, expected in (
        ((clip, None, None, "Camera", 2.5), "/best_of_n", "n: must be a whole number, got 2.5"),
        ((clip, None, None, True, True), "/caption", "shot: expected a number, got true/false"),
        (("A dog.", {"resolution": "１２８0x704"}, None, None), "/generate", "resolution: expected WIDTHxHEIGHT"),
    ):
        client = Client(studio_server.url, verbose=False)  # its own session, as above
        with pytest.raises(Exception, match=re.escape(expected)):
            client.predict(*args, api_name=api_name)


def test_cancel_stops_the_sessions_generation(studio_server):
    client = Client(studio_server.url, verbose=False)  # its own session
    before = run_ids(studio_server)
    assert client.predict(api_name="/cancel") == "Nothing is generating."
    job = client.submit("A dog runs across a park.", {"resolution": "64x64", "steps": 100, "seed": 31337},
                        None, None, api_name="/generate")
    deadline = time.monotonic() + 60
    while "seed 31337, 100 steps" not in studio_server.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, studio_server.log_tail()
        assert not job.done(), job.result()
        time.sleep(0.1)
    assert client.predict(api_name="/cancel").startswith("Cancelling")
    with pytest.raises(Exception, match="cancelled"):
        job.result(timeout=60)
    assert run_ids(studio_server) == before


def test_the_script_endpoints_are_mcp_tools(studio_server):
    """Started with --mcp-server: an agent sees caption, compose, generate and judge as tools."""
    import json
    import urllib.request

    with urllib.request.urlopen(studio_server.url + "gradio_api/mcp/schema", timeout=30) as response:
        tools = {tool["name"]: tool for tool in json.loads(response.read())}
    assert {"caption", "critique", "revise", "score", "compose", "generate", "explore", "render_final",
            "judge"} <= set(tools), sorted(tools)
    assert all(not name.startswith(("on_", "lambda")) for name in tools)  # named as the script API is
    assert "structured caption" in tools["generate"]["description"]
