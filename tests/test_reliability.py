"""Reliability without a server: atomic run folders under injected faults, tampered run records,
path confinement of reloads, queue admission, messages without server paths, CLI refusals.

The server-level cases (hostile API calls, cancellation, queue caps, per-session history) are in
tests/test_reliability_server.py.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studio.caption.structured import StructuredCaption
from studio.config import StudioConfig
from studio.errors import InputError, ModelLoadError, StudioError
from studio.generation import GenerationSettings, PRESETS, list_runs, load_run
from studio.generation import outputs
from studio.session import Limits, RunHistory, SharedModels, Worker
from studio.session.models import _loading, models_take_turns
from studio.ui.admission import ModelQueue, QueueFull, SessionRuns, history_mode, is_public

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red kite climbs over a grey beach, camera tilts up"


@pytest.fixture(scope="module")
def generator(ui_tiny_dir):
    return SharedModels(StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, device="cpu")).generator("ti2v-5b")


def tiny_settings(steps: int = 1) -> GenerationSettings:
    return GenerationSettings.from_user(PRESETS["ti2v-5b"], frames=5, height=64, width=64, steps=steps, seed=3)


def history(root: Path) -> RunHistory:
    """The run history the page shows for an outputs folder."""
    return RunHistory(StudioConfig(output_dir=root))


def visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# -- atomic run folders ------------------------------------------------------------------------------

WRITE_FUNCTIONS = ("write_video", "write_poster", "write_run_json")
FILES_PER_RUN = 7  # three videos, three posters, run.json (last)


@pytest.mark.parametrize("failing_file", range(1, FILES_PER_RUN + 1))
def test_a_full_disk_at_any_file_leaves_no_half_run(generator, tmp_path, monkeypatch, failing_file):
    written = []

    def failing(name, original):
        def write(path, *args, **kwargs):
            written.append("run.json" if name == "write_run_json" else Path(path).name)
            if len(written) == failing_file:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(path, *args, **kwargs)
        return write

    for name in WRITE_FUNCTIONS:
        monkeypatch.setattr(outputs, name, failing(name, getattr(outputs, name)))
    with pytest.raises(StudioError, match="ran out of space while writing the run .*nothing was written"):
        generator.generate(PROMPT, tiny_settings(), out_dir=tmp_path)
    assert written[-1] == (["finetuned.mp4", "finetuned.png", "baseline.mp4", "baseline.png", "side_by_side.mp4",
                            "side_by_side.png", "run.json"][failing_file - 1])  # left side, right side, pair, record
    assert visible(tmp_path) == [] and list_runs(tmp_path) == []  # not even the staging folder stays
    monkeypatch.undo()
    result = generator.generate(PROMPT, tiny_settings(), out_dir=tmp_path)  # the next run succeeds
    assert visible(tmp_path) == [result.run_dir.name] and load_run(result.run_dir)["prompt"] == PROMPT


def test_a_read_only_outputs_folder_is_refused_before_rendering(generator, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    steps_run = []
    with pytest.raises(StudioError, match="outputs folder 'runs' is not writable .*Read-only file system"):
        generator.generate(PROMPT, tiny_settings(), out_dir=tmp_path / "runs",
                           on_step=lambda *args: steps_run.append(args))
    assert steps_run == []  # found in a moment, not after the render


def test_a_full_disk_is_refused_before_rendering(generator, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    steps_run = []
    with pytest.raises(StudioError, match="has 0 MB free and this run needs about 1 MB"):
        generator.generate(PROMPT, tiny_settings(), out_dir=tmp_path, on_step=lambda *args: steps_run.append(args))
    assert steps_run == [] and visible(tmp_path) == []
    big = GenerationSettings.from_user(PRESETS["ti2v-5b"])  # 1280x704, 121 frames
    assert 300 * 2**20 < outputs.estimate_run_bytes(big) < 2 * 2**30


def test_a_folder_that_cannot_be_created_is_a_clear_error_at_start_up(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "app.py", "--tiny", "--output-dir", str(blocker / "outputs")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: the outputs folder 'outputs' cannot be created (Not a directory)" in result.stderr


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from studio.generation import outputs
writer = outputs.RunWriter(sys.argv[1], "killed mid run")
writer.video("baseline", np.zeros((5, 64, 64, 3), np.uint8), 8)
os.kill(os.getpid(), signal.SIGKILL)  # between two files
"""


