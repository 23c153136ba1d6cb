"""`--precision fp8`, measured: the transformers' stored bytes and the frames against the default.

    python bench/precision.py [--dtype bfloat16] [--steps 10]

Needs torchao (the studio's `fp8` extra, `pip install '.[fp8]'`); without it the script says so and
stops. On the tiny random-weight TI2V-5B with its LoRA finetune (CPU, no download), each precision
loads the generator and renders one side-by-side from the same seed, then prints the transformer's
bytes as stored (float8 data and scales for fp8), the wall time, and the PSNR of fp8's frames
against the default precision's. The tiny model's norms and embeddings are a larger share of its
weights than a 14B expert's, so the memory ratio here is an upper bound on the full-size one.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from studio.config import StudioConfig  # noqa: E402
from studio.generation import load_generator  # noqa: E402
from studio.generation.placement import module_bytes  # noqa: E402
from studio.generation.presets import get_preset  # noqa: E402
from studio.generation.settings import GenerationSettings  # noqa: E402
from studio.tiny import build_tiny_models  # noqa: E402

PROMPT = "A slow dolly forward along a row of stone columns at dusk, the camera at eye level."


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if importlib.util.find_spec("torchao") is None:
        print("torchao is not installed: pip install '.[fp8]' (or pip install torchao) to measure fp8",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        tiny = build_tiny_models(folder, only=["wan-ti2v", "finetuned-lora"])
        settings = GenerationSettings.from_user(get_preset("ti2v-5b", tiny=True), steps=args.steps, seed=7)
        rows = {}
        for precision in ("default", "fp8"):
            generator = load_generator(StudioConfig(
                baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu",
                dtype=args.dtype, precision=precision), "ti2v-5b")
            begin = time.perf_counter()
            pair = generator.renderer.render(PROMPT, settings)
            rows[precision] = dict(bytes=sum(module_bytes(t) for t in generator.models.baseline_transformers),
                                   seconds=time.perf_counter() - begin,
                                   video=np.concatenate([pair.baseline, pair.finetuned]))
    print(f"tiny TI2V-5B + LoRA on CPU, {args.dtype}, {settings.width}x{settings.height}, {settings.num_frames} "
          f"frames, {settings.steps} steps")
    print(f"{'precision':9} {'transformer bytes':>17} {'x default':>9} {'wall':>6} {'PSNR dB vs default':>18}")
    for name, row in rows.items():
        print(f"{name:9} {row['bytes']:>17} {row['bytes'] / rows['default']['bytes']:>9.3f} {row['seconds']:>5.1f}s "
              f"{psnr(row['video'], rows['default']['video']):>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
