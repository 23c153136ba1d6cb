"""Five-aspect captioning: one batched `generate` against five sequential calls.

Builds the tiny random-weight captioner and a short test clip in a temporary folder, checks that
both ways give identical greedy captions, and prints the speed ratio measured in this run (CPU
only: no GPU was available when these figures were taken).

    python bench/caption_batching.py [--repeats 5] [--new-tokens 96] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_clip(path: Path, seconds: float = 4.0, fps: int = 24, width: int = 160, height: int = 96) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            x = np.linspace(0, 1, width)[None, :, None]
            y = np.linspace(0, 1, height)[:, None, None]
            rgb = np.concatenate([x + 0 * y, y + 0 * x, (x + y + i / 96) % 1], axis=2)
            frame = av.VideoFrame.from_ndarray((rgb * 255).astype("uint8"), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=96,
                        help="new tokens per aspect (real aspect captions run to a few hundred)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    from studio.captioner import ASPECTS, Captioner
    from studio.tiny.captioner import build_tiny_captioner
    from studio.video import sample_clip

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "captioner"
        build_tiny_captioner(folder)
        clip_path = Path(tmp) / "clip.mp4"
        write_clip(clip_path)
        clip = sample_clip(clip_path, check_cuts=False)
        captioner = Captioner.from_pretrained(folder, device="cpu")
        config = captioner.model.config.text_config
        params = sum(p.numel() for p in captioner.model.parameters())

        def batched():
            return captioner.caption(clip, ASPECTS, max_new_tokens=args.new_tokens)

        def sequential():
            return {a: captioner.caption(clip, [a], max_new_tokens=args.new_tokens)[a] for a in ASPECTS}

        batched(), sequential()  # warm-up: first calls pay one-off allocation costs
        times = {"batched": [], "sequential": []}
        outputs = {}
        for _ in range(args.repeats):  # interleaved, so background load hits both alike
            for name, run in (("batched", batched), ("sequential", sequential)):
                start = time.perf_counter()
                outputs[name] = run()
                times[name].append(time.perf_counter() - start)
        assert outputs["batched"] == outputs["sequential"], "batched and sequential greedy captions differ"
        b, s = statistics.median(times["batched"]), statistics.median(times["sequential"])
        print("device: cpu (no GPU available for this run)")
        print(f"tiny captioner: {params / 1e6:.1f}M parameters, text hidden {config.hidden_size} x "
              f"{config.num_hidden_layers} layers; clip {len(clip.frames)} frames {clip.size[0]}x{clip.size[1]}; "
              f"{args.new_tokens} new tokens per aspect; torch threads {torch.get_num_threads()}")
        print(f"five sequential calls: {s:.3f} s (median of {args.repeats})")
        print(f"one batched call:      {b:.3f} s (median of {args.repeats})")
        print("greedy captions identical: yes")
        print(f"speed-up batched vs sequential: {s / b:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
