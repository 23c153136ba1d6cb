"""ZeroGPU support: `@spaces.GPU` on a Hugging Face ZeroGPU Space, a no-op everywhere else.

On a ZeroGPU Space a GPU is attached only while a function decorated with `spaces.GPU` runs, for
at most `duration` seconds. Generation time grows with steps x frames x pixels, so the duration is
computed from the request's own settings instead of one fixed worst case (a short request then
waits less in the Space's queue).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

# Seconds per (step x frame x megapixel) for both models together, plus loading and decoding.
# A 50-step, 121-frame 1280x704 TI2V-5B pair takes ~10 min on an H200; this errs on the long side.
SECONDS_PER_STEP_FRAME_MEGAPIXEL = 0.12
OVERHEAD_SECONDS = 60
MAX_DURATION = 1500
CAPTION_DURATION = 120


def on_zerogpu() -> bool:
    """True on a ZeroGPU Space (the `spaces` package is installed and the Space says so)."""
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def generation_seconds(steps: Any, frames: Any, width: Any, height: Any) -> int:
    """GPU seconds to ask for one side-by-side run (two models, same settings)."""
    try:
        work = float(steps) * float(frames) * float(width) * float(height) / 1e6
    except (TypeError, ValueError):
        return MAX_DURATION
    return int(min(MAX_DURATION, max(OVERHEAD_SECONDS, OVERHEAD_SECONDS + SECONDS_PER_STEP_FRAME_MEGAPIXEL * work)))


def gpu(duration: int | Callable[..., int] = CAPTION_DURATION) -> Callable[[Callable], Callable]:
    """`spaces.GPU(duration=...)` on ZeroGPU; returns the function unchanged elsewhere.

    `duration` may be a callable taking the decorated function's arguments (as `spaces` allows).
    """
    def decorate(fn: Callable) -> Callable:
        if not on_zerogpu():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)

    return decorate
