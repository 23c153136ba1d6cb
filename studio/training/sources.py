"""Where training clips come from: a folder of clips, or a CSV / JSONL list of paths with ranges.

A list row names a clip (`path`, or `clip`) and optionally `start`/`end` seconds (that range is then
taken as one shot, no cut detection) and `caption` (a caption file for that row). Relative paths
are relative to the list file. In a folder every video file is used, and a caption written by
hand beside a clip (`shot.caption.json` for `shot.mp4`) replaces the captioner's for that clip.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..generation.provenance import file_sha256
from ..video import VIDEO_EXTENSIONS as CLIP_EXTENSIONS  # the page's and the CLI's list; other files are not clips
CAPTION_SUFFIX = ".caption.json"
LIST_SUFFIXES = (".csv", ".jsonl")
FIELD = "clips"


@dataclass(frozen=True)
class ClipSource:
    """One clip to split into shots (or one given range of it)."""

    path: Path
    start: float | None = None
    end: float | None = None
    caption_file: Path | None = None  # a hand-written caption that wins over the captioner's

    @property
    def has_range(self) -> bool:
        return self.start is not None or self.end is not None


def list_sources(location: str | Path) -> list[ClipSource]:
    """The clips a folder or a CSV/JSONL list names, in a stable order."""
    path = Path(location).expanduser()
    if path.is_dir():
        clips = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CLIP_EXTENSIONS)
        if not clips:
            raise InputError(f"{path} holds no video files ({', '.join(CLIP_EXTENSIONS)})", FIELD)
        return [ClipSource(p, caption_file=_caption_beside(p)) for p in clips]
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
        if not rows:
            raise InputError(f"{path} lists no clips", FIELD)
        return [_source_from_row(row, path, number) for number, row in rows]
    if not path.exists():
        raise InputError(f"{path} does not exist; give a folder of clips or a .csv / .jsonl list", FIELD)
    raise InputError(f"{path} is neither a folder of clips nor a .csv / .jsonl list of them", FIELD)


def _caption_beside(clip: Path) -> Path | None:
    candidate = clip.with_name(clip.stem + CAPTION_SUFFIX)
    return candidate if candidate.is_file() else None


def _read_csv(path: Path) -> list[tuple[int, dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"path", "clip"} & set(reader.fieldnames):
            raise InputError(f"{path} needs a header row with a 'path' column", FIELD)
        return [(number, row) for number, row in enumerate(reader, start=2)]


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            # `from None` on purpose: a RecursionError's chain is thousands of frames of the JSON decoder.
            raise InputError(f"{path.name} line {number} is not valid JSON", FIELD) from None
        if not isinstance(row, dict):
            raise InputError(f"{path.name} line {number} must be a JSON object with a 'path'", FIELD)
        rows.append((number, row))
    return rows


def _source_from_row(row: dict, list_file: Path, number: int) -> ClipSource:
    where = f"{list_file.name} line {number}"
    name = row.get("path") or row.get("clip")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where} has no clip path", FIELD)
    clip = _relative_to(list_file, name)
    start, end = _seconds(row.get("start"), where, "start"), _seconds(row.get("end"), where, "end")
    if start is not None and end is not None and end <= start:
        raise InputError(f"{where}: end ({end:g} s) must be after start ({start:g} s)", FIELD)
    caption = row.get("caption")
    caption_file = _relative_to(list_file, caption) if isinstance(caption, str) and caption.strip() else None
    return ClipSource(clip, start, end, caption_file or _caption_beside(clip))


def _relative_to(list_file: Path, name: str) -> Path:
    path = Path(name.strip()).expanduser()
    return path if path.is_absolute() else list_file.parent / path


def _seconds(value, where: str, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {name} must be a number of seconds, got {value!r}", FIELD) from exc
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"{where}: {name} must be 0 or more seconds, got {value!r}", FIELD)
    return seconds


def cached_file_sha256(path: Path, cache: dict[str, str] | None = None) -> str:
    """Content hash of a clip; `cache` (keyed by path, size and mtime) spares re-reading big files."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if cache is not None and key in cache:
        return cache[key]
    value = file_sha256(path)
    if cache is not None:
        cache[key] = value
    return value
