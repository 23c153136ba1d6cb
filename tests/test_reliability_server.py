"""Reliability of the served page (`app.py --tiny`): hostile API calls, path confinement,
cancellation and disconnection, queue caps, compose beside generation, per-session history.

One server with small caps (`--session-jobs 1 --queue-size 2 --history session`) serves every
test here; each test uses its own sessions and its own seeds (the server log names a run by its
seed when it starts).
"""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest
from gradio_client import Client, handle_file

from conftest import serve_tiny_studio

CAPTION = {"Subject": "A kite.", "Scene": "A beach at dusk.", "Motion": "The kite climbs.", "Spatial": "Wide shot.",
           "Camera": "The camera tilts up."}
LONG_STEPS = 100
SMALL = {"resolution": "64x64", "seconds": 0.3}


@pytest.fixture(scope="module")
def server(tmp_path_factory, ui_tiny_dir):
    with serve_tiny_studio(tmp_path_factory.mktemp("reliability-server"), ui_tiny_dir, "--session-jobs", "1",
                           "--queue-size", "2", "--history", "session") as running:
        yield running


class RawSession:
    """One browser tab over Gradio's queue protocol, calling the page's own (undocumented) events by
    index, so a test can join, read the stream and drop the connection the way a closed tab does."""

    def __init__(self, server):
        self.url, self.hash = server.url, uuid.uuid4().hex[:11]
        config = httpx.get(self.url + "config", timeout=30).json()
        self.dependencies = {d["api_name"]: d for d in config["dependencies"]}
        self.components = {c["id"]: c.get("props", {}) for c in config["components"]}

    def page_values(self, api_name: str, by_elem_id: dict) -> list:
        """The event's inputs as the page starts with them, with some set by elem_id."""
        values = []
        for component in self.dependencies[api_name]["inputs"]:
            props = self.components.get(component, {})
            values.append(by_elem_id.get(props.get("elem_id"), props.get("value")))
        return values

    def join(self, api_name: str, data: list) -> httpx.Response:
        body = {"data": data, "fn_index": self.dependencies[api_name]["id"], "session_hash": self.hash,
                "event_data": None, "trigger_id": None}
        return httpx.post(self.url + "gradio_api/queue/join", json=body, timeout=30)

    def join_generate(self, steps: int, seed: int) -> httpx.Response:
        """The page's Generate button, with the settings a visitor chose."""
        data = self.page_values("on_generate", {"prompt": "A kite climbs over a beach.", "steps": steps,
                                                "seed": seed, "resolution": "64x64", "duration": 0.3})
        return self.join("on_generate", data)

    def generate(self, steps: int, seed: int) -> str:
        response = self.join_generate(steps, seed)
        assert response.status_code == 200, response.text
        return response.json()["event_id"]

    def cancel(self, event_id: str) -> None:
        httpx.post(self.url + "gradio_api/cancel", timeout=30,
                   json={"session_hash": self.hash, "fn_index": self.dependencies["on_generate"]["id"],
                         "event_id": event_id})


def wait_for_log(server, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, server.log.read_text(errors="replace"))
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the server log:\n{server.log_tail()}")


def started(seed: int) -> str:
    return rf"generate \w+ mode, preset ti2v-5b, seed {seed}, "


def run_ids(server) -> set[str]:
    return {p.parent.name for p in server.output_dir.glob("*/run.json")}


def assert_serving(server) -> None:
    assert httpx.get(server.url, timeout=30).status_code == 200


# -- cancellation ----------------------------------------------------------------------------------------

def test_a_disconnected_tabs_generation_stops_within_a_few_steps(server):
    before = run_ids(server)
    tab = RawSession(server)
    tab.generate(LONG_STEPS, seed=1101)
    seen = None
    with httpx.stream("GET", server.url + "gradio_api/queue/data", params={"session_hash": tab.hash},
                      timeout=60) as stream:
        for line in stream.iter_lines():
            found = re.search(r"Generating [\w -]+Wan2\.2: step (\d+)/%d" % LONG_STEPS, line)
            if found:
                seen = int(found.group(1))
                break  # the tab closes
    assert seen is not None
    stopped = wait_for_log(server, r"generation stopped after (\d+) of %d steps" % (2 * LONG_STEPS))
    # Gradio learns of the closed tab when it next sends an update; tiny-model steps take milliseconds,
    # so a few may pass before that. The run still stops long before its 2 x 100 steps and writes nothing.
    assert int(stopped.group(1)) <= seen + 10, (seen, stopped.group(0))
    assert run_ids(server) == before
    assert_serving(server)


