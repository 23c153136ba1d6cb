"""Cheap checks first: a command line that cannot work is refused with one `error:` line before
any model loads (or any tiny checkpoint is built), and flags are never taken from a prefix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def run_python(*args: str, code: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -m studio ARGS` (or `python -c CODE ARGS`) from the checkout, without the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    env.update(PYTHONPATH=str(ROOT), CHAI_STUDIO_DEVICE="cpu", GRADIO_ANALYTICS_ENABLED="False")
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "studio", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Loading" not in done.stderr
    return lines[0]


def test_a_shot_past_the_last_is_refused_before_the_captioner_loads(reference_clip, tmp_path):
    # --tiny builds its checkpoints into --tiny-dir when a model first loads: the folder staying
    # absent shows that nothing was loaded.
    tiny_dir = tmp_path / "not-built"
    done = run_python("caption", str(reference_clip), "--shot", "3", "--tiny", "--tiny-dir", str(tiny_dir))
    assert one_error_line(done) == "error: shot: there is no shot 3; the clip has 2 shot(s), numbered 1 to 2"
    assert not tiny_dir.exists()


def test_a_missing_dataset_folder_is_refused_before_training_starts(tmp_path):
    tiny_dir, out = tmp_path / "not-built", tmp_path / "lora"
    done = run_python("train", str(tmp_path / "MISSING"), "--out", str(out), "--tiny", "--tiny-dir", str(tiny_dir))
    line = one_error_line(done)
    assert line.startswith("error: dataset: ") and "MISSING is not a dataset folder" in line
    assert not tiny_dir.exists() and not out.exists()


def test_the_page_refuses_a_missing_finetuned_path_before_serving(tmp_path):
    out = tmp_path / "outputs"
    done = subprocess.run([sys.executable, "app.py", "--finetuned", "/no/such", "--port", "1",
                           "--output-dir", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    line = one_error_line(done)
    assert line.startswith("error: finetuned: /no/such does not exist")
    assert "Running on" not in done.stdout and not out.exists()


RAY_HIDDEN = "import sys; sys.modules['ray'] = None; from studio.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("command", ["batch", "dataset"])
def test_ray_without_ray_installed_names_the_extra(tmp_path, command):
    (tmp_path / "jobs.jsonl").write_text('{"prompt": "a kite over a hill"}\n')
    (tmp_path / "clips").mkdir()
    source = str(tmp_path / ("jobs.jsonl" if command == "batch" else "clips"))
    tiny_dir, out = tmp_path / "not-built", tmp_path / "out"
    done = run_python(command, source, "--out", str(out), "--ray", "--tiny", "--tiny-dir", str(tiny_dir),
                      code=RAY_HIDDEN)
    line = one_error_line(done)
    assert line.startswith("error: --ray: Ray is not installed")
    assert "pip install -r requirements-scale.txt" in line and "pip install .[ray]" in line
    assert not tiny_dir.exists() and not out.exists()


def test_a_prefix_of_a_flag_is_not_taken_for_the_flag(capsys):
    from studio.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["generate", "--prompt", "a cat", "--frame", "9", "--tiny"])
    assert stopped.value.code == 2 and "unrecognized arguments: --frame 9" in capsys.readouterr().err
    # every parser, the main one and each subcommand's, refuses abbreviations
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert parser.allow_abbrev is False and subparsers and all(not p.allow_abbrev for p in subparsers.values())
    assert build_parser().parse_args(["generate", "--prompt", "a", "--frames", "9"]).frames == "9"  # in full: fine


def test_the_page_takes_no_prefix_either(capsys):
    import app

    with pytest.raises(SystemExit):
        app.parse_args(["--po", "7861"])
    assert "unrecognized arguments: --po 7861" in capsys.readouterr().err
    assert app.parse_args(["--port", "7861"]).port == 7861
