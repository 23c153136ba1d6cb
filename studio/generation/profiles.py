"""Speed profiles: a draft in a fraction of the time, then the final at Wan2.2's own settings.

A profile scales the preset (so the tiny presets scale the same way): the share of the preset's
pixel area (the aspect ratio kept), of its frames and of its steps, and the step cache it runs
with. `final` is the preset itself. Every value a user gives explicitly wins over the profile's,
and run.json records the profile and every value that ran, so `--from-run` renders it again.

Transformer work per side is about steps x tokens (tokens = latent frames x latent pixels / patch),
so `draft` costs about 0.2 x 0.44 x 0.68 = 0.06 of `final` before its step cache skips more.
Measured ratios: `bench/speed.py`, docs/performance.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from .presets import Preset, snap_frames

FIELD = "profile"


@dataclass(frozen=True)
class SpeedProfile:
    name: str
    area: float  # share of the preset's pixel area
    frames: float  # share of the preset's frames (snapped to 4k+1)
    steps: float  # share of the preset's denoising steps
    step_cache: str  # a step-cache setting (see step_caches), "" for none
    description: str

    def defaults(self, preset: Preset) -> dict[str, int | str]:
        """The size, frames, steps and step cache this profile gives `preset`."""
        scale = math.sqrt(self.area)
        multiple = preset.size_multiple
        width = max(multiple, round(preset.width * scale / multiple) * multiple)
        height = max(multiple, round(preset.height * scale / multiple) * multiple)
        frames = min(preset.max_frames, snap_frames(1 + (preset.frames - 1) * self.frames))
        steps = max(1, round(preset.steps * self.steps))
        return {"width": width, "height": height, "frames": frames, "steps": steps, "step_cache": self.step_cache}


PROFILES: dict[str, SpeedProfile] = {
    # About 480p (832x480 is 0.43 of 1280x704 and of 1280x720), two thirds of the frames, a fifth
    # of the steps, and TaylorSeer predicting two steps in three after a warm-up: a look at framing
    # and motion in seconds, not minutes.
    "draft": SpeedProfile("draft", area=0.44, frames=0.68, steps=0.2, step_cache="taylorseer:interval=3,warmup=2",
                          description="about 480p, 2/3 of the frames, 1/5 of the steps, TaylorSeer cache"),
    # The final size and length at half the steps with a gentle cache: the shot as it will look.
    "preview": SpeedProfile("preview", area=1.0, frames=1.0, steps=0.5, step_cache="first-block:threshold=0.05",
                            description="full size and length, 1/2 of the steps, first-block cache"),
    "final": SpeedProfile("final", area=1.0, frames=1.0, steps=1.0, step_cache="",
                          description="Wan2.2's own settings (the preset), no cache"),
}
DEFAULT_PROFILE = "final"


def get_profile(name: object) -> SpeedProfile:
    key = DEFAULT_PROFILE if name in (None, "") else str(name).strip().lower()
    if key not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}", FIELD)
    return PROFILES[key]
