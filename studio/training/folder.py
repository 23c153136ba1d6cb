"""The dataset folder on disk: header, manifest, skips, caption cache and shards (see `dataset`)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

log = logging.getLogger(__name__)

DATASET_SCHEMA = "chai-studio/training-dataset"
DATASET_VERSION = 1
MANIFEST = "manifest.jsonl"
SKIPPED = "skipped.jsonl"
HEADER = "dataset.json"
CACHE = "cache.json"


@dataclass
class Skip:
    clip: str
    reason: str  # a short code, counted in the summary
    detail: str
    shot: int | None = None
    start: float | None = None
    end: float | None = None


class DatasetFolder:
    """The on-disk dataset: header, manifest, skips, caption cache and shards."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def open_for(self, wanted: dict[str, Any]) -> None:
        """Create the folder for a dataset spec's header (`wanted`), or check that an existing one was
        built with the same settings."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} is a file; --out must name a folder", "out")
        header_path = self.root / HEADER
        if header_path.is_file():
            existing = read_header(self.root)
            differing = [k for k in ("preset", "height", "width", "frames", "fps", "baseline", "captioner",
                                     "best_of", "two_stage", "prompt_words") if existing.get(k) != wanted[k]]
            if differing:
                details = ", ".join(f"{k} {existing.get(k)!r} here vs {wanted[k]!r} now" for k in differing)
                raise InputError(f"{self.root} was built with other settings ({details}); use another --out "
                                 "folder or the same settings", "out")
            self.drop_partial_row()
            return
        self.root.mkdir(parents=True, exist_ok=True)
        header_path.write_text(json.dumps({**wanted, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                          indent=2) + "\n")

    def drop_partial_row(self) -> None:
        """Cut a last line that a killed run left half-written, so the next row starts on its own line."""
        path = self.manifest_path
        if not path.is_file():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            log.warning("%s: dropping a partly written last line", path)
            path.write_bytes(data[: data.rfind(b"\n") + 1])

    def rows(self) -> list[dict[str, Any]]:
        return read_manifest(self.root, missing_ok=True)

    def append_row(self, row: dict[str, Any]) -> None:
        with open(self.manifest_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()

    def write_skips(self, skips: list[Skip]) -> None:
        text = "".join(json.dumps(asdict(s), ensure_ascii=False) + "\n" for s in skips)
        partial = self.root / (SKIPPED + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(self.root / SKIPPED)

    def load_cache(self) -> dict[str, Any]:
        path = self.root / CACHE
        try:
            data = json.loads(path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_cache(self, cache: dict[str, Any]) -> None:
        partial = self.root / (CACHE + ".partial")
        partial.write_text(json.dumps(cache))
        partial.replace(self.root / CACHE)

    def caption_path(self, caption_key: str) -> Path:
        return self.root / "captions" / f"{caption_key}.json"

    def shard_name(self, key: str) -> str:
        return f"shards/{key}.safetensors"


def read_header(root: str | Path) -> dict[str, Any]:
    path = Path(root) / HEADER
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{root} has no {HEADER}; build it with `python -m studio dataset CLIPS --out {root}`",
                         "dataset") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({exc})", "dataset") from exc
    if not isinstance(header, dict) or header.get("schema") != DATASET_SCHEMA:
        raise InputError(f"{path} is not a studio training dataset header", "dataset")
    return header


def read_manifest(root: str | Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """Manifest rows; a line cut short by a killed run (the last one) is ignored."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        if missing_ok:
            return []
        raise InputError(f"{root} has no {MANIFEST}; build it with `python -m studio dataset CLIPS --out {root}`",
                         "dataset")
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            if number == len(lines):
                log.warning("%s: ignoring a partly written last line", path)
                continue
            raise InputError(f"{path} line {number} is not valid JSON", "dataset") from exc
        if not isinstance(row, dict) or "key" not in row:
            raise InputError(f"{path} line {number} is not a manifest row", "dataset")
        rows.append(row)
    return rows
