"""`GenerationSettings`: every knob of one side-by-side run, validated, with friendly conversion.

People think in seconds and round sizes; the model wants 4k+1 frames and sizes that are multiples
of its VAE compression x patch size. `GenerationSettings.from_user` converts and snaps, and raises
`InputError` naming the field for anything it cannot make sense of.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import values
from ..errors import InputError
from .presets import DEFAULT_NEGATIVE_PROMPT, Preset, snap_frames

STEPS_RANGE = (1, 200)
GUIDANCE_RANGE = (0.0, 20.0)
SHIFT_RANGE = (0.5, 30.0)
MAX_SEED = 2**32 - 1
MAX_NEGATIVE_CHARS = 4000


@dataclass(frozen=True)
class GenerationSettings:
    height: int
    width: int
    num_frames: int
    fps: int
    steps: int
    guidance: float
    guidance_2: float | None
    shift: float
    seed: int  # always concrete: -1 is resolved by `from_user` (or `resolve_seed`)
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    max_sequence_length: int = 512  # umT5 tokens of prompt kept (Wan's training length)
    preview_every: int = 0  # latent preview image every k steps; 0 = none
    profile: str = "final"  # the speed profile the defaults came from (see profiles)
    step_cache: str = ""  # the step cache this run used, canonical spelling; "" = none

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> GenerationSettings:
        return dataclasses.replace(self, **changes)

    def following_image(self, image_size: tuple[int, int], multiple: int, max_side: int) -> GenerationSettings:
        """These settings with the size that follows a start image: its aspect ratio at this size's
        pixel area, as Wan2.2's own TI2V code picks it (see `studio.video.framing`)."""
        from ..video.framing import size_for_image

        width, height = size_for_image(*image_size, area=self.width * self.height, multiple=multiple,
                                       max_side=max_side)
        return self.replace(width=width, height=height)

    @classmethod
    def defaults(cls, preset: Preset, seed: int = -1) -> GenerationSettings:
        return cls.from_user(preset, seed=seed)

    @classmethod
    def from_user(
        cls,
        preset: Preset,
        *,
        duration: Any = None,
        frames: Any = None,
        height: Any = None,
        width: Any = None,
        steps: Any = None,
        guidance: Any = None,
        guidance_2: Any = None,
        shift: Any = None,
        seed: Any = -1,
        negative_prompt: str | None = None,
        fps: Any = None,
        preview_every: Any = 0,
        size_multiple: int | None = None,
        profile: Any = None,
        step_cache: Any = None,
        adapter_defaults: Mapping[str, Any] | None = None,
    ) -> GenerationSettings:
        """Convert user values (numbers or strings; None = preset default) into checked settings.

        `duration` (seconds) and `frames` are alternatives; frames snap to the nearest 4k+1.
        Height and width snap to the nearest multiple of `size_multiple` (the preset's unless the
        loaded model says otherwise). Seed -1 draws a random seed, which is then stored.
        `profile` (draft, preview, final) supplies the size, frames, steps and step cache not given.
        `adapter_defaults` (a speed adapter's steps, guidance, guidance_2 and shift) come between the
        two: below explicit values, above the profile's and the preset's.
        """
        from .profiles import get_profile
        from .step_caches import canonical

        chosen = get_profile(profile)
        scaled = chosen.defaults(preset)
        adapter = dict(adapter_defaults or {})
        steps = adapter.get("steps") if steps is None else steps
        guidance = adapter.get("guidance") if guidance is None else guidance
        shift = adapter.get("shift") if shift is None else shift
        if preset.two_experts and guidance_2 is None:
            # A distilled adapter runs both experts without guidance unless its sidecar says otherwise.
            guidance_2 = adapter.get("guidance_2", adapter.get("guidance"))
        if duration is None and frames is None and chosen.frames != 1.0:
            frames = scaled["frames"]
        height = scaled["height"] if height is None and chosen.area != 1.0 else height
        width = scaled["width"] if width is None and chosen.area != 1.0 else width
        steps = scaled["steps"] if steps is None else steps
        cache = canonical(scaled["step_cache"] if step_cache is None else step_cache)
        multiple = size_multiple or preset.size_multiple
        fps_value = _whole(fps, "fps") if fps is not None else preset.fps
        if not 1 <= fps_value <= 60:
            raise InputError(f"must be between 1 and 60 frames per second, got {fps_value}", "fps")
        if duration is not None and frames is not None:
            raise InputError("give either a duration or a frame count, not both", "duration")
        if duration is not None:
            seconds = _decimal(duration, "duration")
            max_seconds = (preset.max_frames - 1) / fps_value
            if not 0 < seconds <= max_seconds + 1e-6:
                raise InputError(
                    f"must be more than 0 and at most {max_seconds:g} seconds for {preset.label} "
                    f"({preset.max_frames} frames at {fps_value} fps), got {seconds:g}", "duration")
            num_frames = snap_frames(seconds * fps_value + 1)
        elif frames is not None:
            count = _whole(frames, "frames")
            if not 1 <= count <= preset.max_frames:
                raise InputError(f"must be between 1 and {preset.max_frames} for {preset.label}, got {count}", "frames")
            num_frames = snap_frames(count)
        else:
            num_frames = preset.frames
        num_frames = min(num_frames, preset.max_frames)

        h = snap_size(_whole(height, "height") if height is not None else preset.height, multiple,
                      preset.max_side, "height", preset.limit_reason)
        w = snap_size(_whole(width, "width") if width is not None else preset.width, multiple,
                      preset.max_side, "width", preset.limit_reason)

        n_steps = _whole(steps, "steps", STEPS_RANGE) if steps is not None else preset.steps
        g = _decimal(guidance, "guidance", GUIDANCE_RANGE) if guidance is not None else preset.guidance
        if preset.two_experts:
            g2 = _decimal(guidance_2, "guidance_2", GUIDANCE_RANGE) if guidance_2 is not None else preset.guidance_2
        else:
            if guidance_2 is not None:
                raise InputError(f"{preset.label} has one expert; a second guidance scale does not apply",
                                 "guidance_2")
            g2 = None
        s = _decimal(shift, "shift", SHIFT_RANGE) if shift is not None else preset.shift

        negative = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else str(negative_prompt)
        if len(negative) > MAX_NEGATIVE_CHARS:
            raise InputError(f"is {len(negative)} characters; keep it under {MAX_NEGATIVE_CHARS}", "negative_prompt")
        every = _whole(preview_every, "preview_every")
        if every < 0:
            raise InputError(f"must be 0 (off) or a positive step interval, got {every}", "preview_every")
        return cls(height=h, width=w, num_frames=num_frames, fps=fps_value, steps=n_steps, guidance=g,
                   guidance_2=g2, shift=s, seed=resolve_seed(seed), negative_prompt=negative,
                   preview_every=every, profile=chosen.name, step_cache=cache)


