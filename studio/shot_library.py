"""The shot library: named structured captions in `prompts/shots/<name>.json` (shipped in the
package as `studio/prompts/shots/`), loaded by name: `studio compose dolly_zoom`.

Each preset is a complete `StructuredCaption` (all five aspects, written at CHAI caption length)
for one well-known shot (dolly zoom, rack focus, whip pan, ...), with the vocabulary primitives it
uses. The studio offers them as starting points: load one, edit it, compose, generate.

`PRESETS_DIR` is the library shipped with the repository; every function also takes a
`directory` so a user library (or a test's tmp dir) can be used instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .caption.structured import ASPECTS, StructuredCaption
from .caption.vocabulary import load_vocabulary
from .errors import InputError
from .resources import prompts_dir

PRESETS_DIR = prompts_dir() / "shots"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class PresetInfo:
    name: str  # file stem, snake_case; what load_preset takes
    title: str  # human title shown in the UI
    path: Path


def _directory(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else PRESETS_DIR


def list_presets(directory: str | Path | None = None) -> list[PresetInfo]:
    """The presets in `directory` (default PRESETS_DIR), sorted by name. A missing folder lists none."""
    folder = _directory(directory)
    if not folder.is_dir():
        return []
    presets = []
    for path in sorted(folder.glob("*.json")):
        if not _NAME.match(path.stem):
            continue
        presets.append(PresetInfo(path.stem, _read_title(path) or path.stem.replace("_", " "), path))
    return presets


def is_preset_name(text: str) -> bool:
    """Whether `text` is written like a preset name (`dolly_zoom`) rather than a path."""
    return isinstance(text, str) and bool(_NAME.match(text.strip()))


def load_preset(name: str, directory: str | Path | None = None) -> StructuredCaption:
    """Load the preset `name` (file stem, ".json" optional); unknown names list the known ones."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("give a preset name", "preset")
    stem = name.strip().removesuffix(".json")
    known = [p.name for p in list_presets(directory)]
    if not _NAME.match(stem) or stem not in known:
        listing = ", ".join(known) if known else f"none (no presets in {_directory(directory)})"
        raise InputError(f"unknown preset {name!r}; known presets: {listing}", "preset")
    path = _directory(directory) / f"{stem}.json"
    caption = StructuredCaption.load(path)
    vocab = load_vocabulary()
    for aspect in ASPECTS:
        try:
            caption.aspects[aspect].primitives = vocab.validate_primitives(caption.aspects[aspect].primitives)
        except InputError as exc:
            raise InputError(f"{path}: aspects.{aspect}: {exc}") from exc
    if not caption.title:
        caption.title = stem.replace("_", " ")
    return caption


def save_preset(caption: StructuredCaption, name: str, directory: str | Path | None = None,
                overwrite: bool = False) -> Path:
    """Write `caption` as preset `name` (snake_case). Refuses to replace an existing one unless asked."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise InputError(f"{name!r} is not a valid preset name; use lowercase letters, digits and underscores", "preset")
    if caption.is_empty():
        raise InputError("the caption is empty; write at least one aspect before saving it as a preset", "preset")
    load_vocabulary().validate_primitives(p for a in ASPECTS for p in caption.aspects[a].primitives)
    path = _directory(directory) / f"{name.strip()}.json"
    if path.exists() and not overwrite:
        raise InputError(f"preset {name.strip()!r} already exists at {path}; choose another name", "preset")
    saved = caption.copy()
    saved.provenance.source = "preset"
    return saved.save(path)


def _read_title(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return ""  # a broken file still lists; load_preset reports what is wrong with it
    title = data.get("title") if isinstance(data, dict) else None
    return title.strip() if isinstance(title, str) else ""
