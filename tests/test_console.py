"""What a newcomer sees on the console: quiet by default, the libraries' output with --verbose,
and one consistent command line (workflow order, the same flags and numbering everywhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Shot detection (PySceneDetect switches FFmpeg's logging back on), then an H.264 encode.
DETECT_THEN_ENCODE = """
import sys
import numpy as np
from studio.logging_setup import configure
configure(verbose=sys.argv[2] == "verbose")
from studio.video import detect_shots
from studio.generation.outputs import write_video
detect_shots(sys.argv[1])
write_video(sys.argv[3], np.zeros((9, 64, 64, 3), np.uint8), 24)
"""


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAI_STUDIO_", "TRANSFORMERS_", "DIFFUSERS_",
                                                                      "HF_HUB_DISABLE"))}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
                          check=False)


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_x264_statistics_only_with_verbose(reference_clip, tmp_path, mode):
    result = run_python("-c", DETECT_THEN_ENCODE, str(reference_clip), mode, str(tmp_path / "out.mp4"))
    assert result.returncode == 0, result.stderr
    x264_lines = [line for line in result.stderr.splitlines() if "libx264" in line]
    if mode == "quiet":
        assert x264_lines == [], result.stderr
    else:
        assert len(x264_lines) > 5  # the statistics FFmpeg prints for every encode


def test_tiny_models_writes_without_progress_bars_unless_verbose(tmp_path):
    quiet = run_python("-m", "studio", "tiny-models", str(tmp_path / "q"), "--only", "captioner")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = run_python("-m", "studio", "--verbose", "tiny-models", str(tmp_path / "v"), "--only", "captioner")
    assert loud.returncode == 0 and "Writing model shards" in loud.stderr


def test_long_prompt_token_warning_is_hidden_by_default():
    """transformers warns when a composed prompt exceeds the tokenizer's length; the meter says it already."""
    code = ("from studio.logging_setup import configure; import sys; configure(verbose=sys.argv[1] == 'verbose')\n"
            "from studio.tiny.wan import _tiny_tokenizer\n"
            "_tiny_tokenizer()(' '.join(['camera'] * 600))\n")
    assert "sequence length is longer" not in run_python("-c", code, "quiet").stderr
    assert "sequence length is longer" in run_python("-c", code, "verbose").stderr


def test_subcommands_are_listed_in_workflow_order():
    from studio.cli import COMMANDS

    workflow = ["tiny-models", "shots", "caption", "critique", "revise", "score", "compose", "generate"]
    positions = [COMMANDS.index(name) for name in workflow]
    assert positions == sorted(positions)
    assert COMMANDS.index("generate") < COMMANDS.index("spec") and COMMANDS.index("generate") < COMMANDS.index("config")


@pytest.mark.parametrize("command, flag, default", [
    ("shots", "--threshold", "default 27"),
    ("caption", "--max-new-tokens", "else 512"),
])
def test_help_shows_the_defaults(capsys, command, flag, default):
    from studio.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]
    assert flag in text and default in text.split(flag, 1)[1].split(" --", 1)[0]


def test_verbose_is_accepted_before_and_after_the_command():
    from studio.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--verbose", "spec"]).verbose is True
    assert parser.parse_args(["spec", "--verbose"]).verbose is True
    assert parser.parse_args(["spec"]).verbose is False