def test_a_cancelled_queued_job_never_starts(server):
    before = run_ids(server)
    running, waiting = RawSession(server), RawSession(server)
    first = running.generate(LONG_STEPS, seed=2201)
    wait_for_log(server, started(2201))
    queued = waiting.generate(1, seed=2202)
    waiting.cancel(queued)
    running.cancel(first)
    wait_for_log(server, r"generation stopped after \d+ of %d steps: .*cancel" % (2 * LONG_STEPS))
    time.sleep(2)  # time enough for the queued job to have started, had it not been dropped
    assert not re.search(started(2202), server.log.read_text(errors="replace"))
    assert run_ids(server) == before


# -- queue caps, compose beside generation ------------------------------------------------------------

def test_the_model_queue_is_capped_and_compose_never_waits_behind_it(server):
    hog, others = RawSession(server), [RawSession(server) for _ in range(3)]
    first = hog.generate(LONG_STEPS, seed=3301)
    wait_for_log(server, started(3301))
    admitted = []
    try:
        second = hog.join_generate(1, seed=3302)
        assert second.status_code == 400
        assert "you already have 1 model job(s) queued or running, the most one visitor may have is 1" in second.text
        admitted = [others[0].generate(1, seed=3303), others[1].generate(1, seed=3304)]
        full = others[2].join_generate(1, seed=3305)
        assert full.status_code == 400 and "the model queue is full (2 jobs waiting, the limit is 2)" in full.text
        # Composing needs no model: it answers at once while the model is busy.
        composer = Client(server.url, verbose=False)
        began = time.monotonic()
        assert composer.predict(CAPTION, "Extractive", 120, api_name="/compose")["prompt"]
        assert time.monotonic() - began < 5
    finally:
        for session, event in zip(others, admitted):
            session.cancel(event)
        hog.cancel(first)
    wait_for_log(server, "generation stopped after")
    assert_serving(server)


# -- per-session history, path confinement ---------------------------------------------------------------

def test_history_is_per_session_on_a_public_server(server):
    owner, visitor = Client(server.url, verbose=False), Client(server.url, verbose=False)
    result, _ = owner.predict("A private kite over a beach.", {**SMALL, "steps": 1, "seed": 4401}, None, None,
                              api_name="/generate")
    run_id = result["run_id"]
    assert run_id in run_ids(server)
    assert [card["run_id"] for card in owner.predict(api_name="/history")] == [run_id]  # not other sessions' runs
    assert visitor.predict(api_name="/history") == []
    for call in ("/reload_run", "/judge"):
        with pytest.raises(Exception, match="there is no run") as refused:
            visitor.predict(run_id, api_name=call)
        assert "private kite" not in str(refused.value)
    assert owner.predict(run_id, api_name="/reload_run")[0]["prompt"] == "A private kite over a beach."


def test_reload_and_file_inputs_refuse_paths(server, tmp_path):
    client = Client(server.url, verbose=False)
    outside = tmp_path / "evil"
    outside.mkdir()
    (outside / "run.json").write_text(json.dumps({"schema": "chai-studio/generation-run", "prompt": "stolen"}))
    (server.output_dir / "linked-out").symlink_to(outside, target_is_directory=True)
    for hostile in ["../evil", str(outside), "/etc", "..", "linked-out", "a/../b", "", 5, "%2e%2e/evil"]:
        with pytest.raises(Exception) as refused:
            client.predict(hostile, api_name="/reload_run")
        message = str(refused.value)
        assert ("there is no run" in message or "name a run" in message) and "stolen" not in message
        assert str(tmp_path) not in message
    # A server path passed where a file upload belongs is refused by Gradio before the studio sees it.
    fake_upload = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd.mp4"}
    for api_name, args in (("/caption", [fake_upload, 0, 1, None, False]), ("/import_run", [fake_upload]),
                           ("/critique", [fake_upload, 0, 1, "Camera", "Static."]),
                           ("/generate", ["A kite.", SMALL, fake_upload, 0])):
        with pytest.raises(Exception) as refused:
            client.predict(*args, api_name=api_name)
        assert "root:" not in str(refused.value)
    assert_serving(server)


