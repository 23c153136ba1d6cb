"""Writing run directories: videos, posters and run.json.

Each generation writes a new directory under the output folder (never overwriting one):
`baseline.mp4`, `finetuned.mp4`, `side_by_side.mp4` (H.264, yuv420p, the model's fps), poster
PNGs and `run.json`. The run record is also stored in each mp4's `comment` tag, so a video alone
is enough to load its prompt and settings back (`run_records.load_run_from_video`).

A run is written into a hidden staging folder and renamed into place once complete, run.json
last (`staged_run`), so a full disk or a killed process never leaves half a run in the history.
Reading runs back (and checking every field) is `run_records`: a reader must distrust what it
reads, a writer trusts what it writes, and the page's history needs only the reader.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import StudioError
from .comparison import BASELINE_LABEL, FINETUNED_LABEL

RUN_SCHEMA = "chai-studio/generation-run"
RUN_SCHEMA_VERSION = 1
VIDEO_FILES = {"baseline": "baseline.mp4", "finetuned": "finetuned.mp4", "side_by_side": "side_by_side.mp4"}
POSTER_FILES = {"baseline": "baseline.png", "finetuned": "finetuned.png", "side_by_side": "side_by_side.png"}
METADATA_KEY = "comment"


STAGING_PREFIX = ".partial-"  # unfinished runs: hidden, never listed, removed at start-up
# H.264 at crf 18 stays well under a quarter of the raw RGB size, even for the noise tiny models draw.
VIDEO_BYTES_PER_RAW_BYTE = 0.25
SPARE_BYTES = 2**20

log = logging.getLogger("studio.outputs")


def video_file(key: str) -> str:
    """The mp4 of a comparison side (or of the side-by-side video), by its key."""
    return VIDEO_FILES.get(key, f"{key}.mp4")


def poster_file(key: str) -> str:
    return POSTER_FILES.get(key, f"{key}.png")


def run_name(prompt: str) -> str:
    """`<UTC time>-<prompt slug>`: sorts by time and says what the run was."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = "-".join(re.findall(r"[a-z0-9]+", str(prompt).lower())[:6])[:40] or "run"
    return f"{stamp}-{slug}"


def _folder_error(root: Path, what: str, exc: OSError | None = None) -> StudioError:
    """Messages name the folder, not its full path (a page visitor sees them); the log keeps the path."""
    reason = f" ({exc.strerror or type(exc).__name__})" if exc is not None else ""
    log.warning("outputs folder %s: %s%s", root, what, reason)
    return StudioError(f"the outputs folder {root.name!r} {what}{reason}; set --output-dir "
                       "(CHAI_STUDIO_OUTPUT_DIR) to a writable folder with room, nothing was written")


def prepare_output_dir(output_dir: str | Path) -> Path:
    """Create the outputs folder if needed; a folder that cannot be made is a clear StudioError."""
    root = Path(output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _folder_error(root, "cannot be created", exc) from exc
    if not root.is_dir():
        raise _folder_error(root, "is not a folder")
    return root


def estimate_run_bytes(settings: Any) -> int:
    """An upper estimate of one run's files: two videos, the side-by-side one (a little over twice
    as wide), the posters and run.json."""
    frame_bytes = int(settings.width) * int(settings.height) * 3
    video = frame_bytes * int(settings.num_frames) * VIDEO_BYTES_PER_RAW_BYTE
    return int(video * 4.2 + frame_bytes * 5 + SPARE_BYTES)


def check_writable(output_dir: str | Path, needed_bytes: int = 0) -> Path:
    """Refuse before rendering when the outputs folder cannot take a run: not creatable, not
    writable, or with less free space than `needed_bytes`."""
    root = prepare_output_dir(output_dir)
    try:
        handle, probe = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}probe-", dir=root)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise _folder_error(root, "is not writable", exc) from exc
    free = shutil.disk_usage(root).free
    if free < needed_bytes:
        raise _folder_error(root, f"has {free / 2**20:.0f} MB free and this run needs about "
                                  f"{needed_bytes / 2**20:.0f} MB")
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(output_dir: str | Path) -> list[str]:
    """Remove unfinished runs left by a process that died while writing (names of those removed).
    A folder still being written by a live process (another CLI run, say) is kept."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    removed = []
    for child in root.iterdir():
        if not child.name.startswith(STAGING_PREFIX):
            continue
        owner = child.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and _pid_alive(int(owner)):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed.append(child.name)
    if removed:
        log.warning("removed %d unfinished run folder(s) from %s", len(removed), root)
    return removed


class RunWriter:
    """Writes one run into a hidden staging folder inside the outputs folder; `commit` writes
    run.json last and renames the folder into place, so a listed run is always complete.

    Same filesystem, so the rename is atomic: a crash leaves only a `.partial-<pid>-…` folder,
    which history never shows and `clean_leftovers` removes at the next start.
    """

    def __init__(self, output_dir: str | Path, prompt: str):
        self.root = prepare_output_dir(output_dir)
        self.name = run_name(prompt)
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.root))
        except OSError as exc:
            raise _folder_error(self.root, "is not writable", exc) from exc
        self.run_dir: Path | None = None

    def path(self, name: str) -> Path:
        """Where a file goes while the run is written (inside the staging folder)."""
        return self.staging / name

    def video(self, kind: str, frames: np.ndarray, fps: int, comment: str | None = None) -> str:
        write_video(self.path(video_file(kind)), frames, fps, comment)
        return video_file(kind)

    def poster(self, kind: str, frames: np.ndarray) -> str:
        write_poster(self.path(poster_file(kind)), frames)
        return poster_file(kind)

    def commit(self, record: dict[str, Any]) -> Path:
        """Write run.json, then move the finished folder to `<outputs>/<run name>[-n]`."""
        write_run_json(self.staging, record)
        for n in range(1000):
            target = self.root / (self.name + (f"-{n}" if n else ""))
            if target.exists() or target.is_symlink():
                continue
            try:
                os.rename(self.staging, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # another writer took the name between the check and the rename
                raise
            self.run_dir = target
            return target
        raise StudioError(f"could not find a free run name under the outputs folder {self.root.name!r}")

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


@contextlib.contextmanager
def staged_run(output_dir: str | Path, prompt: str) -> Iterator[RunWriter]:
    """`with staged_run(out, prompt) as run: run.video(...); run.commit(record)` -> run.run_dir.

    Anything that fails (a full disk, a cancelled run, a bug) removes the staging folder, so the
    outputs folder never holds half a run; a failed write becomes one clear StudioError.
    """
    writer = RunWriter(output_dir, prompt)
    try:
        yield writer
        if writer.run_dir is None:
            raise RuntimeError("staged_run ended without commit()")
    except OSError as exc:
        writer.abort()
        what = "ran out of space while writing the run" if exc.errno == errno.ENOSPC else "could not take the run"
        raise _folder_error(writer.root, what, exc) from exc
    except BaseException:
        writer.abort()
        raise


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
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename publishes the run
    return path
