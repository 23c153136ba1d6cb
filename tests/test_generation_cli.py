"""`python -m studio generate` end to end in a subprocess, on the tiny checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_cli(tiny_models):
    return tiny_models("wan-ti2v", "finetuned-lora")


def studio(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("CHAI_STUDIO_")}
    return subprocess.run([sys.executable, "-m", "studio", "generate", *map(str, args)], capture_output=True, check=False,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_cli_generates_and_prints_the_run_dir_last(tiny_cli, tmp_path):
    caption = tmp_path / "caption.json"
    caption.write_text(json.dumps({"Subject": "A tall man in a gray coat.", "Scene": "A wet street at night.",
                                   "Motion": "He walks slowly toward the camera.", "Spatial": "He stays centered.",
                                   "Camera": "A static medium shot at eye level."}))
    image = tmp_path / "start.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (10, 120, 200)).save(image)
    result = studio("--caption", caption, "--baseline", tiny_cli["wan-ti2v"], "--finetuned", tiny_cli["finetuned-lora"],
                    "--lora-scale", "0.8", "--frames", 9, "--height", 64, "--width", 64, "--steps", 2, "--seed", 11,
                    "--image", image, "--device", "cpu", "--out", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "side_by_side.mp4").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["seed"] == 11 and record["models"]["finetuned"]["lora_scale"] == 0.8
    assert record["caption"]["aspects"]["Subject"]["text"] == "A tall man in a gray coat."
    assert "gray coat" in record["prompt"] and record["image"]["source"] == str(image)
    assert "finetuned: step 2/2" in result.stderr


@pytest.mark.parametrize("args,fragment", [
    (["--steps", "0"], "steps: must be between 1 and 200"),
    (["--duration", "-2"], "duration: must be more than 0"),
    (["--height", "5"], "height: must be at least 32"),
    (["--image", "NOTIMAGE"], "image: not-an-image.png is not an image"),
    (["--finetuned", "/no/such/lora.safetensors"], "finetuned: /no/such/lora.safetensors does not exist"),
    (["--finetuned", "A14B"], "does not fit baseline"),
])
def test_cli_bad_input_exits_2_with_one_line(tiny_cli, tiny_models, tmp_path, args, fragment):
    if "A14B" in args:
        args = ["--finetuned", tiny_models("finetuned-lora-a14b")["finetuned-lora-a14b"]]
    if "NOTIMAGE" in args:
        bogus = tmp_path / "not-an-image.png"
        bogus.write_text("hello")
        args = ["--image", bogus]
    base = ["--prompt", "a cat sits", "--baseline", tiny_cli["wan-ti2v"], "--finetuned", tiny_cli["finetuned-lora"],
            "--frames", 9, "--height", 64, "--width", 64, "--steps", 2, "--device", "cpu", "--out", tmp_path / "runs"]
    if "--duration" in args:
        base = [a for i, a in enumerate(base) if a != "--frames" and (i == 0 or base[i - 1] != "--frames")]
    result = studio(*base, *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
