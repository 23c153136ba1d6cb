"""Probe, cut detection and economical frame sampling for reference clips."""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError

DEFAULT_SAMPLE_FPS = 2.0
# Total pixels over all sampled frames. 24 frames of 640x360 fit whole; a 60 s clip at 2 fps
# (120 frames) gets about 288x160 per frame. The captioner's processor may shrink further.
DEFAULT_MAX_PIXELS = 24 * 640 * 360
# No single frame is kept larger than 720p, however short the range: the vision tower gains
# little from more and the token count grows with the area.
MAX_FRAME_PIXELS = 1280 * 720
MAX_SAMPLED_FRAMES = 512
MIN_SIDE = 32  # the vision encoder works on 32-pixel cells (16-pixel patches, 2x2 merge)
FIELD = "clip"


@dataclass(frozen=True)
class ClipInfo:
    """What `probe` learned about a file. Width and height are as displayed (rotation applied)."""

    path: str
    duration: float  # seconds
    fps: float
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees counter-clockwise to apply for display: 0, 90, 180 or 270
    frame_count: int  # from the container index; an estimate when the container has none
    codec: str
    container: str
    streams: tuple[str, ...]  # e.g. ("video:h264", "audio:aac")
    start_time: float  # presentation time of the first frame, seconds
    keyframe_times: tuple[float, ...] = field(default=(), repr=False)

    @property
    def has_audio(self) -> bool:
        return any(s.startswith("audio:") for s in self.streams)

    @property
    def keyframe_interval(self) -> float:
        """Median spacing between keyframes in seconds (the duration when there is only one)."""
        times = self.keyframe_times
        if len(times) < 2:
            return self.duration
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        return gaps[len(gaps) // 2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "duration": round(self.duration, 3), "fps": round(self.fps, 3),
            "width": self.width, "height": self.height, "rotation": self.rotation,
            "frame_count": self.frame_count, "codec": self.codec, "container": self.container,
            "streams": list(self.streams), "keyframe_interval": round(self.keyframe_interval, 3),
        }


@dataclass(frozen=True)
class Shot:
    """One shot between two cuts, in seconds from the start of the clip."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


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


# The one list of clip types the studio reads, for the page's upload box and every CLI command alike.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


def check_extension(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"{path.name} is not a clip type the studio reads; use one of "
                         f"{', '.join(e.lstrip('.') for e in VIDEO_EXTENSIONS)}", FIELD)
    return path


# -- probing ----------------------------------------------------------------------------------------


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}", FIELD)
    if not path.is_file():
        raise InputError(f"{path} is not a file", FIELD)
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)", FIELD)
    check_extension(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path.name} is not a readable video ({_ffmpeg_reason(exc)}); it may be another kind of file, "
            "or a truncated or corrupt video. Export it again as mp4, mov, webm or mkv", FIELD) from None


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() or type(exc).__name__


def _video_stream(container, path: Path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        what = f"only {', '.join(kinds)} streams" if kinds else "no streams"
        raise InputError(f"{path.name} has no video stream ({what}); choose a video clip", FIELD)
    return container.streams.video[0]


def _first_frame(container, stream, path: Path):
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise InputError(f"{path.name} could not be decoded ({_ffmpeg_reason(exc)}); the file is corrupt or "
                         "truncated. Export it again", FIELD) from None
    return None


def probe(path: str | Path, max_seconds: float | None = 60.0) -> ClipInfo:
    """Read a clip's metadata and check that it can be used.

    Raises `InputError` for a missing file, a file that is not a video, a video without a video
    stream or without frames, a truncated file, and a clip longer than `max_seconds` (the message
    says to trim it). Large resolutions are accepted: sampling downscales them.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        tb = float(stream.time_base) if stream.time_base else 0.0
        entries = [(e.timestamp, e.is_keyframe, e.pos, e.size) for e in stream.index_entries]
        ends = [pos + size for _, _, pos, size in entries if pos >= 0]
        if ends:
            last_end = max(ends)
            if last_end > path.stat().st_size:
                raise InputError(f"{path.name} is truncated: its index points past the end of the file "
                                 f"({last_end} > {path.stat().st_size} bytes). Copy or export it again", FIELD)
        first = _first_frame(container, stream, path)
        if first is None:
            raise InputError(f"{path.name} has a video stream but no frames", FIELD)
        rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
        rotation = (round(rotation / 90) * 90) % 360
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        first_time = float(first.time) if first.time is not None else 0.0
        if stream.duration and tb:
            duration = stream.duration * tb
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frame_count = stream.frames or (len(entries) if entries else int(round(duration * fps)))
        if fps <= 0 and duration > 0 and frame_count:
            fps = frame_count / duration
        if duration <= 0 and fps > 0 and frame_count:
            duration = frame_count / fps
        if duration <= 0 or fps <= 0:
            raise InputError(f"{path.name} has no usable duration or frame rate; export it again as mp4", FIELD)
        keyframes = _keyframe_times(container, stream, entries, tb, first_time)
        streams = tuple(f"{s.type}:{s.codec_context.name if s.codec_context else '?'}" for s in container.streams)
        width, height = first.width, first.height
        info = ClipInfo(
            path=str(path), duration=float(duration), fps=fps,
            width=height if rotation in (90, 270) else width,
            height=width if rotation in (90, 270) else height,
            coded_width=width, coded_height=height, rotation=rotation, frame_count=int(frame_count),
            codec=stream.codec_context.name, container=container.format.name, streams=streams,
            start_time=first_time, keyframe_times=keyframes,
        )
    if max_seconds is not None and info.duration > max_seconds + 1e-3:
        raise InputError(
            f"{path.name} is {info.duration:.1f} s long; the limit is {max_seconds:g} s. Trim it to the shot you "
            "want (or raise max_clip_seconds / CHAI_STUDIO_MAX_CLIP_SECONDS)", FIELD)
    return info


