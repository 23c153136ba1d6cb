"""Run directories: videos, posters and run.json, plus reading them back.

Each generation writes a new directory under the output folder (never overwriting one):
`baseline.mp4`, `finetuned.mp4`, `side_by_side.mp4` (H.264, yuv420p, the model's fps), poster
PNGs and `run.json`. The run record is also stored in each mp4's `comment` tag, so a video alone
is enough to load its prompt and settings back (`load_run_from_video`).

A run is written into a hidden staging folder and renamed into place once complete, run.json
last (`staged_run`), so a full disk or a killed process never leaves half a run in the history.
Runs are read back by id, confined to the outputs folder, and every field is checked
(`load_run_by_id`, `list_runs`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError, StudioError
from .comparison import BASELINE_LABEL, FINETUNED_LABEL

RUN_SCHEMA = "chai-studio/generation-run"
RUN_SCHEMA_VERSION = 1
VIDEO_FILES = {"baseline": "baseline.mp4", "finetuned": "finetuned.mp4", "side_by_side": "side_by_side.mp4"}
POSTER_FILES = {"baseline": "baseline.png", "finetuned": "finetuned.png", "side_by_side": "side_by_side.png"}
METADATA_KEY = "comment"
MAX_PROMPT_CHARS = 20000
_REQUIRED = object()


STAGING_PREFIX = ".partial-"  # unfinished runs: hidden, never listed, removed at start-up
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_RUN_JSON_BYTES = 4 * 2**20  # a run.json holds a caption with its history; far below this
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
        raise _folder_error(root, "cannot be created", exc) from None
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
        raise _folder_error(root, "is not writable", exc) from None
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
            raise _folder_error(self.root, "is not writable", exc) from None
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
        raise _folder_error(writer.root, what, exc) from None
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
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename publishes the run
    return path


# -- reading runs back: every field checked, every path confined to the outputs folder -------------

def _damaged(where: str, what: str) -> InputError:
    return InputError(f"{where} is a damaged run record: {what}", "run")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _given(data: Mapping[str, Any], key: str, where: str, default: Any) -> tuple[Any, bool]:
    """(value, whether it is the default); a missing field without a default is damage."""
    value = data.get(key, default)
    if value is _REQUIRED:
        raise _damaged(where, f"{key} is missing")
    return value, value is default and default is not _REQUIRED


def _whole(data: Mapping[str, Any], key: str, where: str, low: int, high: int, default: Any = _REQUIRED) -> Any:
    value, defaulted = _given(data, key, where, default)
    if defaulted:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _damaged(where, f"{key} must be a whole number from {low} to {high}, got {_show(value)}")
    return value


def _real(data: Mapping[str, Any], key: str, where: str, low: float, high: float, default: Any = _REQUIRED) -> Any:
    value, defaulted = _given(data, key, where, default)
    if defaulted:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise _damaged(where, f"{key} must be a number from {low:g} to {high:g}, got {_show(value)}")
    return float(value)


def _text(data: Mapping[str, Any], key: str, where: str, limit: int, default: Any = _REQUIRED) -> Any:
    value, defaulted = _given(data, key, where, default)
    if defaulted:
        return value
    if not isinstance(value, str) or len(value) > limit:
        raise _damaged(where, f"{key} must be text of at most {limit} characters, got {_show(value)}")
    return value


def _settings(data: Any, where: str) -> Any:
    from .presets import DEFAULT_NEGATIVE_PROMPT
    from .settings import GUIDANCE_RANGE, MAX_NEGATIVE_CHARS, MAX_SEED, SHIFT_RANGE, STEPS_RANGE, GenerationSettings

    if not isinstance(data, Mapping):
        raise _damaged(where, f"settings must be an object, got {_show(data)}")
    values = {
        "height": _whole(data, "height", where, 16, 4096), "width": _whole(data, "width", where, 16, 4096),
        "num_frames": _whole(data, "num_frames", where, 1, 2001), "fps": _whole(data, "fps", where, 1, 60),
        "steps": _whole(data, "steps", where, *STEPS_RANGE), "guidance": _real(data, "guidance", where, *GUIDANCE_RANGE),
        "guidance_2": _real(data, "guidance_2", where, *GUIDANCE_RANGE, default=None),
        "shift": _real(data, "shift", where, *SHIFT_RANGE), "seed": _whole(data, "seed", where, 0, MAX_SEED),
        "negative_prompt": _text(data, "negative_prompt", where, MAX_NEGATIVE_CHARS, DEFAULT_NEGATIVE_PROMPT),
        "max_sequence_length": _whole(data, "max_sequence_length", where, 1, 4096, 512),
        "preview_every": _whole(data, "preview_every", where, 0, 10000, 0),
    }
    return GenerationSettings(**values)


def _read_record(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, absurd nesting
        raise InputError(f"{where} does not hold a studio run record", "run") from None
    if not isinstance(record, dict) or record.get("schema") != RUN_SCHEMA:
        raise InputError(f"{where} does not hold a studio run record", "run")
    return record


def _public(record: dict[str, Any], where: str) -> dict[str, Any]:
    """Every field the studio uses, checked; a damaged record is refused by name, never half-used."""
    from ..caption.structured import StructuredCaption
    from .presets import PRESETS
    from .settings import MAX_SEED

    _whole(record, "version", where, 1, 10**6, default=RUN_SCHEMA_VERSION)
    prompt = _text(record, "prompt", where, MAX_PROMPT_CHARS)
    if not prompt.strip():
        raise _damaged(where, "prompt is empty")
    seed = _whole(record, "seed", where, 0, MAX_SEED)
    preset = record.get("preset")
    if preset not in PRESETS:
        raise _damaged(where, f"preset must be one of {', '.join(PRESETS)}, got {_show(preset)}")
    _text(record, "created", where, 64, default="")
    settings = _settings(record.get("settings"), where)
    caption = record.get("caption")
    if caption is not None:
        try:
            caption = StructuredCaption.from_dict(caption)
        except InputError as exc:
            raise _damaged(where, f"caption: {exc}") from None
        except (TypeError, ValueError, RecursionError) as exc:
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
        raise InputError(f"{where} cannot be read ({exc.strerror or type(exc).__name__})", "run") from None


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """prompt, negative_prompt, caption (StructuredCaption or None), settings (GenerationSettings),
    preset, seed and the full `record` of a run directory (a local path: the CLI's way in)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise InputError(f"{run_dir} has no run.json; it is not a finished run", "run")
    return _public(_read_record(_read_run_json(path, str(path)), str(path)), str(path))


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
        raise InputError(f"there is no run {_show(run_id)} in the history; pick one from the gallery "
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


def list_runs(output_dir: str | Path) -> list[RunSummary]:
    """Completed runs under `output_dir`, newest first. A damaged, linked or unfinished folder is
    left out (and logged); one bad folder never affects the others."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if not RUN_ID.fullmatch(child.name):
            continue  # staging folders (hidden) and stray names
        try:
            run = load_run_by_id(root, child.name)
        except (StudioError, OSError, ValueError, RecursionError) as exc:
            log.info("history skips %s: %s", child.name, exc)
            continue
        files = run["files"]
        runs.append(RunSummary(run["run_dir"], str(run["record"].get("created", "")), run["prompt"], run["seed"],
                               run["preset"], files["side_by_side_video"], _first_poster(files), run["record"]))
    return sorted(runs, key=lambda r: (r.created, r.run_dir.name), reverse=True)
