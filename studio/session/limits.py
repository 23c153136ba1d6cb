"""Every limit a visitor or a script can run into, in one place.

The page builds its sliders, boxes and choices from `Limits`; the session's request objects check
values against the same object; the command line refuses the same values with the same words. A
limit that exists in the core (the composer's word cap, the generation settings' ranges, the
captioner's best-of-N cap) is read from there, never restated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..compose.composer import HARD_CAP_WORDS, MIN_WORDS
from ..config import StudioConfig
from ..generation.settings import GUIDANCE_RANGE, MAX_NEGATIVE_CHARS, MAX_SEED, SHIFT_RANGE, STEPS_RANGE
from ..video import VIDEO_EXTENSIONS

TOKEN_LIMIT = 512  # Wan's umT5 reads at most 512 prompt tokens (GenerationSettings.max_sequence_length)
MAX_PROMPT_CHARS = 20000  # far above 512 tokens; refuses pasted documents before they are tokenised
MAX_CRITIQUE_CHARS = 2000
BEST_OF_RANGE = (2, 8)  # candidates per aspect on the page; each is one sampled caption plus a reward


@dataclass(frozen=True)
class Limits:
    max_clip_seconds: float
    max_upload_mb: int
    max_aspect_chars: int
    default_words: int
    caption_fps: float  # the active prompt pack's sampling rate
    words: tuple[int, int] = (MIN_WORDS, HARD_CAP_WORDS)
    token_limit: int = TOKEN_LIMIT
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_critique_chars: int = MAX_CRITIQUE_CHARS
    max_negative_chars: int = MAX_NEGATIVE_CHARS
    steps: tuple[int, int] = STEPS_RANGE
    guidance: tuple[float, float] = GUIDANCE_RANGE
    shift: tuple[float, float] = SHIFT_RANGE
    max_seed: int = MAX_SEED
    best_of: tuple[int, int] = BEST_OF_RANGE
    video_extensions: tuple[str, ...] = tuple(VIDEO_EXTENSIONS)

    @classmethod
    def from_config(cls, config: StudioConfig) -> Limits:
        from ..captioner.packs import PromptPack

        return cls(max_clip_seconds=config.max_clip_seconds, max_upload_mb=config.max_upload_mb,
                   max_aspect_chars=config.max_aspect_chars, default_words=config.prompt_words,
                   caption_fps=PromptPack.for_config(config).sampling.fps)

    @property
    def video_types_text(self) -> str:
        return ", ".join(e.lstrip(".") for e in self.video_extensions)

    def check_video_name(self, name: str) -> None:
        """Refuse a file whose name is not one of the video types the studio reads."""
        from ..errors import InputError

        if Path(name).suffix.lower() not in self.video_extensions:
            raise InputError(f"{Path(name).name} is not a video file the studio reads; use a clip of type "
                             f"{self.video_types_text}", "reference")
