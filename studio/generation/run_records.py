"""Reading run records back: `load_run`, `load_run_by_id`, `load_run_from_video`, `list_runs`.

Separate from `outputs` (which writes runs) because everything read here may have been edited,
damaged or planted: every field is checked against the studio's own limits, a damaged record is
refused by name rather than half-used, and a run is only ever found by a plain id inside the
outputs folder, never through a link or a path.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError, StudioError
from .presets import DEFAULT_NEGATIVE_PROMPT
from .settings import GUIDANCE_RANGE, MAX_NEGATIVE_CHARS, MAX_SEED, SHIFT_RANGE, STEPS_RANGE, GenerationSettings
from .outputs import (
    POSTER_FILES, RUN_SCHEMA, RUN_SCHEMA_VERSION, VIDEO_FILES, poster_file, read_video_comment, video_file,
)

MAX_PROMPT_CHARS = 20000
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_RUN_JSON_BYTES = 4 * 2**20  # a run.json holds a caption with its history; far below this

log = logging.getLogger("studio.outputs")


def _damaged(where: str, what: str) -> InputError:
    return InputError(f"{where} is a damaged run record: {what}", "run")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


@dataclass(frozen=True)
class Rule:
    """What a run record's field must be, in the words of a damage report."""

    words: str


def _whole(low: int, high: int) -> Any:
    return Annotated[int, Field(strict=True, ge=low, le=high), Rule(f"must be a whole number from {low} to {high}")]


def _real(low: float, high: float) -> Any:
    return Annotated[float, Field(strict=True, ge=low, le=high, allow_inf_nan=False),
                     Rule(f"must be a number from {low:g} to {high:g}")]


def _text(limit: int) -> Any:
    return Annotated[str, Field(strict=True, max_length=limit), Rule(f"must be text of at most {limit} characters")]


class RunSettingsRecord(BaseModel):
    """run.json's `settings` as `GenerationSettings.to_dict` writes them. Keys the studio does not
    read are ignored, not refused: a record from another studio version may hold more."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    height: _whole(16, 4096)
    width: _whole(16, 4096)
    num_frames: _whole(1, 2001)
    fps: _whole(1, 60)
    steps: _whole(*STEPS_RANGE)
    guidance: _real(*GUIDANCE_RANGE)
    guidance_2: Optional[_real(*GUIDANCE_RANGE)] = None
    shift: _real(*SHIFT_RANGE)
    seed: _whole(0, MAX_SEED)
    negative_prompt: _text(MAX_NEGATIVE_CHARS) = DEFAULT_NEGATIVE_PROMPT
    max_sequence_length: _whole(1, 4096) = 512
    preview_every: _whole(0, 10000) = 0
    profile: _text(32) = "final"
    step_cache: _text(200) = ""


class RunRecordHead(BaseModel):
    """The parts of a run.json the studio reads back; the rest of the record is kept as written."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: _whole(1, 10**6) = RUN_SCHEMA_VERSION
    prompt: _text(MAX_PROMPT_CHARS)
    seed: _whole(0, MAX_SEED)
    created: _text(64) = ""
    settings: RunSettingsRecord


def _damage(exc: ValidationError, where: str) -> InputError:
    """pydantic's first complaint as a damage report naming the field, in the field's own words."""
    error = exc.errors(include_url=False)[0]
    model: Any = RunRecordHead
    key, info = "", None
    for part in error["loc"]:  # down through the nested objects to the field that was refused
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            break
        key, info = str(part), fields[part]
        model = info.annotation
    if error["type"] == "missing":
        return _damaged(where, f"{key} is missing")
    rule = next((m for m in info.metadata if isinstance(m, Rule)), None) if info else None
    return _damaged(where, f"{key} {rule.words if rule else 'cannot be read'}, got {_show(error['input'])}")


