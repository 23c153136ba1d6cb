"""Where the studio's shipped text files live: `prompts/` beside the package in a checkout (and an
editable install), `studio/prompts/` inside an installed wheel (pyproject.toml maps it there)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def prompts_dir() -> Path:
    checkout = PACKAGE.parent / "prompts"
    return checkout if checkout.is_dir() else PACKAGE / "prompts"
