"""Baseline presets: the published Wan2.2 checkpoints and the settings each was trained for."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

# The studio's own default negative prompt. It covers what Wan2.2's own default (which the
# released models were sampled with) steers away from, in our words: over-saturated and overexposed
# colour, static and frozen frames, blur, subtitles, an artwork look, low quality and compression
# artefacts, malformed bodies and hands, a cluttered or crowded background, walking backwards.
# diffusers' Wan folders ship no negative prompt, so there is none to read from the model folder.
DEFAULT_NEGATIVE_PROMPT = (
    "garish over-saturated colors, overexposed, static shot, frozen still frame, motionless picture, blurry "
    "details, subtitles, on-screen text, painting or artwork style, still image, dull grayish tones, worst "
    "quality, low quality, jpeg compression artifacts, ugly, incomplete body, extra fingers, fused fingers, "
    "poorly drawn hands, poorly drawn face, deformed, disfigured, malformed limbs, three legs, cluttered "
    "background, many people in the background, people walking backwards"
)

TEMPORAL_STRIDE = 4  # Wan VAEs compress 4 frames into one latent frame (plus the first)


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
    resolutions: tuple[str, ...] = ()  # WIDTHxHEIGHT choices the page offers, the default first
    limit_reason: str = ""  # why max_side / max_frames are what they are, when a model sets them
    tiny: bool = False  # the tiny checkpoints' variant (small defaults): run.json says so, for --from-run

    @property
    def duration(self) -> float:
        return (self.frames - 1) / self.fps


PRESETS: dict[str, Preset] = {
    "ti2v-5b": Preset(
        name="ti2v-5b", label="Wan2.2 TI2V-5B", model_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        height=704, width=1280, frames=121, fps=24, steps=50, guidance=5.0, guidance_2=None, shift=5.0,
        two_experts=False, boundary_ratio=None, expand_timesteps=True, supports_image=True,
        size_multiple=32, max_frames=121, max_side=1280, resolutions=("1280x704", "704x1280", "960x544"),
    ),
    "t2v-a14b": Preset(
        name="t2v-a14b", label="Wan2.2 T2V-A14B", model_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        height=720, width=1280, frames=81, fps=16, steps=40, guidance=4.0, guidance_2=3.0, shift=12.0,
        two_experts=True, boundary_ratio=0.875, expand_timesteps=False, supports_image=False,
        size_multiple=16, max_frames=81, max_side=1280, resolutions=("1280x720", "720x1280", "832x480"),
    ),
}
DEFAULT_PRESET = "ti2v-5b"


# Tiny mode: the random-weight checkpoints exist to prove that each step runs, so their defaults
# finish in seconds on a CPU (9 frames of 64x64, 2 steps).
TINY_SIZE, TINY_FRAMES, TINY_STEPS = (64, 64), 9, 2


def size_limits(rope_max_seq_len: int, patch_size, spatial_scale: int, temporal_scale: int) -> tuple[int, int]:
    """(largest side in pixels, most frames) a Wan transformer can place on its rotary position table.

    The table has `rope_max_seq_len` rows per axis; a side of S pixels takes S / (VAE spatial
    compression x patch) rows, and F frames take ((F - 1) / temporal compression + 1) / patch rows.
    Larger inputs do not fit the table and fail deep inside the model.
    """
    p_t, p_h, _ = patch_size
    max_side = rope_max_seq_len * spatial_scale * p_h
    max_frames = (rope_max_seq_len * p_t - 1) * temporal_scale + 1
    return max_side, max_frames



def tiny_preset(preset: Preset) -> Preset:
    """The preset with the tiny checkpoints' defaults and limits (derived from their configs)."""
    from ..tiny.wan import TINY_SHAPES

    transformer, vae = TINY_SHAPES[preset.name]
    max_side, max_frames = size_limits(transformer["rope_max_seq_len"], transformer["patch_size"],
                                       vae["scale_factor_spatial"], vae["scale_factor_temporal"])
    width, height = TINY_SIZE
    choices = [(width, height), (2 * width, height), (width, 2 * height)]
    return dataclasses.replace(
        preset, width=width, height=height, frames=TINY_FRAMES, steps=TINY_STEPS,
        max_side=min(preset.max_side, max_side), max_frames=min(preset.max_frames, max_frames),
        resolutions=tuple(f"{w}x{h}" for w, h in choices if max(w, h) <= max_side),
        limit_reason=f"the tiny {preset.name} checkpoint (its transformer's rope_max_seq_len is "
                     f"{transformer['rope_max_seq_len']})", tiny=True,
    )


def get_preset(name: str, tiny: bool = False) -> Preset:
    """The named preset; with `tiny`, its tiny-checkpoint variant (small defaults, the tiny limits)."""
    from ..errors import InputError

    try:
        preset = PRESETS[name]
    except KeyError as exc:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}", "preset") from exc
    return tiny_preset(preset) if tiny else preset


def snap_frames(count: float) -> int:
    """Nearest frame count of the form 4k+1 (what the Wan VAE encodes without padding)."""
    k = max(0, math.floor((count - 1) / TEMPORAL_STRIDE + 0.5))  # halves round up
    return TEMPORAL_STRIDE * k + 1