# -- hostile values at every endpoint -----------------------------------------------------------------------

HOSTILE_CALLS = [
    ("/compose", [CAPTION, "Extractive", "NaN"], "max_words: expected a finite number"),
    ("/compose", [CAPTION, "Extractive", {"words": 1}], "max_words: expected a number, got an object"),
    ("/compose", [CAPTION, {"mode": 1}, 120], "mode: unknown composer mode"),
    ("/compose", [CAPTION, "Extractive", 5000], "max_words: must be between 20 and 320, got 5000"),
    ("/compose", [{"Camera": 5}, "Extractive", 120], "Camera: expected text, got a number"),
    ("/compose", [[1, 2], "Extractive", 120], "caption: expected the caption as a JSON object, got a list"),
    ("/generate", ["A kite.", {**SMALL, "seconds": "long"}, None, None], "expected a number, got 'long'"),
    ("/generate", ["A kite.", {"resolution": 64}, None, None], "resolution: expected text, got a number"),
    ("/generate", ["A kite.", {"resolution": "64x64/../.."}, None, None], "expected WIDTHxHEIGHT"),
    ("/generate", ["A kite.", {**SMALL, "steps": 10**9}, None, None], "steps"),
    ("/generate", ["A kite.", {**SMALL, "seed": {"seed": 1}}, None, None], "seed"),
    ("/generate", ["A kite.", {**SMALL, "seed": 1e20}, None, None], "seed"),
    ("/generate", ["A kite.", {"preset": "../../etc"}, None, None], "preset: unknown model preset"),
    ("/generate", ["A kite.", {"finetuned": "/etc"}, None, None], "not one of the models in the models folder"),
    ("/generate", ["A kite.", {"path": "/etc/passwd"}, None, None], "settings: unknown field(s) path"),
    ("/generate", ["x" * 30000, SMALL, None, None], "prompt: is 30000 characters"),
    ("/score", [None, 0, 1, ["Camera"], "Static."], "upload a reference clip"),
    ("/score", [None, "start", 1, "Camera", "Static."], "upload a reference clip"),
    ("/caption", [None, 0, 1, None, False], "upload a reference clip"),
    ("/best_of_n", [None, 0, 1, "Camera", 2], "upload a reference clip"),
    ("/reload_run", [{"run": "x"}], "there is no run"),
    ("/pick_finetune", ["../../etc/passwd"], "not one of the models in the models folder"),
]


def refusal(client: Client, api_name: str, args: list) -> str:
    """The message a refused call carries (a refusal at queue join comes back as an HTTP 400 body)."""
    with pytest.raises(Exception) as refused:
        client.predict(*args, api_name=api_name)
    response = getattr(refused.value, "response", None)
    return response.text if response is not None else str(refused.value)


def test_hostile_values_get_clear_messages_and_the_server_keeps_serving(server, tmp_path):
    client = Client(server.url, verbose=False)
    nested = tmp_path / "run.json"
    nested.write_text("[" * 50000 + "]" * 50000)
    calls = HOSTILE_CALLS + [("/import_run", [handle_file(str(nested))], "does not hold a studio run record")]
    wrong = []
    for api_name, args, expected in calls:
        message = refusal(client, api_name, args)
        leaks = [leak for leak in ("Traceback", "/tmp/", str(server.output_dir), "object at 0x", "unexpected")
                 if leak in message]
        if expected not in message or leaks:
            wrong.append((api_name, expected, message))
    assert not wrong, "\n".join(map(repr, wrong))
    assert_serving(server)
    assert client.predict(CAPTION, "Extractive", 120, api_name="/compose")["prompt"]
