"""Comparison modes, generate's argument checks and `generate --from-run` on the tiny checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.commands.generate import request_from_run
from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import PRESETS, GenerationSettings, load_generator
from studio.session.models import loaded_generator
from studio.generation.comparison import plan_sides, resolve_mode
from studio.generation.run_writing import frames_hash
from studio.generation.outputs import to_uint8

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--frames", "5", "--height", "64", "--width", "64", "--steps", "1", "--device", "cpu"]


def frames_of(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def small(seed=5):
    return GenerationSettings.from_user(PRESETS["ti2v-5b"], frames=5, height=64, width=64, steps=1, seed=seed)


@pytest.fixture(scope="module", autouse=True)
def shared_generator_unloaded_afterwards():
    """`generate` keeps the process-wide generator loaded; later test modules expect none."""
    yield
    from studio.session.models import unload_generator

    unload_generator()


@pytest.fixture(scope="module")
def plain_generator(ui_tiny_dir):
    """The tiny zero-shot model with no finetune configured."""
    return load_generator(StudioConfig(baseline=str(ui_tiny_dir / "wan-ti2v"), device="cpu"),
                                           "ti2v-5b")


def test_mode_resolution_and_sides():
    assert resolve_mode(None, True, None) == "finetuned"
    assert resolve_mode(None, False, "a dog") == "prompt" and resolve_mode("auto", False, "") == "baseline"
    with pytest.raises(InputError, match="mode: unknown mode 'sideways'; choose one of finetuned, prompt, baseline"):
        resolve_mode("sideways", True, None)
    with pytest.raises(InputError, match="short_prompt: prompt mode compares"):
        resolve_mode("prompt", True, "  ")
    left, right = plan_sides("prompt", "long CHAI prompt", "short one", has_finetune=False)
    assert (left.key, right.key) == ("chai_prompt", "short_prompt") and left.model == right.model == "baseline"
    assert left.label == "CHAI prompt · Zero-shot Wan2.2" and right.prompt == "short one"


def test_no_finetune_runs_prompt_mode_or_the_baseline_alone_labelled(plain_generator, tmp_path):
    prompt = "a red kite climbs over a grassy hill while the camera tilts up slowly"
    result = plain_generator.generate(prompt, small(), out_dir=tmp_path, short_prompt="a kite")
    record = json.loads(result.run_json.read_text())
    assert result.mode == "prompt" and record["comparison"]["mode"] == "prompt"
    assert [s["label"] for s in record["comparison"]["sides"]] == ["CHAI prompt · Zero-shot Wan2.2",
                                                                   "Short prompt · Zero-shot Wan2.2"]
    assert [s["prompt"] for s in record["comparison"]["sides"]] == [prompt, "a kite"]
    assert record["models"]["finetuned"] is None and record["comparison"]["short_prompt"] == "a kite"
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"chai_prompt.mp4", "short_prompt.mp4", "side_by_side.mp4"} <= files
    assert not np.array_equal(frames_of(result.videos["chai_prompt"]), frames_of(result.videos["short_prompt"]))
    # The side-by-side video is both sides under their label strips.
    both = frames_of(result.side_by_side_video)
    assert both.shape[2] == 2 * 64 + 4 and both.shape[1] > 64
    # Provenance: the package version, content hashes of the local model folder, ffmpeg.
    assert record["studio"]["version"] and record["hashes"]["baseline"] and len(record["hashes"]["baseline"]) == 64
    assert record["versions"]["ffmpeg"] and record["gpu"] is None
    if (ROOT / ".git").exists():
        assert len(record["studio"]["git_commit"]) == 40

    alone = plain_generator.generate(prompt, small(), out_dir=tmp_path)
    record = json.loads(alone.run_json.read_text())
    assert alone.mode == "baseline" and [s["key"] for s in record["comparison"]["sides"]] == ["baseline"]
    assert alone.side_by_side_video is None and alone.baseline_video.is_file() and alone.finetuned_video is None


def test_generate_checks_every_argument_before_importing_torch(tmp_path, ui_tiny_dir):
    """A bad flag costs no torch/diffusers import (seconds on a real machine)."""
    (tmp_path / "a-file").write_text("x")
    bad_caption = tmp_path / "caption.json"
    bad_caption.write_text("{nope")
    cases = [
        (["--prompt", "a cat", "--steps", "0"], "steps: must be between 1 and 200"),
        (["--prompt", "a cat", "--seed", "x"], "seed: expected a number"),
        (["--prompt", "a cat", "--mode", "sideways"], "mode: unknown comparison mode; choose one of auto, finetuned"),
        (["--prompt", "a cat", "--mode", "prompt", "--finetuned", str(ui_tiny_dir / "finetuned-lora")],
         "short_prompt: prompt mode compares"),
        (["--prompt", "a cat", "--image", str(tmp_path / "nope.png")], "image: no such file nope.png"),
        (["--caption", str(bad_caption)], "caption"),
        (["--prompt", "a cat", "--out", str(tmp_path / "a-file")], "--out: "),
        (["--from-run", str(tmp_path)], "has no run.json"),
        (["--from-run", str(tmp_path), "--steps", "3"], "--from-run: takes every setting from the recorded run"),
        ([], "give --prompt TEXT, --caption FILE or --from-run RUN_DIR"),
    ]
    script = ("import sys, json; from studio.cli import main; rc = main(json.loads(sys.argv[1])); "
              "print(json.dumps([rc, 'torch' in sys.modules, 'diffusers' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    for args, fragment in cases:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(["generate", *args])], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        rc, torch_loaded, diffusers_loaded = json.loads(done.stdout.strip().splitlines()[-1])
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert rc == 2 and len(errors) == 1 and fragment in errors[0], (args, done.stderr)
        assert not torch_loaded and not diffusers_loaded, args
        assert "Traceback" not in done.stderr


def test_generate_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: ti2v-5b)" in text and "50 for ti2v-5b, 40 for t2v-a14b" in text
    assert "CHAI_STUDIO_OUTPUT_DIR" in text and "--from-run" in text and "--short-prompt" in text


def test_out_defaults_to_the_output_dir_setting(ui_tiny_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHAI_STUDIO_OUTPUT_DIR", str(tmp_path / "from-env"))
    assert main(["generate", "--prompt", "a cat sleeps on a sofa", "--baseline", str(ui_tiny_dir / "wan-ti2v"),
                 "--short-prompt", "a cat", "--seed", "3", *TINY]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "from-env" and (run_dir / "chai_prompt.mp4").is_file()


def _videos(run_dir: Path) -> dict[str, np.ndarray]:
    record = json.loads((run_dir / "run.json").read_text())
    return {side["key"]: frames_of(run_dir / side["video"]) for side in record["comparison"]["sides"]}


def test_from_run_reproduces_the_frames_exactly_including_an_image_start(ui_tiny_dir, tmp_path, capsys):
    """Frames are compared as the model produced them (run.json's per-side hash of the uint8 frames):
    H.264 encoding on a busy shared machine was seen to differ between two encodes of equal frames."""
    from PIL import Image

    image = tmp_path / "start.png"
    pixels = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    tiny = ["--tiny", "--tiny-dir", str(ui_tiny_dir)]
    assert main(["generate", "--prompt", "a lighthouse at dusk, the camera trucks left", "--image", str(image),
                 "--seed", "21", "--lora-scale", "0.7", *tiny, *TINY, "--out", str(tmp_path / "first")]) == 0
    first = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["generate", "--prompt", "a fox in the snow", "--mode", "prompt", "--short-prompt", "a fox",
                 "--seed", "4", *tiny, *TINY, "--out", str(tmp_path / "first")]) == 0
    prompt_run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    for original in (first, prompt_run):
        assert main(["generate", "--from-run", str(original), "--device", "cpu", "--out", str(tmp_path / "again")]) == 0
        out = capsys.readouterr()
        again = Path(out.out.strip().splitlines()[-1])
        old, new = json.loads((original / "run.json").read_text()), json.loads((again / "run.json").read_text())
        for key in ("prompt", "settings", "seed", "comparison", "models", "image"):
            assert new[key] == old[key], key
        hashes = [s["frames_sha256"] for s in new["comparison"]["sides"]]
        assert len(hashes) == 2 and hashes[0] != hashes[1] and all(len(h) == 64 for h in hashes)
        assert "frames versus the recorded run: " in out.err and "DIFFERENT" not in out.err
        # The hashes are of the model's frames: a fresh render of the record gives them again.
        session, request, _ = request_from_run(original, StudioConfig(device="cpu"))
        generator = loaded_generator()  # the one the command loaded
        _, sides = generator.plan(request.prompt, request.mode, request.short_prompt)
        start = Image.open(request.start_image).convert("RGB") if request.start_image else None
        frames, _ = generator.renderer.render_sides(sides, request.settings, image=start)
        assert [frames_hash(to_uint8(frames[s.key])) for s in sides] == hashes
        assert _videos(again).keys() == _videos(original).keys()
    assert json.loads((first / "run.json").read_text())["image"]["file"] == "start_image.png"


def test_page_step_runs_prompt_mode_without_a_finetune(ui_tiny_dir, tmp_path):
    import threading

    from studio.session import Done, GenerateRequest, Plan, Session, SideStep

    config = StudioConfig(baseline=str(ui_tiny_dir / "wan-ti2v"), device="cpu", output_dir=tmp_path)
    session = Session(config)
    request = GenerateRequest.from_user(session.limits, "A dog runs; the camera pans left.", "ti2v-5b",
                                        seconds=0.2, resolution="64x64", steps=1, seed=9, mode="auto",
                                        short_prompt="a dog")
    events = list(session.generate(request, threading.Event()))
    (plan,) = [e for e in events if isinstance(e, Plan)]
    assert plan.mode == "prompt" and [label for _, label in plan.sides] == [
        "CHAI prompt · Zero-shot Wan2.2", "Short prompt · Zero-shot Wan2.2"]
    assert {(e.label, e.step, e.total) for e in events if isinstance(e, SideStep)} == {
        ("CHAI prompt · Zero-shot Wan2.2", 1, 1), ("Short prompt · Zero-shot Wan2.2", 1, 1)}
    assert isinstance(events[-1], Done)
    result = events[-1].result
    assert result.mode == "prompt"
    assert result.left_video.name == "chai_prompt.mp4" and result.right_video.name == "short_prompt.mp4"
