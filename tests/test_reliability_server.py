"""Reliability of the served page (`app.py --tiny`): hostile API calls, path confinement,
cancellation and disconnection, queue caps, compose beside generation, per-session history.

One server with small caps (`--session-jobs 1 --queue-size 2 --history session`) serves every
test here; each test uses its own sessions.
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

TEXTS = ["A kite.", "A beach at dusk.", "The kite climbs.", "Wide shot.", "The camera tilts up."]
LONG_STEPS = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory, ui_tiny_dir):
    with serve_tiny_studio(tmp_path_factory.mktemp("reliability-server"), ui_tiny_dir, "--session-jobs", "1",
                           "--queue-size", "2", "--history", "session") as running:
        yield running


def generate_args(steps: int = 1, prompt: str = "A kite climbs over a beach.", seed: int = 4) -> list:
    return [prompt, "ti2v-5b", 0.3, "64x64", steps, 5.0, 5.0, seed, False, "", False, None, 0, *TEXTS]


class RawSession:
    """One browser-like session over Gradio's queue protocol, so a test can join, read the stream
    and drop the connection the way a closed tab does."""

    def __init__(self, server):
        self.url, self.hash = server.url, uuid.uuid4().hex[:11]
        config = httpx.get(self.url + "config", timeout=30).json()
        self.fn = {d.get("api_name"): d["id"] for d in config["dependencies"]}

    def join(self, api_name: str, data: list) -> httpx.Response:
        body = {"data": data, "fn_index": self.fn[api_name], "session_hash": self.hash, "event_data": None,
                "trigger_id": None}
        return httpx.post(self.url + "gradio_api/queue/join", json=body, timeout=30)

    def join_generate(self, steps: int) -> str:
        # The page's inputs: the API's, then the caption State (None: an empty caption), the boxes, and
        # the comparison mode and short prompt as a browser sends them.
        response = self.join("generate", [*generate_args(steps)[:13], None, *TEXTS, "auto", ""])
        assert response.status_code == 200, response.text
        return response.json()["event_id"]

    def cancel(self, event_id: str) -> None:
        httpx.post(self.url + "gradio_api/cancel", timeout=30,
                   json={"session_hash": self.hash, "fn_index": self.fn["generate"], "event_id": event_id})


def wait_for_log(server, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, server.log.read_text(errors="replace"))
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the server log:\n{server.log_tail()}")


def run_ids(server) -> set[str]:
    return {p.parent.name for p in server.output_dir.glob("*/run.json")}


def assert_serving(server) -> None:
    assert httpx.get(server.url, timeout=30).status_code == 200


# -- cancellation ----------------------------------------------------------------------------------------

def test_a_disconnected_clients_generation_stops_within_a_step(server):
    before = run_ids(server)
    tab = RawSession(server)
    tab.join_generate(LONG_STEPS)
    seen = None
    with httpx.stream("GET", server.url + "gradio_api/queue/data", params={"session_hash": tab.hash},
                      timeout=60) as stream:
        for line in stream.iter_lines():
            found = re.search(r"Generating: (Zero-shot|CHAI-finetuned) Wan2\.2 step (\d+)/%d" % LONG_STEPS, line)
            if found:
                seen = {"Zero-shot": "baseline", "CHAI-finetuned": "finetuned"}[found.group(1)], int(found.group(2))
                break  # the tab closes
    assert seen is not None
    stopped = wait_for_log(server, r"generation stopped after (\w+) step (\d+)/%d" % LONG_STEPS)
    # Gradio learns of the closed tab when it next sends an update; tiny-model steps take milliseconds,
    # so a few may pass before that. The run still stops long before its 100 steps and writes nothing.
    assert stopped.group(1) == seen[0] and int(stopped.group(2)) <= seen[1] + 5, (seen, stopped.group(0))
    assert run_ids(server) == before
    assert_serving(server)


def test_a_cancelled_queued_job_never_starts(server):
    before = run_ids(server)
    running, waiting = RawSession(server), RawSession(server)
    first = running.join_generate(LONG_STEPS)
    wait_for_log(server, f"generation started for session {running.hash}")
    queued = waiting.join_generate(1)
    waiting.cancel(queued)
    running.cancel(first)
    wait_for_log(server, r"generation stopped after \w+ step \d+/%d" % LONG_STEPS)
    time.sleep(2)  # time enough for the queued job to have started, had it not been dropped
    assert f"generation started for session {waiting.hash}" not in server.log.read_text(errors="replace")
    assert run_ids(server) == before


# -- queue caps, compose beside generation ------------------------------------------------------------

def test_the_model_queue_is_capped_and_compose_never_waits_behind_it(server):
    hog, others = RawSession(server), [RawSession(server) for _ in range(3)]
    first = hog.join_generate(LONG_STEPS)
    wait_for_log(server, f"generation started for session {hog.hash}")
    try:
        second = hog.join("generate", [*generate_args()[:13], None, *TEXTS, "auto", ""])
        assert second.status_code == 400
        assert "you already have 1 model job(s) queued or running, the most one visitor may have is 1" in second.text
        admitted = [others[0].join_generate(1), others[1].join_generate(1)]
        full = others[2].join("generate", [*generate_args()[:13], None, *TEXTS, "auto", ""])
        assert full.status_code == 400 and "the model queue is full (2 jobs waiting, the limit is 2)" in full.text
        # Composing needs no model: it answers at once while the model is busy.
        composer = Client(server.url, verbose=False)
        started = time.monotonic()
        prompt = composer.predict("Extractive", 120, *TEXTS, api_name="/compose")[0]
        assert prompt and time.monotonic() - started < 5
    finally:
        for session, event in zip(others, admitted):
            session.cancel(event)
        hog.cancel(first)
    wait_for_log(server, "generation stopped after")
    assert_serving(server)


# -- per-session history, path confinement ---------------------------------------------------------------

def test_history_is_per_session_on_a_public_server(server):
    owner, visitor = Client(server.url, verbose=False), Client(server.url, verbose=False)
    out = owner.predict(*generate_args(prompt="A private kite over a beach."), api_name="/generate")
    run_id = out[6].removeprefix("Done: ").split(" (seed")[0]
    assert run_id in run_ids(server)
    captions = [item["caption"] for item in owner.predict(api_name="/history")]  # only the gallery (no State)
    assert len(captions) == 1 and captions[0].startswith(run_id)  # not the runs other tests' sessions made
    assert visitor.predict(api_name="/history") == []
    with pytest.raises(Exception, match="there is no run") as refused:
        visitor.predict(run_id, api_name="/reload_run")
    assert "private kite" not in str(refused.value)
    assert owner.predict(run_id, api_name="/reload_run")[15] == "A private kite over a beach."


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
        assert "there is no run" in message and "stolen" not in message and str(tmp_path) not in message
    # A server path passed where a file upload belongs is refused by Gradio before the studio sees it.
    fake_upload = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd.mp4"}
    for api_name, args in (("/upload", [fake_upload]), ("/import_caption", [fake_upload, *TEXTS]),
                           ("/critique", [fake_upload, 0, 1, "Camera", "Static."])):
        with pytest.raises(Exception) as refused:
            client.predict(*args, api_name=api_name)
        assert "root:" not in str(refused.value)
    assert_serving(server)


# -- hostile values at every endpoint -----------------------------------------------------------------------

GRADIO_REFUSAL = "Could not preprocess input component"  # Gradio's own type check, before the studio

HOSTILE_CALLS = [
    ("/compose", ["Extractive", "NaN", *TEXTS], GRADIO_REFUSAL),
    ("/compose", ["Extractive", {"words": 1}, *TEXTS], GRADIO_REFUSAL),
    ("/compose", [{"mode": 1}, 120, *TEXTS], "is not in the list of choices"),
    ("/compose", ["Extractive", 5000, *TEXTS], "Value 5000 is greater than maximum value 320"),
    ("/compose", ["Extractive", 120, "", "", "", "", ""], "every aspect is empty"),
    ("/generate", [*generate_args()[:2], "long", *generate_args()[3:]], GRADIO_REFUSAL),
    ("/generate", [*generate_args()[:3], 64, *generate_args()[4:]], "expected WIDTHxHEIGHT"),
    ("/generate", [*generate_args()[:3], "64x64/../..", *generate_args()[4:]], "expected WIDTHxHEIGHT"),
    ("/generate", [*generate_args()[:4], 10**9, *generate_args()[5:]], "is greater than maximum value 100"),
    ("/generate", [*generate_args()[:7], {"seed": 1}, *generate_args()[8:]], GRADIO_REFUSAL),
    ("/generate", [*generate_args()[:7], 1e20, *generate_args()[8:]], "seed: must be -1 (random) or between"),
    ("/generate", [*generate_args()[:1], "../../etc", *generate_args()[2:]], "is not in the list of choices"),
    ("/generate", ["x" * 30000, *generate_args()[1:]], "prompt: is 30000 characters"),
    ("/generate", [*generate_args()[:10], True, "missing.mp4", 0, *TEXTS], "missing.mp4"),
    ("/score", [None, 0, 1, ["Camera"], "Static."], "unknown aspect"),
    ("/score", [None, 0, 1, "Camera", "Static."], "upload a reference clip"),
    ("/score", [None, "start", 1, "Camera", "Static."], GRADIO_REFUSAL),
    ("/caption", [None, 0, 1, False, *TEXTS], "upload a reference clip"),
    ("/pick_shot", ["not-a-range", None], "is not in the list of choices"),
    ("/load_preset", ["../../etc/passwd", *TEXTS], "is not in the list of choices"),
    ("/apply_primitive_camera", ["no.such", *TEXTS], "is not in the list of choices"),
    ("/reload_run", [{"run": "x"}], "there is no run"),
]


def refusal(client: Client, api_name: str, args: list) -> str:
    """The message a refused call carries (a refusal at queue join comes back as an HTTP 400 body)."""
    with pytest.raises(Exception) as refused:
        client.predict(*args, api_name=api_name)
    response = getattr(refused.value, "response", None)
    return response.text if response is not None else str(refused.value)


def test_hostile_values_get_clear_messages_and_the_server_keeps_serving(server, tmp_path):
    client = Client(server.url, verbose=False)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 50000 + "]" * 50000)
    calls = HOSTILE_CALLS + [("/import_caption", [handle_file(str(nested)), *TEXTS], "nested too deeply")]
    for api_name, args, expected in calls:
        message = refusal(client, api_name, args)
        assert expected in message, (api_name, message)
        for leak in ("Traceback", "/tmp/", str(server.output_dir), "object at 0x", "unexpected "):
            assert leak not in message, (api_name, message)
    assert_serving(server)
    assert client.predict("Extractive", 120, *TEXTS, api_name="/compose")[0]
