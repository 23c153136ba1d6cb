"""Small test media written with PyAV: good clips, and the bad ones the intake must refuse."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# Shot colours (RGB) used by `write_clip`: each shot is one flat colour plus a moving white bar.
SHOT_COLOURS = [(200, 30, 30), (30, 30, 200), (30, 200, 30)]


def write_clip(path: Path, seconds: float = 2.0, fps: int = 24, width: int = 64, height: int = 48,
               cut_at: float | None = None, rotation: int | None = None, gop: int = 12,
               faststart: bool = False) -> Path:
    """H.264 mp4. With `cut_at`, the colour changes at that time (a hard cut)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        # Keyframes exactly every `gop` frames; near-lossless so the frame counter reads back exactly.
        stream.codec_context.options = {"sc_threshold": "0", "crf": "4"}
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(int(round(seconds * fps))):
            shot = 1 if cut_at is not None and i / fps >= cut_at else 0
            image = np.empty((height, width, 3), np.uint8)
            image[:] = SHOT_COLOURS[shot]
            image[:, (i * 2) % width] = 255
            image[: height // 4, : width // 4] = (i * 5) % 256  # a frame counter in the corner
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for _ in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_zero_frames(path: Path) -> Path:
    """A container with a video stream header and no frames (AVI keeps such a stream)."""
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        container.start_encoding()
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target
