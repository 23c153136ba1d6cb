"""`python -m studio caption | critique | revise | score | shots` on the tiny captioner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clipmaker import write_clip

from studio.caption import StructuredCaption
from studio.caption.structured import ASPECTS
from studio.session.models import unload_captioner
from studio.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    unload_captioner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_models):
    tiny = tiny_models("captioner")["captioner"]
    root = tmp_path_factory.mktemp("cli-clips")
    return {
        "flags": ["--captioner", str(tiny), "--device", "cpu", "--max-new-tokens", "12"],
        "cut": write_clip(root / "cut.mp4", seconds=2.0, cut_at=1.0),
        "plain": write_clip(root / "plain.mp4", seconds=2.0),
        "root": root,
    }


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_commands_are_registered():
    assert {"caption", "critique", "revise", "score", "shots"} <= set(COMMANDS)


def test_shots_lists_the_cut(setup, capsys):
    code, out, _ = run(capsys, "shots", setup["cut"])
    # Numbered from 1, like the page's "Shot 1: 0.00–1.00 s".
    assert code == 0 and "2 shot(s)" in out and "shot 1:     0.00 s" in out and "shot 2:     1.00 s" in out
    code, out, _ = run(capsys, "shots", setup["cut"], "--json")
    data = json.loads(out)
    assert [s["number"] for s in data["shots"]] == [1, 2] and [s["index"] for s in data["shots"]] == [0, 1]
    assert data["clip"]["width"] == 64


def test_shot_numbers_match_the_page(setup):
    from studio.ui.formatting import shot_label
    from studio.video import detect_shots

    labels = [shot_label(n, shot.start, shot.end) for n, shot in enumerate(detect_shots(setup["cut"]), start=1)]
    assert labels == ["Shot 1: 0.00–1.00 s", "Shot 2: 1.00–2.00 s"]


def test_caption_writes_a_structured_caption(setup, capsys):
    code, out, err = run(capsys, "caption", setup["cut"], *setup["flags"])
    assert code == 0
    caption = StructuredCaption.from_json(out)
    assert all(caption[a].text for a in ASPECTS)
    assert caption.provenance.source == "captioner"
    assert caption.provenance.models["captioner"].endswith("captioner")
    assert (caption.provenance.start, caption.provenance.end) == (0.0, 2.0)
    assert "contains a cut at 1.00 s" in err  # the whole clip spans two shots


def test_caption_one_shot_two_stage_to_a_file(setup, capsys):
    target = setup["root"] / "out" / "shot1.json"
    code, _, err = run(capsys, "caption", setup["cut"], "--shot", 2, "--two-stage", "--stream", "--out", target,
                       *setup["flags"])
    assert code == 0 and "cut" not in err and f"wrote {target}" in err
    caption = StructuredCaption.load(target)
    assert (caption.provenance.start, caption.provenance.end) == (1.0, 2.0)  # shot 2, as `shots` lists it
    assert all(caption[a].text for a in ASPECTS)
    # --stream prints only what is new: joined per aspect, the pieces are the caption, nothing repeated.
    pieces: dict[str, str] = {}
    for line in err.splitlines():
        if line.startswith("[") and "] " in line:
            aspect, _, piece = line[1:].partition("] ")
            pieces[aspect] = pieces.get(aspect, "") + piece
    assert set(pieces) == set(ASPECTS)
    for aspect in ASPECTS:
        assert pieces[aspect].split() == caption[aspect].text.split(), aspect


def test_caption_aspect_flag_matches_the_other_commands(setup, capsys):
    code, out, _ = run(capsys, "caption", setup["plain"], "--aspect", "camera", "--aspect", "Subject",
                       *setup["flags"])
    caption = StructuredCaption.from_json(out)
    assert code == 0 and caption["Camera"].text and caption["Subject"].text and not caption["Scene"].text


def test_score_critique_and_revise_reuse_the_recorded_range(setup, capsys):
    source = setup["root"] / "range.json"
    assert run(capsys, "caption", setup["plain"], "--start", 0.5, "--end", 1.5, "--aspects", "camera", "subject",
               "--out", source, *setup["flags"])[0] == 0

    code, out, _ = run(capsys, "score", setup["plain"], "--caption", source, *setup["flags"])
    scores = json.loads(out)
    assert code == 0 and set(scores) == {"Subject", "Camera"} and all(0 < p < 1 for p in scores.values())
    scored = setup["root"] / "scored.json"
    run(capsys, "score", setup["plain"], "--caption", source, "--aspect", "Camera", "--out", scored, *setup["flags"])
    camera = StructuredCaption.load(scored)["Camera"]
    assert camera.reward_is_current and camera.reward == pytest.approx(scores["Camera"], abs=1e-6)

    code, out, _ = run(capsys, "critique", setup["plain"], "--caption", source, "--aspect", "camera", *setup["flags"])
    result = json.loads(out)
    assert code == 0 and list(result) == ["Camera"] and isinstance(result["Camera"]["needs_change"], bool)

    revised_path = setup["root"] / "revised.json"
    code, _, _ = run(capsys, "revise", setup["plain"], "--caption", source, "--aspect", "Camera",
                     "--critique", "Say that the camera tilts up.", "--out", revised_path, *setup["flags"])
    revised = StructuredCaption.load(revised_path)
    history = revised["Camera"].history
    assert code == 0 and len(history) == 1 and history[0].source == "model"
    assert history[0].before == StructuredCaption.load(source)["Camera"].text
    assert (revised.provenance.start, revised.provenance.end) == (0.5, 1.5)

    code, _, err = run(capsys, "revise", setup["plain"], "--caption", source, "--aspect", "Camera",
                       "--critique", "No changes needed.", *setup["flags"])
    assert code == 0 and "kept as it was" in err


@pytest.mark.parametrize("argv, message", [
    (["caption", "{root}/missing.mp4"], "reference: no such file missing.mp4"),
    (["caption", "{root}/notes.mp4"], "not a readable video"),
    (["caption", "{plain}", "--max-clip-seconds", "1"], "Trim it"),
    (["caption", "{cut}", "--shot", "5"], "shot: there is no shot 5; the clip has 2 shot(s), numbered 1 to 2"),
    (["caption", "{cut}", "--shot", "0"], "shot: shots are numbered from 1"),
    (["caption", "{plain}", "--start", "3"], "past the end of the clip"),
    (["caption", "{plain}", "--aspects", "lighting"], "unknown aspect"),
    (["score", "{plain}", "--caption", "{root}/nothing.json"], "caption: no such file"),
    (["revise", "{plain}", "--caption", "{root}/plain-caption.json", "--critique", "x"], "exactly one --aspect"),
    (["critique", "{plain}", "--caption", "{root}/plain-caption.json", "--aspect", "Scene"], "Scene: the Scene text is empty"),
])
def test_errors_are_one_line_with_exit_code_2(setup, capsys, argv, message):
    (setup["root"] / "notes.mp4").write_text("not a video\n" * 20)
    (setup["root"] / "plain-caption.json").write_text(json.dumps({"Camera": "Static.", "Subject": "A bar."}))
    values = {k: setup[k] for k in ("root", "plain", "cut")}
    code, out, err = run(capsys, *[a.format(**values) for a in argv], *setup["flags"])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_bad_captioner_setting_is_named(setup, capsys):
    code, _, err = run(capsys, "caption", setup["plain"], "--captioner", setup["root"] / "no-model",
                       "--device", "cpu")
    assert code == 2 and "CHAI_STUDIO_CAPTIONER or --captioner" in err


def test_subprocess_shows_no_traceback(setup):
    bad = setup["root"] / "voice.mp4"
    bad.write_bytes(b"\x00" * 2000)
    result = subprocess.run([sys.executable, "-m", "studio", "caption", str(bad), *map(str, setup["flags"])],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "error: clip:" in result.stderr and "Traceback" not in result.stderr
