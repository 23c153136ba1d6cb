"""Frame sampling: `studio.video.sample_clip` against decoding every frame and keeping a few.

Writes two 30 s 1080p H.264 clips with PyAV (a keyframe every 1 s, and every 10 s), samples them
at 2 fps within the default pixel budget, and prints the speed ratios measured in this run. The
sampler seeks only when a keyframe lies between the decoder's position and the next sample;
"always seek" is shown for comparison. CPU decoding; no GPU is involved.

    python bench/frame_sampling.py [--seconds 30] [--fps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_clip(path: Path, seconds: int, fps: int, keyframe_seconds: int, width: int = 1920, height: int = 1080) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    base = (rng.random((height // 8, width // 8, 3)) * 255).astype("uint8").repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = keyframe_seconds * fps
        stream.codec_context.options = {"preset": "ultrafast", "sc_threshold": "0", "crf": "28"}
        for i in range(seconds * fps):
            frame = np.roll(base, (i * 3, i * 5), axis=(0, 1))  # steady pan: every frame differs
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def decode_everything(path: Path, fps: float):
    """The baseline: decode each frame in order, convert only the ones nearest the sample times."""
    import av

    from studio.video import probe
    from studio.video.sampling import FrameSampling, _convert, sample_times

    info = probe(path, None)
    sampling = FrameSampling(fps=fps)
    times = sample_times(0.0, info.duration, sampling.frame_count(info.duration))
    width, height = sampling.frame_size(info.coded_width, info.coded_height, len(times))
    images, index, half = [], 0, 0.5 / info.fps
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            while index < len(times) and frame.time >= times[index] - half:
                images.append(_convert(frame, width, height, info.rotation))
                index += 1
    return images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from studio.video import sample_clip

    print(f"device: cpu (PyAV/FFmpeg software decoding; no GPU available for this run); "
          f"clips {args.seconds} s 1920x1080 {args.fps} fps H.264, sampled at 2 fps")
    with tempfile.TemporaryDirectory() as tmp:
        for keyframe_seconds in (1, 10):
            path = Path(tmp) / f"gop{keyframe_seconds}.mp4"
            start = time.perf_counter()
            write_clip(path, args.seconds, args.fps, keyframe_seconds)
            print(f"\nkeyframe every {keyframe_seconds} s ({path.stat().st_size / 1e6:.1f} MB, written in "
                  f"{time.perf_counter() - start:.0f} s)")
            runs = {
                "decode every frame": lambda path=path: decode_everything(path, 2.0),
                "sample_clip (auto)": lambda path=path: sample_clip(path, fps=2.0, check_cuts=False,
                                                                    max_seconds=None).frames,
                "always seek": lambda path=path: sample_clip(path, fps=2.0, check_cuts=False, max_seconds=None,
                                                             strategy="seek").frames,
            }
            times = {name: [] for name in runs}
            frames = {}
            for repeat in range(args.repeats):  # interleaved, so background load hits all alike
                for name, fn in runs.items():
                    if name == "always seek" and repeat:  # a reference point, and slow: once is enough
                        continue
                    begin = time.perf_counter()
                    frames[name] = fn()
                    times[name].append(time.perf_counter() - begin)
            reference = frames["decode every frame"]
            for name in ("sample_clip (auto)", "always seek"):
                same = len(frames[name]) == len(reference) and all(
                    np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(frames[name], reference))
                assert same, f"{name} returned different frames from the full decode"
            used = sample_clip(path, fps=2.0, check_cuts=False, max_seconds=None).strategy
            base = statistics.median(times["decode every frame"])
            for name, values in times.items():
                median = statistics.median(values)
                print(f"  {name:20s} {median:6.2f} s  (median of {len(values)})  "
                      f"speed-up vs decode-all: {base / median:.2f}x")
            print(f"  {len(reference)} frames of {reference[0].size[0]}x{reference[0].size[1]}, identical in all three; "
                  f"sample_clip chose: {used}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
