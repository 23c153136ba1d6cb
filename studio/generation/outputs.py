"""Run directories: videos, posters and run.json, plus reading them back.

Each generation writes a new directory under the output folder (never overwriting one):
`baseline.mp4`, `finetuned.mp4`, `side_by_side.mp4` (H.264, yuv420p, the model's fps), poster
PNGs and `run.json`. The run record is also stored in each mp4's `comment` tag, so a video alone
is enough to load its prompt and settings back (`load_run_from_video`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from .comparison import BASELINE_LABEL, FINETUNED_LABEL

RUN_SCHEMA = "chai-studio/generation-run"
RUN_SCHEMA_VERSION = 1
VIDEO_FILES = {"baseline": "baseline.mp4", "finetuned": "finetuned.mp4", "side_by_side": "side_by_side.mp4"}
POSTER_FILES = {"baseline": "baseline.png", "finetuned": "finetuned.png", "side_by_side": "side_by_side.png"}
METADATA_KEY = "comment"


def video_file(key: str) -> str:
    """The mp4 of a comparison side (or of the side-by-side video), by its key."""
    return VIDEO_FILES.get(key, f"{key}.mp4")


def poster_file(key: str) -> str:
    return POSTER_FILES.get(key, f"{key}.png")


def new_run_dir(output_dir: str | Path, prompt: str) -> Path:
    """A fresh directory `<UTC time>-<prompt slug>[-n]`; mkdir without exist_ok never reuses one."""
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = "-".join(re.findall(r"[a-z0-9]+", prompt.lower())[:6])[:40] or "run"
    for n in range(1000):
        candidate = root / (f"{stamp}-{slug}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise InputError(f"could not create a new run directory under {root}", "output_dir")


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) floats in [0, 1] -> uint8."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int, comment: str | None = None) -> Path:
    """H.264 / yuv420p mp4 with PyAV; `comment` goes into the container's metadata."""
    import av

    frames = np.ascontiguousarray(frames)
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w", format="mp4") as container:
        if comment is not None:
            container.metadata[METADATA_KEY] = comment
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "medium"}
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return path


def read_video_comment(path: str | Path) -> str | None:
    import av

    with av.open(str(path)) as container:
        return container.metadata.get(METADATA_KEY)


def read_first_frame(path: str | Path) -> Image.Image:
    """The first frame of a video (e.g. the reference clip) as the TI2V-5B start image."""
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return frame.to_image().convert("RGB")
    except (av.error.FFmpegError, OSError, IndexError):
        pass
    raise InputError(f"{path} has no readable video frame", "image")


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def label_strip(width: int, text: str, height: int) -> np.ndarray:
    """A dark strip with the label centred, shrunk until it fits the half's width."""
    image = Image.new("RGB", (width, height), (16, 16, 16))
    draw = ImageDraw.Draw(image)
    size = max(6, int(height * 0.62))
    while True:
        font = _font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= width - 4 or size <= 6:
            break
        size -= 1
    draw.text(((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), text,
              fill=(240, 240, 240), font=font)
    return np.asarray(image)


def side_by_side(finetuned: np.ndarray, baseline: np.ndarray,
                 labels: tuple[str, str] = (FINETUNED_LABEL, BASELINE_LABEL)) -> np.ndarray:
    """Left (finetuned) and right (zero-shot) under their labels, split by a thin gap. Other
    comparison modes pass their own sides and labels."""
    frames, height, width, _ = finetuned.shape
    strip_height = max(16, (height // 14) // 2 * 2)
    gap = 4
    labels = [label_strip(width, labels[0], strip_height), label_strip(width, labels[1], strip_height)]
    out = np.zeros((frames, height + strip_height, width * 2 + gap, 3), dtype=np.uint8)
    out[:, :strip_height, :width] = labels[0]
    out[:, :strip_height, width + gap:] = labels[1]
    out[:, strip_height:, :width] = finetuned
    out[:, strip_height:, width + gap:] = baseline
    return out


def write_poster(path: Path, frames: np.ndarray) -> Path:
    Image.fromarray(frames[len(frames) // 2]).save(path)
    return path


def write_run_json(run_dir: Path, record: dict[str, Any]) -> Path:
    path = run_dir / "run.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def _read_record(text: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(f"{where} does not hold a studio run record", "run") from None
    if not isinstance(record, dict) or record.get("schema") != RUN_SCHEMA:
        raise InputError(f"{where} does not hold a studio run record", "run")
    return record


def _public(record: dict[str, Any], where: str) -> dict[str, Any]:
    from ..caption.structured import StructuredCaption
    from .settings import GenerationSettings

    try:
        settings = GenerationSettings.from_dict(record["settings"])
        prompt, seed = str(record["prompt"]), int(record["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where} is an incomplete run record ({type(exc).__name__}: {exc})", "run") from None
    caption = record.get("caption")
    return {
        "prompt": prompt,
        "negative_prompt": settings.negative_prompt,
        "caption": StructuredCaption.from_dict(caption) if caption else None,
        "settings": settings,
        "preset": record.get("preset"),
        "seed": seed,
        "record": record,
    }


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """prompt, negative_prompt, caption (StructuredCaption or None), settings (GenerationSettings),
    preset, seed and the full `record` of a run directory."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise InputError(f"{run_dir} has no run.json; it is not a finished run", "run")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} cannot be read ({exc})", "run") from None
    return _public(_read_record(text, str(path)), str(path))


def load_run_from_video(path: str | Path) -> dict[str, Any]:
    """The same as `load_run`, from the record embedded in an mp4 the studio wrote."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist", "video")
    try:
        comment = read_video_comment(path)
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for non-videos
        raise InputError(f"{path} is not a readable video", "video") from None
    if not comment:
        raise InputError(f"{path} carries no studio settings (not made by the studio?)", "video")
    return _public(_read_record(comment, str(path)), str(path))


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    created: str
    prompt: str
    seed: int
    preset: str
    side_by_side_video: Path | None
    poster: Path | None


def list_runs(output_dir: str | Path) -> list[RunSummary]:
    """Completed runs under `output_dir`, newest first; unreadable folders are skipped."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    runs = []
    for path in root.glob("*/run.json"):
        try:  # a half-written or hand-edited run is left out of the list, not fatal to it
            run = _public(_read_record(path.read_text(encoding="utf-8"), str(path)), str(path))
        except (OSError, UnicodeDecodeError, InputError):
            continue
        record, prompt, seed = run["record"], run["prompt"], run["seed"]
        run_dir = path.parent
        video = run_dir / VIDEO_FILES["side_by_side"]
        poster = run_dir / POSTER_FILES["side_by_side"]
        runs.append(RunSummary(run_dir, str(record.get("created", "")), prompt, seed, str(record.get("preset", "")),
                               video if video.is_file() else None, poster if poster.is_file() else None))
    return sorted(runs, key=lambda r: (r.created, r.run_dir.name), reverse=True)