def _settings(data: RunSettingsRecord, where: str) -> GenerationSettings:
    from .profiles import PROFILES
    from .step_caches import canonical

    settings = data.model_dump()
    if settings["profile"] not in PROFILES:
        raise _damaged(where, f"profile must be one of {', '.join(PROFILES)}, got {_show(settings['profile'])}")
    try:  # the spelling run.json records is canonical; anything else was edited
        settings["step_cache"] = canonical(settings["step_cache"])
    except InputError as exc:
        raise _damaged(where, f"step_cache: {exc}") from None
    return GenerationSettings(**settings)


def _read_record(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, absurd nesting
        # `from None` on purpose: a RecursionError's chain is thousands of frames of the JSON decoder.
        raise InputError(f"{where} does not hold a studio run record", "run") from None
    if not isinstance(record, dict) or record.get("schema") != RUN_SCHEMA:
        raise InputError(f"{where} does not hold a studio run record", "run")
    return record


def _public(record: dict[str, Any], where: str) -> dict[str, Any]:
    """Every field the studio uses, checked; a damaged record is refused by name, never half-used."""
    from ..caption.structured import StructuredCaption
    from .presets import PRESETS

    if not isinstance(record.get("settings"), Mapping):  # said as a whole, not as its first missing key
        raise _damaged(where, f"settings must be an object, got {_show(record.get('settings'))}")
    try:
        head = RunRecordHead.model_validate(record)
    except ValidationError as exc:
        raise _damage(exc, where) from None
    prompt, seed = head.prompt, head.seed
    if not prompt.strip():
        raise _damaged(where, "prompt is empty")
    preset = record.get("preset")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise _damaged(where, f"preset must be one of {', '.join(PRESETS)}, got {_show(preset)}")
    settings = _settings(head.settings, where)
    caption = record.get("caption")
    if caption is not None:
        try:
            caption = StructuredCaption.from_dict(caption)
        except InputError as exc:
            raise _damaged(where, f"caption: {exc}") from exc
        except (TypeError, ValueError, RecursionError) as exc:
            # `from None` on purpose: a RecursionError's chain is thousands of frames deep; the type is named.
            raise _damaged(where, f"caption is unreadable ({type(exc).__name__})") from None
    return {"prompt": prompt, "negative_prompt": settings.negative_prompt, "caption": caption,
            "settings": settings, "preset": preset, "seed": seed, "record": record}


def _read_run_json(path: Path, where: str) -> str | bytes:
    """At most MAX_RUN_JSON_BYTES of a run.json: a huge file is refused before it is read."""
    try:
        size = path.stat().st_size
        if size > MAX_RUN_JSON_BYTES:
            raise InputError(f"{where} is {size / 2**20:.1f} MB; a run record is at most "
                             f"{MAX_RUN_JSON_BYTES // 2**20} MB", "run")
        with open(path, "rb") as handle:
            return handle.read(MAX_RUN_JSON_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror or type(exc).__name__})", "run") from exc


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """prompt, negative_prompt, caption (StructuredCaption or None), settings (GenerationSettings),
    preset, seed and the full `record` of a run directory (a local path: the CLI's way in)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise InputError(f"{run_dir} has no run.json; it is not a finished run", "run")
    return load_run_file(path)


def load_run_file(path: str | Path) -> dict[str, Any]:
    """The same as `load_run`, from a run.json wherever it is (one a visitor dropped on the page)."""
    path = Path(path)
    return _public(_read_record(_read_run_json(path, str(path)), str(path)), str(path))


def load_run_from_video(path: str | Path) -> dict[str, Any]:
    """The same as `load_run`, from the record embedded in an mp4 the studio wrote."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist", "video")
    try:
        comment = read_video_comment(path)
    except Exception as exc:  # noqa: BLE001 - PyAV raises several kinds for non-videos
        raise InputError(f"{path} is not a readable video", "video") from exc
    if not comment:
        raise InputError(f"{path} carries no studio settings (not made by the studio?)", "video")
    if len(comment) > MAX_RUN_JSON_BYTES:
        raise InputError(f"{path} carries a record over {MAX_RUN_JSON_BYTES // 2**20} MB", "video")
    return _public(_read_record(comment, str(path)), str(path))


