"""Speed profiles and step caches, measured: transformer work and wall time as ratios to `final`.

    python bench/speed.py [--steps 50]

On the tiny random-weight TI2V-5B (CPU, no download), at a bench size with Wan2.2's real step count
(128x128, 33 frames, 50 steps: the tiny preset's 2 steps would make every ratio meaningless), one
side-by-side per row (a LoRA finetune and the zero-shot model, classifier-free guidance on):

- block evaluations: attention calls counted by forward hooks on every block (a block a cache
  skips never reaches its attention), and the same weighted by the tokens each call saw;
- wall time of the side-by-side;
- PSNR of both videos against the uncached run at the same profile (inf: identical).

MagCache rows use ratios calibrated on both tiny models in the same run (`calibrate_magcache`, what
`python -m studio calibrate-cache` runs), at final's steps, kept in a temporary settings folder.

Every ratio is measured in this one run. Figures at full size need a CUDA GPU (see
bench/side_by_side.py for the full-size timings of one profile).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.config import StudioConfig  # noqa: E402
from studio.generation import load_generator  # noqa: E402
from studio.generation.calibration import save_calibration  # noqa: E402
from studio.generation.presets import get_preset  # noqa: E402
from studio.generation.profiles import PROFILES  # noqa: E402
from studio.generation.settings import GenerationSettings  # noqa: E402
from studio.generation.step_caches import canonical  # noqa: E402
from studio.tiny import build_tiny_models  # noqa: E402

PROMPT = "A slow dolly forward along a row of stone columns at dusk, the camera at eye level."
CACHES = ("", "first-block:threshold=0.08", "first-block:threshold=0.2", "taylorseer:interval=3,warmup=2",
          "taylorseer:interval=4,warmup=2", "magcache", "magcache:threshold=0.2")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


class Counter:
    """Attention evaluations of every block, plain and weighted by the tokens of each call."""

    def __init__(self, transformers) -> None:
        self.calls = self.tokens = 0
        for transformer in transformers:
            for block in transformer.blocks:
                block.attn1.register_forward_hook(self._seen)

    def _seen(self, module, args, output) -> None:
        self.calls += 1
        self.tokens += int(args[0].shape[1])

    def reset(self) -> None:
        self.calls = self.tokens = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="final's steps at the bench size (Wan2.2's: 50)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as folder:
        tiny = build_tiny_models(folder, only=["wan-ti2v", "finetuned-lora"])
        generator = load_generator(StudioConfig(
            baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu"), "ti2v-5b")
        preset = dataclasses.replace(get_preset("ti2v-5b", tiny=True), width=128, height=128, frames=33,
                                     steps=args.steps)
        # Calibrated before the counter exists, so the calibration's own block evaluations are not counted.
        generator.models.settings_dir = Path(folder) / "settings"
        calibrated = GenerationSettings.from_user(preset, profile="final", seed=11)
        for model in ("baseline", "finetuned"):
            save_calibration(generator.models.settings_dir, "ti2v-5b", True, model, generator.models.model_location(model),
                             calibrated.steps, generator.renderer.calibrate_magcache(model, PROMPT, calibrated))
        counter = Counter(generator.models.baseline_transformers)
        rows = []
        for name in PROFILES:
            for cache in CACHES if name == "final" else (None, ""):
                settings = GenerationSettings.from_user(preset, profile=name, step_cache=cache, seed=11)
                counter.reset()
                begin = time.perf_counter()
                pair = generator.renderer.render(PROMPT, settings)
                rows.append(dict(profile=name, cache=settings.step_cache or "none", settings=settings,
                                 calls=counter.calls, tokens=counter.tokens, seconds=time.perf_counter() - begin,
                                 video=np.concatenate([pair.baseline, pair.finetuned])))
    final = next(r for r in rows if r["profile"] == "final" and r["cache"] == "none")
    uncached = {r["profile"]: r for r in rows if r["cache"] == "none"}
    print(f"tiny TI2V-5B on CPU ({torch.get_num_threads()} threads), bench size {preset.width}x{preset.height}, "
          f"{preset.frames} frames, final = {preset.steps} steps; ratios to final measured in this run")
    print(f"{'profile':8} {'cache':48} {'size':>9} {'frames':>6} {'steps':>5} {'blocks':>7} {'x final':>8} "
          f"{'token-wt':>8} {'wall':>6} {'x final':>8} {'PSNR dB':>8}")
    for r in rows:
        s = r["settings"]
        quality = psnr(r["video"], uncached[r["profile"]]["video"])
        print(f"{r['profile']:8} {r['cache']:48} {s.width:>4}x{s.height:<4} {s.num_frames:>6} {s.steps:>5} "
              f"{r['calls']:>7} {r['calls'] / final['calls']:>8.3f} {r['tokens'] / final['tokens']:>8.3f} "
              f"{r['seconds']:>5.1f}s {r['seconds'] / final['seconds']:>8.3f} {quality:>8.1f}")
    draft = next(r for r in rows if r["profile"] == "draft" and r["cache"] != "none")
    same_steps = {r["cache"]: r for r in rows if r["profile"] == "final"}
    best_default = same_steps[canonical("first-block")]["calls"] / final["calls"]
    taylor = same_steps[canonical("taylorseer")]["calls"] / final["calls"]
    magcache = same_steps[canonical("magcache")]["calls"] / final["calls"]
    print(f"goal draft <= 0.1 x final's transformer work: {draft['tokens'] / final['tokens']:.3f} (token-weighted)")
    print(f"goal a step cache at its default <= 0.6 x uncached block evaluations (same steps): first-block "
          f"{best_default:.3f}, taylorseer {taylor:.3f}, magcache {magcache:.3f}")
    print(f"four drafts (what exploring 4 seeds renders) vs one final: work {4 * draft['tokens'] / final['tokens']:.3f}, "
          f"wall {4 * draft['seconds'] / final['seconds']:.3f}")


if __name__ == "__main__":
    main()
