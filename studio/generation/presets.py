"""Baseline presets: the published Wan2.2 checkpoints and the settings each was trained for."""

from __future__ import annotations

from dataclasses import dataclass

# The studio's own default negative prompt: common video artefacts to steer away from.
DEFAULT_NEGATIVE_PROMPT = (
    "blurry, low resolution, jpeg artifacts, flickering, frozen frame, watermark, subtitles, text overlay, "
    "distorted faces, deformed hands, extra fingers, extra limbs, overexposed, washed out colors, "
    "cluttered background, people walking backwards"
)


@dataclass(frozen=True)
class Preset:
    """One Wan2.2 family: where its weights live and the defaults it was trained for."""

    name: str
    label: str
    model_id: str
    height: int
    width: int
    frames: int
    fps: int
    steps: int
    guidance: float  # classifier-free guidance (the high-noise expert's for A14B)
    guidance_2: float | None  # low-noise expert's guidance; None for one-expert models
    shift: float  # flow-matching timestep shift
    two_experts: bool  # T2V-A14B: `transformer` (high noise) + `transformer_2` (low noise)
    boundary_ratio: float | None
    expand_timesteps: bool  # TI2V-5B: per-token timesteps (needed for first-frame conditioning)
    supports_image: bool
    size_multiple: int  # VAE spatial compression x patch size: height and width snap to this
    max_frames: int
    max_side: int

    @property
    def duration(self) -> float:
        return (self.frames - 1) / self.fps


PRESETS: dict[str, Preset] = {
    "ti2v-5b": Preset(
        name="ti2v-5b", label="Wan2.2 TI2V-5B", model_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        height=704, width=1280, frames=121, fps=24, steps=50, guidance=5.0, guidance_2=None, shift=5.0,
        two_experts=False, boundary_ratio=None, expand_timesteps=True, supports_image=True,
        size_multiple=32, max_frames=121, max_side=1280,
    ),
    "t2v-a14b": Preset(
        name="t2v-a14b", label="Wan2.2 T2V-A14B", model_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        height=720, width=1280, frames=81, fps=16, steps=40, guidance=4.0, guidance_2=3.0, shift=12.0,
        two_experts=True, boundary_ratio=0.875, expand_timesteps=False, supports_image=False,
        size_multiple=16, max_frames=81, max_side=1280,
    ),
}
DEFAULT_PRESET = "ti2v-5b"


def get_preset(name: str) -> Preset:
    from ..errors import InputError

    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}", "preset") from None
