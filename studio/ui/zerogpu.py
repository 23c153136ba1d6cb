"""ZeroGPU support: `@spaces.GPU` on a Hugging Face ZeroGPU Space, a no-op everywhere else.

On a ZeroGPU Space a GPU is attached only while a function decorated with `spaces.GPU` runs, for
at most `duration` seconds, and the Space refuses a call that asks for more than its per-call
maximum ("The requested GPU duration is larger than the maximum allowed"; 300 s when this was
written, and not documented). So every request is sized from its own settings, a run that cannot
fit is refused *before* the GPU is asked for, naming the speed profile that does fit, and the
cheap checks and model downloads happen outside the GPU window.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

from ..errors import InputError

# GPU seconds per (full transformer step x frame x megapixel) for one side, from the official
# timings: TI2V-5B 534.7 s for 50 steps x 121 frames at 1280x704 on a 4090 (0.098; an H200 is
# about 1.6x faster), A14B 1041.5 s for 40 steps x 81 frames at 1280x720 on an H100 (0.35; an H200
# a little faster). Both err long: a call that ends early gives the rest back.
SECONDS_PER_UNIT = {"ti2v-5b": 0.06, "t2v-a14b": 0.3}
OVERHEAD_SECONDS = 30  # moving weights onto the GPU, encoding the prompt, decoding the video
CAPTION_DURATION = 120
PROFILE_ORDER = ("final", "preview", "draft")  # the best-looking profile that fits is named


def on_zerogpu() -> bool:
    """True on a ZeroGPU Space (the `spaces` package is installed and the Space says so)."""
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def full_steps(steps: int, step_cache: str) -> float:
    """Denoising steps that run the whole transformer: a TaylorSeer cache predicts the steps
    between its full ones after the warm-up. A first-block cache's skips depend on the content,
    so none are counted (the estimate stays on the long side)."""
    from ..generation.step_caches import StepCache

    cache = StepCache.parse(step_cache)
    if cache is None or cache.name != "taylorseer":
        return float(steps)
    values = dict(cache.params)
    warmup = min(steps, int(values["warmup"]))
    return warmup + (steps - warmup) / float(values["interval"])


def generation_seconds(preset: str, settings: Any, sides: int = 2) -> int:
    """GPU seconds one comparison run needs: both sides (or one), at the request's own size,
    length, steps and step cache."""
    megapixels = settings.width * settings.height / 1e6
    work = full_steps(settings.steps, settings.step_cache) * settings.num_frames * megapixels
    return int(OVERHEAD_SECONDS + sides * SECONDS_PER_UNIT.get(preset, max(SECONDS_PER_UNIT.values())) * work)


def sides_of(request: Any) -> int:
    return 1 if request.mode == "baseline" else 2


def request_seconds(request: Any) -> int:
    return generation_seconds(request.preset, request.settings, sides_of(request))


def check_fits(request: Any, limit: int, locations: Any = None, runs: int = 1) -> int:
    """The seconds to ask for `runs` renders of `request`, or an InputError when that is more than
    one ZeroGPU call may hold, naming the profile that fits at the request's model (its preset as
    `locations`, a `ModelLocations`, sizes it; the real models' when None)."""
    seconds = request_seconds(request) * runs
    if seconds <= limit:
        return seconds
    from ..generation.profiles import get_profile
    from ..generation.settings import GenerationSettings
    from ..generation.presets import get_preset

    preset = locations.preset(request.preset) if locations else get_preset(request.preset)
    fitting = None
    for name in PROFILE_ORDER:
        settings = GenerationSettings.from_user(preset, profile=name, seed=0)
        if generation_seconds(request.preset, settings, sides_of(request)) * runs <= limit:
            fitting = get_profile(name)
            break
    advice = (f"choose the {fitting.name} profile ({fitting.description})" if fitting else
              "shorten the video or lower the steps and size")
    what = f"{runs} runs of these settings need" if runs > 1 else "these settings need"
    raise InputError(f"{what} about {seconds} GPU seconds, more than the {limit} s one ZeroGPU call may hold; "
                     f"{advice}", "profile")


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
