"""Where the studio's shipped files live: `prompts/` and `samples/` beside the package in a
checkout (and an editable install), `studio/prompts/` and `studio/samples/` inside an installed
wheel (pyproject.toml maps them there)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SAMPLE_CLIP_NAME = "plaza_two_shots.mp4"


def _shipped(name: str) -> Path:
    checkout = PACKAGE.parent / name
    return checkout if checkout.is_dir() else PACKAGE / name


def prompts_dir() -> Path:
    return _shipped("prompts")


def samples_dir() -> Path:
    return _shipped("samples")


def sample_clip() -> Path:
    """The two-shot sample clip (samples/plaza_two_shots.mp4 in a checkout)."""
    return samples_dir() / SAMPLE_CLIP_NAME