def _inside(root: Path, path: Path) -> Path | None:
    """`path` when it is a real file (not a link) whose resolved location is inside `root`."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(root) else None


def run_dir_for(output_dir: str | Path, run_id: Any) -> Path:
    """The folder of run `run_id`, strictly inside the outputs folder.

    Only a plain name is accepted (no separators, no `..`, no absolute path, no hidden or staging
    folder) and the folder must not be a link; every refusal reads the same, so the answer never
    tells whether some other path exists.
    """
    root = Path(output_dir).resolve()
    name = run_id if isinstance(run_id, str) else ""
    candidate = root / name
    if (not RUN_ID.fullmatch(name) or candidate.is_symlink() or not candidate.is_dir()
            or candidate.resolve().parent != root):
        raise InputError(f"there is no run {_show(run_id)} in the history; pick one of its cards "
                         "(press Refresh)", "run")
    return candidate


def load_run_by_id(output_dir: str | Path, run_id: Any) -> dict[str, Any]:
    """`load_run` for a run named by its id, confined to the outputs folder (what the page uses).
    Adds `run_dir` and `files`: each video, poster and run.json that is safely inside the run."""
    root = Path(output_dir).resolve()
    run_dir = run_dir_for(root, run_id)
    where = f"run {run_dir.name}"
    record_path = _inside(root, run_dir / "run.json")
    if record_path is None:
        raise InputError(f"{where} has no run.json; it is not a finished run", "run")
    run = _public(_read_record(_read_run_json(record_path, where), where), where)
    names = {**{f"{k}_video": v for k, v in VIDEO_FILES.items()}, **{f"{k}_poster": v for k, v in POSTER_FILES.items()},
             "run_json": "run.json", "start_image": "start_image.png"}
    for side in (run["record"].get("comparison") or {}).get("sides") or []:  # prompt mode's own side keys
        if isinstance(side, dict) and isinstance(side.get("key"), str) and RUN_ID.fullmatch(side["key"]):
            names.setdefault(f"{side['key']}_video", video_file(side["key"]))
            names.setdefault(f"{side['key']}_poster", poster_file(side["key"]))
    run["run_dir"] = run_dir
    run["files"] = {key: _inside(root, run_dir / name) for key, name in names.items()}
    return run


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    created: str
    prompt: str
    seed: int
    preset: str
    side_by_side_video: Path | None
    poster: Path | None
    record: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole run.json, checked

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def _first_poster(files: dict[str, Path | None]) -> Path | None:
    """The side-by-side poster, else a one-side run's own."""
    posters = [path for key, path in files.items() if key.endswith("_poster") and path is not None]
    return files.get("side_by_side_poster") or (posters[0] if posters else None)


def _written_ns(path: Path | None) -> int:
    try:
        return path.stat().st_mtime_ns if path else 0
    except OSError:  # deleted meanwhile: it sorts last, and the next listing leaves it out
        return 0


def list_runs(output_dir: str | Path) -> list[RunSummary]:
    """Completed runs under `output_dir`, newest first. A damaged, linked or unfinished folder is
    left out (and logged); one bad folder never affects the others."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    runs, written = [], {}
    for child in root.iterdir():
        if not RUN_ID.fullmatch(child.name):
            continue  # staging folders (hidden) and stray names
        try:
            run = load_run_by_id(root, child.name)
        except (StudioError, OSError, ValueError, RecursionError) as exc:
            log.info("history skips %s: %s", child.name, exc)
            continue
        files = run["files"]
        # `created` has whole seconds; two runs of one second are ordered by when run.json was written.
        written[run["run_dir"]] = _written_ns(files["run_json"])
        runs.append(RunSummary(run["run_dir"], str(run["record"].get("created", "")), run["prompt"], run["seed"],
                               run["preset"], files["side_by_side_video"], _first_poster(files), run["record"]))
    return sorted(runs, key=lambda r: (r.created, written[r.run_dir], r.run_dir.name), reverse=True)
