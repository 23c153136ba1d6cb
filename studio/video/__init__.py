"""Reference-clip intake: probe, shot detection, frame sampling and first-frame extraction.

Everything here reads files with PyAV (and PySceneDetect for cuts) and raises `InputError` with a
message that says what to change when a file cannot be used. Nothing here imports torch.

Public API (used by the captioner, the CLI and the UI):
    probe(path, max_seconds) -> ClipInfo
    detect_shots(path) -> list[Shot]
    sample_clip(path, start=None, end=None, sampling=FrameSampling()) -> SampledClip
    first_frame(path, at=0.0) -> PIL.Image.Image
"""

from .intake import VIDEO_EXTENSIONS, ClipInfo, Shot, check_extension, detect_shots, probe, resolve_range
from .sampling import DEFAULT_MAX_PIXELS, MAX_FRAME_PIXELS, FrameSampling, SampledClip, first_frame, sample_clip

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FrameSampling",
    "MAX_FRAME_PIXELS",
    "VIDEO_EXTENSIONS",
    "ClipInfo",
    "SampledClip",
    "Shot",
    "check_extension",
    "detect_shots",
    "first_frame",
    "probe",
    "resolve_range",
    "sample_clip",
]
