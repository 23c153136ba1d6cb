"""Economical frame sampling: the frames the captioner sees, decoded as cheaply as the file allows.

Separate from `intake` (probe, shots, ranges), which only reads metadata: this is the one place
that decodes pictures, so the seek-or-decode-on plan, the scaler and the frame budget live
together. `first_frame` is here too: it is one sampled frame at full size.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .intake import FIELD, ClipInfo, Shot, detect_shots, ffmpeg_reason, open_clip, probe, resolve_range

log = logging.getLogger("studio.video")
DEFAULT_SAMPLE_FPS = 2.0
# Total pixels over all sampled frames. 24 frames of 640x360 fit whole; a 60 s clip at 2 fps
# (120 frames) gets about 288x160 per frame. The captioner's processor may shrink further.
DEFAULT_MAX_PIXELS = 24 * 640 * 360
# No single frame is kept larger than 720p, however short the range: the vision tower gains
# little from more and the token count grows with the area.
MAX_FRAME_PIXELS = 1280 * 720
MAX_SAMPLED_FRAMES = 512
MIN_SIDE = 32  # the vision encoder works on 32-pixel cells (16-pixel patches, 2x2 merge)


@dataclass
class SampledClip:
    """Frames sampled from one time range of a clip, ready for the captioner."""

    frames: list  # PIL.Image.Image, RGB, display orientation, all the same size
    timestamps: list[float]  # seconds from the start of the file, one per frame
    fps: float  # sampling rate actually used
    start: float
    end: float
    info: ClipInfo
    warnings: list[str] = field(default_factory=list)
    strategy: str = ""  # "seek" or "sequential": how the frames were decoded

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size if self.frames else (0, 0)

    def as_array(self):
        """Frames as one uint8 array (T, H, W, 3)."""
        import numpy as np

        return np.stack([np.asarray(f) for f in self.frames])


def _target_size(info: ClipInfo, count: int, max_pixels: int) -> tuple[int, int]:
    """Coded (pre-rotation) width and height of the sampled frames: even, aspect kept, budget met."""
    area = info.coded_width * info.coded_height
    per_frame = min(area, MAX_FRAME_PIXELS, max(1, max_pixels // max(count, 1)))
    scale = min(1.0, math.sqrt(per_frame / area))
    width = max(MIN_SIDE, int(info.coded_width * scale) // 2 * 2)
    height = max(MIN_SIDE, int(info.coded_height * scale) // 2 * 2)
    return width, height


def sample_times(start: float, end: float, fps: float, max_frames: int = MAX_SAMPLED_FRAMES) -> list[float]:
    """Uniform sample times in [start, end) at `fps`, the first at `start`; at least 2.

    Starting on the range start (as Qwen's own sampler does) also means that samples fall on the
    keyframes of files whose keyframe spacing is a whole number of seconds, where a seek lands
    exactly on the frame wanted.
    """
    span = end - start
    count = max(2, min(max_frames, int(math.floor(span * fps + 1e-6)) or 1))
    step = span / count
    return [start + i * step for i in range(count)]


def sample_clip(path: str | Path, start: float | None = None, end: float | None = None,
                fps: float = DEFAULT_SAMPLE_FPS, max_pixels: int = DEFAULT_MAX_PIXELS,
                max_seconds: float | None = 60.0, check_cuts: bool = True,
                shots: list[Shot] | None = None, strategy: str = "auto",
                info: ClipInfo | None = None) -> SampledClip:
    """Sample frames at `fps` between `start` and `end` seconds, all frames within `max_pixels`.

    Frames are resized by the decoder's scaler as they are converted, and only the frames needed are
    decoded as far as the keyframe layout allows (see `_plan_seeks`). With `check_cuts`, a warning
    is added when the range contains a cut (CHAI describes single shots).
    `strategy` is "auto", "seek" or "sequential" (the last two exist for the benchmark).
    """
    if not (isinstance(fps, (int, float)) and 0 < fps <= 30):
        raise InputError(f"must be between 0 and 30 frames per second, got {fps!r}", "fps")
    if max_pixels < MIN_SIDE * MIN_SIDE * 2:
        raise InputError(f"must be at least {MIN_SIDE * MIN_SIDE * 2}, got {max_pixels}", "max_pixels")
    info = info or probe(path, max_seconds)
    lo, hi = resolve_range(info, start, end)
    times = sample_times(lo, hi, fps)
    size = _target_size(info, len(times), max_pixels)
    frames, used, last_time = _decode_frames(info, [info.start_time + t for t in times], size, strategy)
    warnings = []
    if last_time is not None and last_time - info.start_time < hi - 1.0:
        warnings.append(f"the video stops at {last_time - info.start_time:.2f} s although the file says "
                        f"{info.duration:.2f} s; it may be truncated, so the last frames repeat")
    if check_cuts:
        shots = shots if shots is not None else detect_shots(path, info=info)
        inside = [s.start for s in shots if lo + 0.05 < s.start < hi - 0.05]
        if inside:
            where = ", ".join(f"{t:.2f} s" for t in inside)
            warnings.append(
                f"the range {lo:.2f}-{hi:.2f} s contains a cut at {where}; CHAI captions single shots, so pick "
                "one shot (--shot N) or narrow the range")
    log.info("sampled %s %.2f-%.2f s: %d frames at %dx%d (%s)", Path(path).name, lo, hi, len(frames), *size, used)
    return SampledClip(frames=frames, timestamps=times, fps=len(times) / (hi - lo), start=lo, end=hi,
                       info=info, warnings=warnings, strategy=used)


def _plan_seeks(targets: list[float], keyframes: tuple[float, ...], frame_period: float) -> list[bool]:
    """For each target time, whether to seek before decoding it.

    Seeking only pays when a keyframe lies between what the decoder last produced and the next
    target: then the decoder can restart at that keyframe instead of decoding everything in
    between. When samples are closer together than keyframes, decoding simply continues.
    """
    plan = []
    position = -math.inf  # time of the last frame the decoder will have produced
    for t in targets:
        k = bisect.bisect_right(keyframes, t + frame_period / 2) - 1
        key_time = keyframes[k] if k >= 0 else -math.inf
        # Decoding on from `position` costs (t - position) frames; seeking costs (t - key_time)
        # plus a decoder flush, worth a couple of frames.
        seek = position == -math.inf or (key_time > position + frame_period
                                         and (t - key_time) + 2 * frame_period < (t - position))
        plan.append(seek)
        position = t
    return plan


def _decode_frames(info: ClipInfo, targets: list[float], size: tuple[int, int],
                   strategy: str = "auto") -> tuple[list, str, float | None]:
    """Decode the frames shown at `targets`; also returns the time of the last frame decoded when
    the stream ended before a target (None when every target was reached)."""
    import av

    frame_period = 1.0 / info.fps
    half = frame_period / 2
    if strategy == "sequential":
        plan = [True] + [False] * (len(targets) - 1)
    elif strategy == "seek":
        plan = [True] * len(targets)
    else:
        plan = _plan_seeks(targets, info.keyframe_times, frame_period)
    used = "seek" if sum(plan) > 1 else "sequential"
    width, height = size
    images = []
    ended_at = None
    path = Path(info.path)
    with open_clip(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base)
        frames: Iterator | None = None
        current = None  # last decoded frame
        try:
            for t, seek in zip(targets, plan):
                if current is not None and current.time is not None and current.time >= t - half:
                    images.append(_convert(current, width, height, info.rotation))
                    continue
                if seek or frames is None:
                    k = bisect.bisect_right(info.keyframe_times, t + half) - 1
                    key_time = info.keyframe_times[max(k, 0)]
                    container.seek(max(0, int(key_time / tb)), stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                    current = None
                found = None
                for frame in frames:
                    current = frame
                    if frame.time is not None and frame.time >= t - half:
                        found = frame
                        break
                if found is None:  # past the last frame: repeat the last one we have
                    ended_at = current.time if current is not None and current.time is not None else ended_at
                    if current is None:
                        raise InputError(f"{path.name}: no frame could be decoded near {t:.2f} s", FIELD)
                    frames = iter(())
                images.append(_convert(found or current, width, height, info.rotation))
        except av.error.FFmpegError as exc:
            raise InputError(f"{path.name} could not be decoded ({ffmpeg_reason(exc)}); the file is corrupt or "
                             "truncated. Export it again", FIELD) from exc
    return images, used, ended_at


def _convert(frame, width: int, height: int, rotation: int):
    """Scale and convert in one swscale pass, then turn to display orientation."""
    image = frame.to_image(width=width, height=height, interpolation="AREA") if (
        frame.width != width or frame.height != height) else frame.to_image()
    if rotation:
        from PIL import Image

        turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
                270: Image.Transpose.ROTATE_270}[rotation]
        image = image.transpose(turn)
    return image


def first_frame(path: str | Path, at: float = 0.0, max_seconds: float | None = None, info: ClipInfo | None = None):
    """The frame shown at `at` seconds, full resolution, display orientation (a generator start image)."""
    info = info or probe(path, max_seconds)
    if not (isinstance(at, (int, float)) and 0 <= at < info.duration):
        raise InputError(f"must be between 0 and {info.duration:.2f} s, got {at!r}", "at")
    images, _, _ = _decode_frames(info, [info.start_time + at + 0.5 / info.fps], (info.coded_width, info.coded_height))
    return images[0]