def test_a_kill_between_files_leaves_nothing_listed_and_is_cleaned_at_start(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=ROOT, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    leftovers = visible(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(outputs.STAGING_PREFIX)
    assert (tmp_path / leftovers[0] / "baseline.mp4").is_file()
    assert list_runs(tmp_path) == [] and history(tmp_path).cards() == []
    # A run still being written by a live process (another CLI run) is left alone.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f"{outputs.STAGING_PREFIX}{sleeper.pid}-busy"
        busy.mkdir()
        assert outputs.clean_leftovers(tmp_path) == leftovers
        assert visible(tmp_path) == [busy.name]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert outputs.clean_leftovers(tmp_path) == [busy.name] and visible(tmp_path) == []


def test_writer_commits_run_json_last_and_never_reuses_a_name(tmp_path):
    frames = np.zeros((5, 64, 64, 3), np.uint8)
    names = []
    for _ in range(2):
        with outputs.staged_run(tmp_path, "same prompt") as run:
            run.video("baseline", frames, 8)
            assert not (run.staging / "run.json").exists() and visible(tmp_path) == sorted(
                [run.staging.name, *names])
            names.append(run.commit({"schema": outputs.RUN_SCHEMA}).name)
    assert names[1] == names[0] + "-1" or names[0][:15] != names[1][:15]
    with pytest.raises(ValueError, match="boom"), outputs.staged_run(tmp_path, "fails") as run:
        run.video("baseline", frames, 8)
        raise ValueError("boom")
    assert visible(tmp_path) == sorted(names)


# -- tampered run records -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_record(generator, tmp_path_factory):
    caption = StructuredCaption.from_dict({"Subject": "A kite.", "Camera": "Tilt up."})
    result = generator.generate(PROMPT, tiny_settings(), caption=caption, out_dir=tmp_path_factory.mktemp("good"))
    return json.loads(result.run_json.read_text())


TAMPERED = [
    (("settings", "num_frames"), "abc", "num_frames must be a whole number from 1 to 2001, got 'abc'"),
    (("settings", "fps"), 0, "fps must be a whole number from 1 to 60, got 0"),
    (("seed",), 1e20, "seed must be a whole number from 0 to 4294967295, got 1e+20"),
    (("seed",), True, "seed must be a whole number"),
    (("settings", "guidance"), float("nan"), "guidance must be a number from 0 to 20"),
    (("settings", "width"), -64, "width must be a whole number from 16 to 4096"),
    (("settings", "steps"), 2.5, "steps must be a whole number from 1 to 200, got 2.5"),
    (("settings", "height"), "64", "height must be a whole number from 16 to 4096, got '64'"),
    (("settings", "shift"), True, "shift must be a number from 0.5 to 30, got True"),
    (("version",), "1", "version must be a whole number from 1 to 1000000, got '1'"),
    (("settings", "negative_prompt"), ["x"], "negative_prompt must be text"),
    (("settings",), [1, 2], "settings must be an object"),
    (("prompt",), {"a": 1}, "prompt must be text"),
    (("prompt",), "   ", "prompt is empty"),
    (("preset",), "../../evil", "preset must be one of ti2v-5b, t2v-a14b"),
    (("caption",), {"aspects": {"Subject": {"text": 5}}}, "caption: "),
    (("caption",), "not an object", "caption: "),
]


@pytest.mark.parametrize("path, value, message", TAMPERED, ids=[".".join(t[0]) for t in TAMPERED])
def test_tampered_fields_are_refused_by_name_and_left_out_of_history(good_record, tmp_path, path, value, message):
    (tmp_path / "fine").mkdir()
    (tmp_path / "fine" / "run.json").write_text(json.dumps(good_record))
    record = json.loads(json.dumps(good_record))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    (tmp_path / "tampered").mkdir()
    (tmp_path / "tampered" / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="run tampered is a damaged run record: ") as refused:
        history(tmp_path).reload("tampered")
    assert message in str(refused.value)
    assert [r.run_id for r in list_runs(tmp_path)] == ["fine"]  # one bad folder never affects the others
    assert history(tmp_path).reload("fine").prompt == PROMPT


def test_hostile_run_files_never_reach_the_reader(good_record, tmp_path):
    runs = tmp_path / "outputs"
    runs.mkdir()
    (runs / "fine").mkdir()
    (runs / "fine" / "run.json").write_text(json.dumps(good_record))
    # A run.json far over the cap is refused from its size, without reading it.
    (runs / "huge").mkdir()
    with open(runs / "huge" / "run.json", "wb") as handle:
        handle.truncate(200 * 2**20)
    with pytest.raises(InputError, match="run huge is 200.0 MB; a run record is at most 4 MB"):
        history(runs).reload("huge")
    # Absurd nesting.
    (runs / "nested").mkdir()
    (runs / "nested" / "run.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError, match="does not hold a studio run record"):
        history(runs).reload("nested")
    # A poster and a video linked to files outside the outputs folder are never served.
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (runs / "fine" / "side_by_side.png").symlink_to(secret)
    (runs / "fine" / "finetuned.mp4").symlink_to(secret)
    view = history(runs).reload("fine")
    assert dict(view.videos)["CHAI-finetuned Wan2.2"] is None and all("secret" not in d for d in view.downloads)
    (card,) = history(runs).cards()  # listed without the linked poster, no error
    assert card.run_id == "fine" and card.poster is None and list_runs(runs)[0].poster is None


# -- path confinement ---------------------------------------------------------------------------------

def test_reload_takes_only_run_ids_inside_the_outputs_folder(good_record, tmp_path):
    runs = tmp_path / "outputs"
    runs.mkdir()
    outside = tmp_path / "evil"
    outside.mkdir()
    (outside / "run.json").write_text(json.dumps(good_record))  # a valid record outside the folder
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    (runs / "real").mkdir()
    (runs / "real" / "run.json").symlink_to(outside / "run.json")  # a link inside a real run folder
    (runs / f"{outputs.STAGING_PREFIX}1-x").mkdir()
    refused = ["../evil", "..", str(outside), str(runs / "real"), "linked", "a/b", "", None, 5, ["real"],
               {"path": "real"}, f"{outputs.STAGING_PREFIX}1-x", "real\x00", "%2e%2e", "~", "nope"]
    messages = set()
    for run_id in refused:
        with pytest.raises(InputError) as excinfo:
            history(runs).reload(run_id)
        message = str(excinfo.value)
        assert str(tmp_path) not in message and "Traceback" not in message
        messages.add(message.split(" in the history")[0].split("there is no run ")[0])
    assert messages <= {"run: ", "run: run real has no run.json; it is not a finished run"}
    assert history(runs).cards() == []


# -- queue admission, history mode ---------------------------------------------------------------------

def test_model_queue_caps_the_queue_and_each_sessions_share():
    now = [0.0]
    gate = ModelQueue(queue_size=3, session_jobs=2, clock=lambda: now[0])
    gate.admit("a", 0, set())
    gate.admit("a", 0, set())  # a burst: the first is not in Gradio's queue yet, but counts
    with pytest.raises(QueueFull, match="you already have 2 model job.* the most one visitor may have is 2"):
        gate.admit("a", 0, set())
    gate.started("a")  # the first ran (and finished) before any admission saw it queued
    gate.admit("a", 0, {"e2"})  # the second is seen queued: counted once, so one more fits
    with pytest.raises(QueueFull, match="you already have 2 model job"):
        gate.admit("a", 0, {"e2"})
    with pytest.raises(QueueFull, match="the model queue is full \\(3 jobs waiting, the limit is 3\\)"):
        gate.admit("b", 3, set())
    gate.admit("b", 1, set())
    now[0] += 60  # an admitted job that never reached the queue stops counting
    gate.admit("b", 0, set())


def test_public_servers_keep_history_per_session():
    config = StudioConfig()
    assert not is_public("127.0.0.1", environ={}) and not is_public("localhost", environ={})
    assert is_public("0.0.0.0", environ={}) and is_public("127.0.0.1", share=True, environ={})
    assert is_public("127.0.0.1", environ={"SPACE_ID": "someone/studio"})
    assert history_mode(config, public=True) == "session" and history_mode(config, public=False) == "shared"
    assert history_mode(config.replace(history="shared"), public=True) == "shared"
    runs = SessionRuns(max_sessions=2)
    for session, run in (("a", "r1"), ("b", "r2"), ("a", "r3"), ("c", "r4")):
        runs.add(session, run)
    assert runs.of("a") == ["r1", "r3"] and runs.of("b") == [] and runs.of("c") == ["r4"]
    with pytest.raises(InputError, match="queue_size: must be positive"):
        StudioConfig(queue_size=0)


# -- consistent rules, models ------------------------------------------------------------------------

def test_page_and_cli_share_the_clip_types(tmp_path, reference_clip):
    from studio.video import VIDEO_EXTENSIONS, probe

    assert Limits.from_config(StudioConfig()).video_extensions == tuple(VIDEO_EXTENSIONS)
    assert ".avi" in VIDEO_EXTENSIONS
    renamed = tmp_path / "clip.gif"
    renamed.write_bytes(reference_clip.read_bytes())
    with pytest.raises(InputError, match="clip.gif is not a clip type the studio reads"):
        probe(renamed)


def test_captioner_and_generator_take_turns_only_on_small_gpus():
    assert models_take_turns("cuda", 24.0) and models_take_turns("cuda", 48.0)
    assert not models_take_turns("cuda", 80.0) and not models_take_turns("cuda", 141.0)
    assert not models_take_turns("cpu", 24.0) and not models_take_turns("cuda", None)


def test_loader_failures_name_the_settings():
    def offline():
        raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")

    with pytest.raises(ModelLoadError, match=r"could not load the captioner from 'org/model' .*Set --captioner "
                                             r"/ CHAI_STUDIO_CAPTIONER\. If this machine is offline") as caught:
        _loading(offline, "the captioner", "org/model", "--captioner / CHAI_STUDIO_CAPTIONER")
    assert isinstance(caught.value.__cause__, OSError)  # kept for the log

    def no_gpu():
        raise RuntimeError("Found no NVIDIA driver; CUDA is not available")

    with pytest.raises(ModelLoadError, match="set --device cpu"):
        _loading(no_gpu, "the generator", "x", "--baseline")

    def refused():
        raise InputError("the prompt is empty", "prompt")

    with pytest.raises(InputError, match="^prompt: the prompt is empty$"):  # already clear: passed through
        _loading(refused, "the generator", "x", "--baseline")


def test_worker_yields_reports_in_order_then_the_result_or_the_error():
    worker = Worker("count", lambda report: [report(i) for i in range(3)] and "finished")
    assert list(worker) == [0, 1, 2] and worker.result == "finished"

    def fails(report):
        report("started")
        raise ValueError("the model ran out of memory")

    seen = []
    with pytest.raises(ValueError, match="out of memory"):
        for item in Worker("fail", fails):
            seen.append(item)
    assert seen == ["started"]


# -- CLI ------------------------------------------------------------------------------------------------

def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, capture_output=True, text=True,
                          input=stdin, timeout=300)


def test_cli_refuses_hostile_input_without_a_traceback(tmp_path, reference_clip):
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 50000 + "]" * 50000)
    deep_object = tmp_path / "deep.json"
    deep_object.write_text('{"Subject": ' * 50000 + '"x"' + "}" * 50000)
    cases = [
        (["compose", str(nested)], "caption: the JSON is nested too deeply to be a caption"),
        (["compose", str(deep_object)], "the JSON is nested too deeply to be a caption"),
        (["compose", "-"], "the JSON is nested too deeply to be a caption"),
        (["critique", str(reference_clip), "--caption", str(nested), "--tiny"], "nested too deeply"),
        (["caption", str(reference_clip), "--max-new-tokens", "-1", "--captioner", "/nowhere"],
         "error: max_new_tokens: must be between 1 and 8192, got -1"),
        (["caption", str(reference_clip), "--fps", "0", "--captioner", "/nowhere"], "error: fps: must be between 0.1 and 30, got 0"),
        (["shots", str(tmp_path / "clip.gif")], "no such file"),
    ]
    for args, expected in cases:
        started = time.monotonic()
        result = cli(*args, stdin=("[" * 50000 + "]" * 50000) if args[-1] == "-" else None)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert expected in result.stderr and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
        assert time.monotonic() - started < 60  # refused before any model loads


def test_a_truncated_captioner_is_named_by_its_folder(tmp_path, reference_clip):
    from studio.tiny import build_tiny_models

    folder = build_tiny_models(tmp_path, only=["captioner"])["captioner"]
    weights = next(Path(folder).glob("*.safetensors"))
    with open(weights, "r+b") as handle:
        handle.truncate(2000)
    config = StudioConfig(tiny=True, tiny_dir=tmp_path, device="cpu")
    with pytest.raises(StudioError) as excinfo:
        SharedModels(config).captioner()
    message = str(excinfo.value)
    assert str(folder) in message and config.captioner not in message and "truncated or corrupt" in message
    result = cli("caption", str(reference_clip), "--captioner", str(folder), "--device", "cpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"could not load the captioner '{folder}'" in result.stderr


def test_auth_pairs_come_from_flags_or_a_file(tmp_path):
    from studio.ui.server import read_auth

    pairs = tmp_path / "team.txt"
    pairs.write_text("# the team\nana:s3cret:with-colon\n\nbo:pw\n")
    assert read_auth(None) is None
    assert read_auth(["cy:pass", str(pairs)]) == [("cy", "pass"), ("ana", "s3cret:with-colon"), ("bo", "pw")]
    with pytest.raises(InputError, match="--auth: expected USER:PASSWORD"):
        read_auth(["no-password"])
