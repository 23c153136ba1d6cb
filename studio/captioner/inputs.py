"""Checking what a captioner call is given: the clip, the aspect names and the texts.

Apart from `model` so the rules a caller must meet read in one place, without the model code
around them; each refusal is an `InputError` naming the argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..caption.structured import ASPECTS, aspect_name
from ..errors import InputError


def as_clip(clip: Any) -> Any:
    from ..video import SampledClip, sample_clip

    if isinstance(clip, SampledClip):
        if not clip.frames:
            raise InputError("the sampled clip has no frames", "clip")
        return clip
    if isinstance(clip, (str, Path)):
        return sample_clip(clip, check_cuts=False)
    raise InputError(f"expected a sampled clip or a video path, got {type(clip).__name__}", "clip")


def aspect_list(aspects: Sequence[str]) -> list[str]:
    if isinstance(aspects, str):
        aspects = [aspects]
    names = []
    for aspect in aspects:
        name = aspect_name(aspect)
        if name not in names:
            names.append(name)
    if not names:
        raise InputError(f"choose at least one of {', '.join(ASPECTS)}", "aspects")
    return names


def checked_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be non-empty text", field)
    return value.strip()
