"""End to end through the HTTP API: `app.py --tiny` driven by gradio_client.

upload -> caption -> edit -> critique -> revise -> compose -> generate -> two videos and run.json,
then the run history, plus the page's answers to bad inputs. The tiny models have random weights,
so the assertions are about wiring, files and shapes, never about what the text says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ASPECT_KEYS = ("subject", "scene", "motion", "spatial", "camera")


@pytest.fixture(scope="module")
def client(studio_server):
    return Client(studio_server.url, verbose=False)


def _path(value):
    """A file output as the client returns it: a path, or a dict holding one."""
    if isinstance(value, dict):
        value = value.get("video") or value.get("path") or value.get("value")
    if isinstance(value, dict):
        value = value.get("path")
    return Path(value)


def test_full_flow(client, studio_server, reference_clip):
    clip = handle_file(str(reference_clip))

    # Upload: the two shots are detected and the first one becomes the trim range.
    preview, shot, start, end, frame, info = client.predict(clip, api_name="/upload")
    assert [label for label, _ in shot["choices"]] == ["Shot 1: 0.00–1.00 s", "Shot 2: 1.00–2.00 s"]
    assert (start, end) == (0.0, 1.0)
    assert Path(frame).is_file() and "2 shot(s) detected" in info

    # Caption: five aspect texts, each recorded as a model revision.
    out = client.predict(clip, start, end, False, "", "", "", "", "", api_name="/caption")
    texts, badges, histories, status = list(out[:5]), out[5:10], out[10:15], out[15]
    assert all(isinstance(t, str) and t.strip() for t in texts), texts
    assert all(b == "Reward: not scored" for b in badges)
    assert all("captioned the clip" in h for h in histories)
    assert status.startswith("Captioned two_shots.mp4 0.00–1.00 s")

    # Edit one aspect by hand, then the CHAI loop on it: score, critique, revise.
    texts[4] = "The camera holds still at eye level."
    reward = client.predict(clip, start, end, "Camera", texts[4], api_name="/score")
    assert 0.0 <= reward <= 1.0
    critique = client.predict(clip, start, end, "Camera", texts[4], api_name="/critique")
    assert isinstance(critique, str) and critique.strip()
    revised = client.predict(clip, start, end, "Camera", texts[4], "Mention the framing.", api_name="/revise")
    assert isinstance(revised, str) and revised.strip()

    # The stateful per-aspect route keeps the history: the manual edit and the revision, undoable.
    out = client.predict(clip, start, end, "Mention the framing.", *texts, api_name="/revise_camera")
    # Outputs: the five texts, five reward badges, five histories, the status line.
    assert out[4] == revised  # same model, same input: the same (greedy) revision
    camera_history = out[14]
    assert "manual edit" in camera_history and "Mention the framing." in camera_history
    assert out[15].startswith("Camera: revised")
    out = client.predict(*out[0:5], api_name="/undo_camera")
    assert out[4] == texts[4] and out[15].startswith("Camera: undid the model revision")
    assert list(out[0:5]) == texts

    # Compose: a prompt within the budget, with its meter.
    out = client.predict("Extractive", 120, *texts, api_name="/compose")
    prompt, meter, report = out[0], out[1], out[2]
    assert prompt and len(prompt.split()) <= 120
    assert "/ 512 tokens" in meter and "Coverage:" in report

    # Generate side by side: two videos, the seed used, side_by_side.mp4 and run.json.
    runs_before = {p.parent.name for p in studio_server.output_dir.glob("*/run.json")}
    out = client.predict(prompt, "ti2v-5b", 0.3, "64x64", 2, 5.0, 5.0, 11, False, "", False, clip, start, *texts,
                         api_name="/generate")
    finetuned, baseline, finetuned_progress, baseline_progress, downloads, used_seed, status, gallery = out
    assert _path(finetuned).name == "finetuned.mp4" and _path(finetuned).stat().st_size > 0
    assert _path(baseline).name == "baseline.mp4" and _path(baseline).stat().st_size > 0
    assert "step 2/2" in finetuned_progress and "step 2/2" in baseline_progress
    names = sorted(_path(d).name for d in downloads)
    assert names == ["run.json", "side_by_side.mp4"]
    run_json = json.loads(next(_path(d) for d in downloads if _path(d).name == "run.json").read_text())
    assert run_json["prompt"] == prompt and run_json["seed"] == 11 == used_seed
    assert [run_json["caption"]["aspects"][a]["text"] for a in ("Subject", "Scene", "Motion", "Spatial", "Camera")] \
        == texts
    assert status.startswith("Done:") and "seed 11" in status
    new_runs = [p.parent for p in studio_server.output_dir.glob("*/run.json") if p.parent.name not in runs_before]
    assert len(new_runs) == 1 and (new_runs[0] / "side_by_side.mp4").is_file()
    assert status == f"Done: {new_runs[0].name} (seed 11)."
    assert len(gallery) == len(runs_before) + 1

    # History: reloading the run brings back its caption, prompt and settings.
    out = client.predict(new_runs[0].name, api_name="/reload_run")
    reloaded_texts, reloaded_prompt = list(out[0:5]), out[15]
    assert reloaded_texts == texts and reloaded_prompt == prompt
    preset, seconds, resolution, num_steps = out[16:20]
    assert (preset, resolution, num_steps) == ("ti2v-5b", "64x64", 2)


def test_presets_export_and_import(client):
    out = client.predict("dolly_zoom", "", "", "", "", "", api_name="/load_preset")
    texts, status = list(out[0:5]), out[15]
    assert all(t.strip() for t in texts) and status.startswith("Loaded preset **dolly_zoom**")
    exported, status = client.predict(*texts, api_name="/export_caption")
    data = json.loads(Path(exported).read_text())
    assert [data["aspects"][a]["text"] for a in ("Subject", "Scene", "Motion", "Spatial", "Camera")] == texts
    # Importing it over other text restores the preset's texts; each aspect is one Undo away.
    out = client.predict(handle_file(exported), "x", "y", "z", "w", "v", api_name="/import_caption")
    assert list(out[0:5]) == texts and "Imported" in out[15]
    out = client.predict(*out[0:5], api_name="/undo_scene")
    assert out[1] == "y"


def test_bad_inputs_get_clear_messages(client, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    # Gradio refuses other extensions itself (file_types); a fake .mp4 reaches the studio's reader.
    with pytest.raises(Exception, match=r"Invalid file type.*\.mp4"):
        client.predict(handle_file(str(notes)), api_name="/upload")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video either")
    with pytest.raises(Exception, match="fake.mp4"):
        client.predict(handle_file(str(fake)), api_name="/upload")
    with pytest.raises(Exception, match="every aspect is empty"):
        client.predict("Extractive", 120, "", "", "", "", "", api_name="/compose")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(Exception, match="not valid JSON"):
        client.predict(handle_file(str(bad)), "", "", "", "", "", api_name="/import_caption")
    with pytest.raises(Exception, match="the prompt is empty"):
        client.predict("", "ti2v-5b", 0.3, "64x64", 2, 5.0, 5.0, 1, False, "", False, None, 0, "", "", "", "", "",
                       api_name="/generate")
    with pytest.raises(Exception, match="upload a reference clip"):
        client.predict(None, 0, 1, "Camera", "Static.", api_name="/critique")


def test_cancel_stops_the_sessions_generation(studio_server):
    import time

    client = Client(studio_server.url, verbose=False)  # its own session
    runs_before = set(studio_server.output_dir.glob("*/run.json"))
    assert client.predict(api_name="/cancel") == "Nothing is generating."
    job = client.submit("A dog runs across a park.", "ti2v-5b", 0.3, "64x64", 100, 5.0, 5.0, 3, False, "", False,
                        None, 0, "", "", "", "", "", api_name="/generate")
    deadline = time.monotonic() + 60
    while not any("step 1/100" in str(out[3]) or "step 2/100" in str(out[3]) for out in job.outputs()):
        assert time.monotonic() < deadline, "generation never reported progress"
        assert not job.done(), job.result()
        time.sleep(0.1)
    assert client.predict(api_name="/cancel").startswith("Cancelling")
    with pytest.raises(Exception, match="cancelled"):
        job.result(timeout=60)
    assert set(studio_server.output_dir.glob("*/run.json")) == runs_before