def _keyframe_times(container, stream, entries, tb: float, first_time: float) -> tuple[float, ...]:
    """Keyframe presentation times in seconds, from the container index when it has one.

    Index timestamps are decode times, which run a few frames behind presentation times when the
    stream has B-frames; shifting them so the first keyframe lands on the first frame's time is
    close enough for deciding when seeking pays.
    """
    if entries:
        keys = sorted(ts for ts, key, _, _ in entries if key)
        if keys:
            return tuple(first_time + (ts - keys[0]) * tb for ts in keys)
    # No index (some webm/mkv/ts files): demux the packets, which reads but does not decode.
    times = []
    try:
        container.seek(0, stream=stream)
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                times.append(packet.pts * tb)
    except Exception:  # noqa: BLE001 - an unreadable tail only costs us the keyframe map
        pass
    return tuple(sorted(times)) or (first_time,)


# -- shots ------------------------------------------------------------------------------------------


def detect_shots(path: str | Path, threshold: float = 27.0, min_shot_seconds: float = 0.4,
                 info: ClipInfo | None = None, max_seconds: float | None = None) -> list[Shot]:
    """Cuts found by PySceneDetect's content detector, as a list of shots covering the clip.

    Detection decodes the whole clip, so results are cached per file (path, size, modification
    time) and settings: the UI asks again for every critique or score on the same upload.
    """
    info = info or probe(path, max_seconds)
    stat = Path(path).stat()
    return list(_detect_cached(str(path), stat.st_size, stat.st_mtime_ns, float(threshold),
                               float(min_shot_seconds), info.fps, info.duration))


@functools.lru_cache(maxsize=32)
def _detect_cached(path: str, size: int, mtime_ns: int, threshold: float, min_shot_seconds: float,
                   fps: float, duration: float) -> tuple[Shot, ...]:
    from scenedetect import ContentDetector, detect

    min_len = max(2, int(round(min_shot_seconds * fps)))
    try:
        scenes = detect(path, ContentDetector(threshold=threshold, min_scene_len=min_len), backend="pyav")
    except Exception as exc:  # noqa: BLE001 - PySceneDetect raises many kinds; the user needs one message
        raise InputError(f"shot detection failed on {Path(path).name}: {exc}", FIELD) from None
    finally:
        from ..logging_setup import apply_ffmpeg_level

        apply_ffmpeg_level()  # PySceneDetect switched FFmpeg's chatty default logging back on
    if not scenes:
        return (Shot(0, 0.0, duration),)
    return tuple(Shot(index, round(start.seconds, 3), round(min(end.seconds, duration), 3))
                 for index, (start, end) in enumerate(scenes))


def resolve_range(info: ClipInfo, start: float | None = None, end: float | None = None,
                  shot: int | None = None, shots: list[Shot] | None = None) -> tuple[float, float]:
    """Check a start/end range (or pick a shot's range) against the clip's duration."""
    if shot is not None:
        if start is not None or end is not None:
            raise InputError("give either a shot or a start/end range, not both", "shot")
        shots = shots if shots is not None else detect_shots(info.path, info=info)
        if not 0 <= shot < len(shots):
            raise InputError(f"there is no shot {shot}; the clip has {len(shots)} shot(s), numbered 0 to "
                             f"{len(shots) - 1}", "shot")
        return shots[shot].start, shots[shot].end
    lo = 0.0 if start is None else float(start)
    hi = info.duration if end is None else float(end)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError("start and end must be numbers of seconds", "start")
    if lo < 0:
        raise InputError(f"must be 0 or more, got {lo:g}", "start")
    if lo >= info.duration:
        raise InputError(f"{lo:g} s is past the end of the clip ({info.duration:.2f} s)", "start")
    if hi <= lo:
        raise InputError(f"must be after start ({lo:g} s), got {hi:g}", "end")
    return lo, min(hi, info.duration)


# -- sampling ---------------------------------------------------------------------------------------


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
    with _open(path) as container:
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
            raise InputError(f"{path.name} could not be decoded ({_ffmpeg_reason(exc)}); the file is corrupt or "
                             "truncated. Export it again", FIELD) from None
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
