"""Economical frame sampling: the frames the captioner sees, decoded as cheaply as the file allows.

Separate from `intake` (probe, shots, ranges), which only reads metadata: this is the one place
that decodes pictures, so the seek-or-decode-on plan, the scaler and the frame budget live
together. `first_frame` is here too: it is one sampled frame at full size.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .intake import FIELD, ClipInfo, Shot, detect_shots, ffmpeg_reason, open_clip, probe, resolve_range

log = logging.getLogger("studio.video")
MAX_SAMPLED_FRAMES = 512
MIN_SIDE = 32  # the vision encoder works on 32-pixel cells (16-pixel patches, 2x2 merge)
# No single frame is decoded larger than 720p in the processor-resized mode: the vision tower gains
# little from more and the token count grows with the area.
MAX_FRAME_PIXELS = 1280 * 720
# Total pixels over all sampled frames in the processor-resized mode. 24 frames of 640x360 fit
# whole; a 60 s clip at 2 fps (120 frames) gets about 288x160 per frame.
DEFAULT_MAX_PIXELS = 24 * 640 * 360
RESIZE_MODES = ("qwen-vl-utils", "processor")


@dataclass(frozen=True)
class FrameSampling:
    """How a clip is turned into the frames the captioner sees: rate, count rules and frame size.

    Two sizing modes:
    - "qwen-vl-utils": frames are decoded at exactly the size qwen-vl-utils' `fetch_video` picks
      for Qwen3-VL (its `smart_resize`: sides multiples of `size_multiple`, each frame between
      `min_frame_pixels` and `max_frame_pixels`, and at most `total_pixels` over the clip counted
      per `frame_multiple` frames, as the tokens are), and the processor must not resize again.
      This is how t2v_metrics, on which CHAI's evaluation builds, feeds Qwen3-VL-8B.
    - "processor": frames are decoded within the budgets (aspect kept, never enlarged) and the
      model's processor applies its own resize rules; the tiny checkpoints use this.
    A prompt pack carries one of these (`sampling` in pack.json).
    """

    fps: float = 2.0
    resize: str = "processor"
    size_multiple: int = 2
    frame_multiple: int = 1
    min_frames: int = 2
    min_frame_pixels: int = MIN_SIDE * MIN_SIDE
    max_frame_pixels: int = MAX_FRAME_PIXELS
    total_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, (int, float)) and 0 < self.fps <= 30):
            raise InputError(f"must be between 0 and 30 frames per second, got {self.fps!r}", "fps")
        if self.resize not in RESIZE_MODES:
            raise InputError(f"must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}", "resize")
        for name in ("size_multiple", "frame_multiple", "min_frames", "min_frame_pixels", "max_frame_pixels",
                     "total_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"must be a whole number of at least 1, got {value!r}", name)
        if self.max_frame_pixels < self.min_frame_pixels:
            raise InputError(f"must be at least min_frame_pixels ({self.min_frame_pixels}), got "
                             f"{self.max_frame_pixels}", "max_frame_pixels")
        if self.total_pixels < MIN_SIDE * MIN_SIDE * 2:
            raise InputError(f"must be at least {MIN_SIDE * MIN_SIDE * 2}, got {self.total_pixels}", "max_pixels")

    @property
    def sized_for_model(self) -> bool:
        """True when frames come out at the model's input size (the processor must not resize)."""
        return self.resize == "qwen-vl-utils"

    def frame_count(self, span: float) -> int:
        """How many frames a range of `span` seconds gets: `fps` of them, at least `min_frames`,
        rounded down to a multiple of `frame_multiple` (Qwen3-VL pairs frames in time)."""
        count = max(self.min_frames, min(MAX_SAMPLED_FRAMES, int(math.floor(span * self.fps + 1e-6))))
        return max(self.frame_multiple, count // self.frame_multiple * self.frame_multiple)

    def frame_size(self, width: int, height: int, count: int) -> tuple[int, int]:
        """Width and height of each of `count` frames sampled from a `width` x `height` video."""
        if self.sized_for_model:
            budget = max(min(self.max_frame_pixels, self.total_pixels / max(count, 1) * self.frame_multiple),
                         int(self.min_frame_pixels * 1.05))
            out_h, out_w = smart_resize(height, width, self.size_multiple, self.min_frame_pixels, budget)
            return out_w, out_h
        area = width * height
        per_frame = min(area, self.max_frame_pixels, max(1, self.total_pixels // max(count, 1)))
        scale = min(1.0, math.sqrt(per_frame / area))
        step = max(2, self.size_multiple)
        return (max(MIN_SIDE, int(width * scale) // step * step), max(MIN_SIDE, int(height * scale) // step * step))


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """(height, width) as qwen-vl-utils' `smart_resize` picks them: each a multiple of `factor`, the
    area within [min_pixels, max_pixels], the aspect ratio kept as closely as that allows."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


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
    sized_for_model: bool = False  # frames are already at the model's input size: no processor resize

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


def sample_times(start: float, end: float, count: int) -> list[float]:
    """`count` uniform sample times in [start, end), the first at `start`.

    Starting on the range start (as Qwen's own sampler does) also means that samples fall on the
    keyframes of files whose keyframe spacing is a whole number of seconds, where a seek lands
    exactly on the frame wanted.
    """
    step = (end - start) / count
    return [start + i * step for i in range(count)]


def sample_clip(path: str | Path, start: float | None = None, end: float | None = None,
                fps: float | None = None, max_pixels: int | None = None,
                max_seconds: float | None = 60.0, check_cuts: bool = True,
                shots: list[Shot] | None = None, strategy: str = "auto",
                info: ClipInfo | None = None, sampling: FrameSampling | None = None) -> SampledClip:
    """Sample frames between `start` and `end` seconds as `sampling` says (a prompt pack's; by
    default `FrameSampling()`); `fps` and `max_pixels` (the total pixel budget) override it.

    Frames are resized by the decoder's scaler as they are converted, and only the frames needed are
    decoded as far as the keyframe layout allows (see `_plan_seeks`). With `check_cuts`, a warning
    is added when the range contains a cut (CHAI describes single shots).
    `strategy` is "auto", "seek" or "sequential" (the last two exist for the benchmark).
    """
    sampling = sampling or FrameSampling()
    if fps is not None:
        sampling = dataclasses.replace(sampling, fps=fps)
    if max_pixels is not None:
        sampling = dataclasses.replace(sampling, total_pixels=max_pixels)
    info = info or probe(path, max_seconds)
    lo, hi = resolve_range(info, start, end)
    times = sample_times(lo, hi, sampling.frame_count(hi - lo))
    # Coded (pre-rotation) size: the rotation turns the frame, the multiples stay multiples.
    size = sampling.frame_size(info.coded_width, info.coded_height, len(times))
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
                       info=info, warnings=warnings, strategy=used, sized_for_model=sampling.sized_for_model)


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
