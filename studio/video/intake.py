"""Reading a reference clip's facts: probe (checks and metadata), shot detection and range checks.

Frame sampling, which decodes pictures from what is found here, is `sampling`.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

FIELD = "clip"
log = logging.getLogger("studio.video")


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


# The one list of clip types the studio reads, for the page's upload box and every CLI command alike.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


def check_extension(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"{path.name} is not a clip type the studio reads; use one of "
                         f"{', '.join(e.lstrip('.') for e in VIDEO_EXTENSIONS)}", FIELD)
    return path


# -- probing ----------------------------------------------------------------------------------------


def open_clip(path: str | Path):
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}", FIELD)
    if not path.is_file():
        raise InputError(f"{path} is not a file", FIELD)
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)", FIELD, "empty-file")
    check_extension(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path.name} is not a readable video ({ffmpeg_reason(exc)}); it may be another kind of file, "
            "or a truncated or corrupt video. Export it again as mp4, mov, webm or mkv", FIELD) from exc


def ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() or type(exc).__name__


def _video_stream(container, path: Path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        what = f"only {', '.join(kinds)} streams" if kinds else "no streams"
        raise InputError(f"{path.name} has no video stream ({what}); choose a video clip", FIELD, "no-video-stream")
    return container.streams.video[0]


def _first_frame(container, stream, path: Path):
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise InputError(f"{path.name} could not be decoded ({ffmpeg_reason(exc)}); the file is corrupt or "
                         "truncated. Export it again", FIELD) from exc
    return None


def probe(path: str | Path, max_seconds: float | None = 60.0) -> ClipInfo:
    """Read a clip's metadata and check that it can be used.

    Raises `InputError` for a missing file, a file that is not a video, a video without a video
    stream or without frames, a truncated file, and a clip longer than `max_seconds` (the message
    says to trim it). Large resolutions are accepted: sampling downscales them.
    """
    path = Path(path)
    with open_clip(path) as container:
        stream = _video_stream(container, path)
        tb = float(stream.time_base) if stream.time_base else 0.0
        entries = [(e.timestamp, e.is_keyframe, e.pos, e.size) for e in stream.index_entries]
        ends = [pos + size for _, _, pos, size in entries if pos >= 0]
        if ends:
            last_end = max(ends)
            if last_end > path.stat().st_size:
                raise InputError(f"{path.name} is truncated: its index points past the end of the file "
                                 f"({last_end} > {path.stat().st_size} bytes). Copy or export it again", FIELD,
                                 "truncated")
        first = _first_frame(container, stream, path)
        if first is None:
            raise InputError(f"{path.name} has a video stream but no frames", FIELD, "no-frames")
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
    log.info("probed %s: %.2f s, %dx%d at %.2f fps", path.name, info.duration, info.width, info.height, info.fps)
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


# The shortest stretch the studio calls a shot. Half a second is a handful of frames even at the
# captioner's 8 fps (at least 4 are sampled however short the range, so they would repeat); such
# stretches are a flash, a dropped frame or a cut a frame before the clip ends (PySceneDetect's own
# minimum only spaces cuts apart and still reports a one-frame last scene), never a shot a
# filmmaker would pick.
MIN_SHOT_SECONDS = 0.5


def detect_shots(path: str | Path, threshold: float = 27.0, min_shot_seconds: float = MIN_SHOT_SECONDS,
                 info: ClipInfo | None = None, max_seconds: float | None = None) -> list[Shot]:
    """Cuts found by PySceneDetect's content detector, as a list of shots covering the clip. A
    shot shorter than `min_shot_seconds` merges into its neighbour (`merge_short_shots`).

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
        raise InputError(f"shot detection failed on {Path(path).name}: {exc}", FIELD) from exc
    finally:
        from ..logging_setup import apply_ffmpeg_level

        apply_ffmpeg_level()  # PySceneDetect switched FFmpeg's chatty default logging back on
    if not scenes:
        return (Shot(0, 0.0, duration),)
    shots = [Shot(index, round(start.seconds, 3), round(min(end.seconds, duration), 3))
             for index, (start, end) in enumerate(scenes)]
    return tuple(merge_short_shots(shots, min_shot_seconds))


def merge_short_shots(shots: list[Shot], min_seconds: float = MIN_SHOT_SECONDS) -> list[Shot]:
    """Shots shorter than `min_seconds` joined to the shot before them (the first one to the shot
    after it), numbered again; a clip that is all one short shot stays one shot."""
    merged: list[list[float]] = []
    pending_start = None  # a short opening shot, waiting to join the next one
    for shot in shots:
        start = shot.start if pending_start is None else pending_start
        if shot.end - start < min_seconds:
            if merged:
                merged[-1][1] = shot.end
            else:
                pending_start = start
            continue
        merged.append([start, shot.end])
        pending_start = None
    if pending_start is not None:  # nothing long enough to join: the whole clip is one shot
        merged = [[pending_start, shots[-1].end]]
    return [Shot(index, start, end) for index, (start, end) in enumerate(merged)]


def resolve_range(info: ClipInfo, start: float | None = None, end: float | None = None,
                  shot: int | None = None, shots: list[Shot] | None = None) -> tuple[float, float]:
    """Check a start/end range (or pick a shot's range) against the clip's duration."""
    if shot is not None:
        if start is not None or end is not None:
            raise InputError("give either a shot or a start/end range, not both", "shot")
        shots = shots if shots is not None else detect_shots(info.path, info=info)
        if not 0 <= shot < len(shots):
            raise InputError(f"there is no shot {shot}; the clip has {len(shots)} shot(s), numbered 0 to "
                             f"{len(shots) - 1}", "shot", "no-such-shot", shot_count=len(shots))
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