def snap_size(value: int, multiple: int, max_side: int, field: str, limit_reason: str = "") -> int:
    if value <= 0:
        raise InputError(f"must be a positive number of pixels, got {value}", field)
    snapped = round(value / multiple) * multiple
    if snapped < multiple:
        raise InputError(f"must be at least {multiple} pixels (the model works in blocks of {multiple}), got {value}",
                         field)
    if snapped > max_side:
        reason = f" for {limit_reason}" if limit_reason else ""
        raise InputError(f"must be at most {max_side} pixels{reason}, got {value}", field)
    return snapped


def resolve_seed(seed: Any) -> int:
    """-1 (or None / empty) draws a random seed; anything else must be 0 .. 2**32-1."""
    if seed is None or (isinstance(seed, str) and seed.strip() == ""):
        value = -1
    else:
        value = _whole(seed, "seed")
    if value == -1:
        return secrets.randbelow(2**31)
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"must be -1 (random) or between 0 and {MAX_SEED}, got {value}", "seed")
    return value


def _whole(value: Any, field: str, bounds: tuple[int, int] | None = None) -> int:
    # Settings arrive as flags and page boxes, always text, so a refusal quotes it without "text".
    return values.whole(value, field, *(bounds or (None, None)), say_text=False)


def _decimal(value: Any, field: str, bounds: tuple[float, float] | None = None) -> float:
    return values.number(value, field, *(bounds or (None, None)), say_text=False)
