"""`python -m studio dataset`: clips -> captioned shots -> cached latents and prompt embeddings.

The pipeline, per clip: probe, split into shots (PySceneDetect), take each usable shot's training
window, caption it with the CHAI captioner (or take the caption written beside the clip), compose
the training prompt, then encode the window's frames with the baseline's VAE and the prompt with
its text encoder into one safetensors shard per shot.

The dataset folder holds:
    dataset.json     what the dataset was built for (preset, size, frames, models); fixed once written
    manifest.jsonl   one row per finished shot (appended as each finishes, so a killed run keeps them)
    skipped.jsonl    every clip or shot left out, with its reason (rewritten by each run)
    shards/KEY.safetensors   `latents` (C, F', H', W') and `prompt_embeds` (tokens, dim), bfloat16
    captions/KEY.json        each shot's caption and rewards, cached so an interrupted run resumes
    cache.json               clip hashes and detected shots, so re-runs do not re-read big files

Work is keyed by the clip's content hash, the shot's range and the settings that shape it, so
running the command again does only what is missing and loads no model when nothing is.

`build_dataset` runs everything in this process; `studio.training.ray_stages` runs the same two
stages (`CaptionStage`, `EncodeStage`) as Ray Data `map_batches` stages, one model actor per GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..caption.structured import ASPECTS, Provenance, StructuredCaption
from ..config import StudioConfig
from ..errors import InputError, StudioError
from ..generation.presets import Preset, get_preset
from .sources import ClipSource, file_sha256, list_sources

log = logging.getLogger(__name__)

DATASET_SCHEMA = "chai-studio/training-dataset"
DATASET_VERSION = 1
MANIFEST = "manifest.jsonl"
SKIPPED = "skipped.jsonl"
HEADER = "dataset.json"
CACHE = "cache.json"
CAPTION_FPS = 2.0  # what the captioner samples, as for a reference clip
MAX_BEST_OF = 16
# Tiny checkpoints (see studio.tiny.wan) handle a few latent tokens: a 64x64, 9-frame window.
TINY_SIZE = {"height": 64, "width": 64, "frames": 9}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that shapes a dataset's rows; checked once, before anything is read or loaded."""

    preset: str
    height: int
    width: int
    frames: int
    fps: int
    captioner: str
    baseline: str
    best_of: int = 1
    two_stage: bool = False
    prompt_words: int = 260
    min_shot_seconds: float = 0.0
    max_shot_seconds: float = 60.0
    shot_threshold: float = 27.0
    max_new_tokens: int | None = None  # cap on each caption's tokens (None: the captioner's default)

    @property
    def window_seconds(self) -> float:
        """The span a training window covers: `frames` frames at the preset's frame rate."""
        return self.frames / self.fps

    def caption_key(self, clip_sha: str, start: float, end: float) -> str:
        return _digest(clip_sha, f"{start:.3f}", f"{end:.3f}", self.captioner, self.best_of, self.two_stage,
                       self.max_new_tokens)

    def row_key(self, clip_sha: str, start: float, end: float) -> str:
        return _digest(self.caption_key(clip_sha, start, end), self.baseline, self.preset, self.height, self.width,
                       self.frames, self.prompt_words)

    def header(self) -> dict[str, Any]:
        """What `dataset.json` records; training checks its preset and size against this."""
        return {"schema": DATASET_SCHEMA, "version": DATASET_VERSION, "preset": self.preset, "height": self.height,
                "width": self.width, "frames": self.frames, "fps": self.fps, "baseline": self.baseline,
                "captioner": self.captioner, "best_of": self.best_of, "two_stage": self.two_stage,
                "prompt_words": self.prompt_words, "max_new_tokens": self.max_new_tokens}

    @classmethod
    def from_user(cls, config: StudioConfig, preset: str, height: Any = None, width: Any = None, frames: Any = None,
                  best_of: Any = 1, two_stage: bool = False, min_shot_seconds: Any = None,
                  max_shot_seconds: Any = 60.0, shot_threshold: Any = 27.0,
                  max_new_tokens: Any = None) -> DatasetSpec:
        """Sizes are snapped and checked exactly as `generate` does (its flags have the same names)."""
        from ..captioner import captioner_path
        from ..generation.settings import GenerationSettings, _number

        chosen = get_preset(preset)
        if config.tiny:
            height = TINY_SIZE["height"] if height is None else height
            width = TINY_SIZE["width"] if width is None else width
            frames = TINY_SIZE["frames"] if frames is None else frames
        size = GenerationSettings.from_user(chosen, height=height, width=width, frames=frames, seed=0)
        best = _number(best_of, "best_of", int)
        if not 1 <= best <= MAX_BEST_OF:
            raise InputError(f"must be from 1 to {MAX_BEST_OF}, got {best}", "best_of")
        window = size.num_frames / size.fps
        low = window if min_shot_seconds is None else _number(min_shot_seconds, "min_shot_seconds", float)
        high = _number(max_shot_seconds, "max_shot_seconds", float)
        if low < window - 1e-6:
            raise InputError(f"must be at least the training window, {window:.2f} s ({size.num_frames} frames at "
                             f"{size.fps} fps); lower --frames for shorter shots", "min_shot_seconds")
        if high < low:
            raise InputError(f"must be at least min_shot_seconds ({low:g}), got {high:g}", "max_shot_seconds")
        threshold = _number(shot_threshold, "shot_threshold", float)
        if not 0 < threshold <= 100:
            raise InputError(f"must be in (0, 100], got {threshold:g}", "shot_threshold")
        tokens = None if max_new_tokens is None else _number(max_new_tokens, "max_new_tokens", int)
        if tokens is not None and not 1 <= tokens <= 4096:
            raise InputError(f"must be from 1 to 4096, got {tokens}", "max_new_tokens")
        baseline = config.baseline if not config.tiny else f"tiny:{chosen.name}"
        return cls(preset=chosen.name, height=size.height, width=size.width, frames=size.num_frames, fps=size.fps,
                   captioner=captioner_path(config) if not config.tiny else "tiny:captioner",
                   baseline=baseline, best_of=best, two_stage=bool(two_stage), prompt_words=config.prompt_words,
                   min_shot_seconds=low, max_shot_seconds=high, shot_threshold=threshold, max_new_tokens=tokens)

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> DatasetSpec:
        names = {f for f in cls.__dataclass_fields__} & set(header)
        return cls(**{k: header[k] for k in names})


def _digest(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


@dataclass
class ShotTask:
    """One training window to caption and encode; JSON-able so Ray can carry it."""

    clip: str
    clip_sha256: str
    shot: int
    start: float
    end: float
    shot_start: float
    shot_end: float
    key: str
    caption_key: str
    caption_file: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShotTask:
        return cls(**json.loads(text))


@dataclass
class Skip:
    clip: str
    reason: str  # a short code, counted in the summary
    detail: str
    shot: int | None = None
    start: float | None = None
    end: float | None = None


@dataclass
class DatasetSummary:
    kept: int  # manifest rows for the clips of this run
    new: int  # rows written by this run
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    loaded_captioner: bool = False
    loaded_encoders: bool = False

    def finish(self, folder: DatasetFolder, skips: list[Skip], began: float) -> DatasetSummary:
        """Record the run's skips and close the books."""
        folder.write_skips(skips)
        self.kept += self.new
        self.skipped = Counter(s.reason for s in skips)
        self.seconds = time.perf_counter() - began
        return self

    def lines(self) -> list[str]:
        out = [f"shots kept: {self.kept} ({self.new} new)",
               f"skipped: {sum(self.skipped.values())}" + (
                   " (" + ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items())) + ")"
                   if self.skipped else ""),
               f"time: {self.seconds:.1f} s"]
        return out


# -- the folder --------------------------------------------------------------------------------------


class DatasetFolder:
    """The on-disk dataset: header, manifest, skips, caption cache and shards."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def open_for(self, spec: DatasetSpec) -> None:
        """Create the folder for `spec`, or check that an existing one was built with the same settings."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} is a file; --out must name a folder", "out")
        header_path = self.root / HEADER
        wanted = spec.header()
        if header_path.is_file():
            existing = read_header(self.root)
            differing = [k for k in ("preset", "height", "width", "frames", "fps", "baseline", "captioner",
                                     "best_of", "two_stage", "prompt_words") if existing.get(k) != wanted[k]]
            if differing:
                details = ", ".join(f"{k} {existing.get(k)!r} here vs {wanted[k]!r} now" for k in differing)
                raise InputError(f"{self.root} was built with other settings ({details}); use another --out "
                                 "folder or the same settings", "out")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        header_path.write_text(json.dumps({**wanted, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                          indent=2) + "\n")

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
    except FileNotFoundError:
        raise InputError(f"{root} has no {HEADER}; build it with `python -m studio dataset CLIPS --out {root}`",
                         "dataset") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({exc})", "dataset") from None
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
        except ValueError:
            if number == len(lines):
                log.warning("%s: ignoring a partly written last line", path)
                continue
            raise InputError(f"{path} line {number} is not valid JSON", "dataset") from None
        if not isinstance(row, dict) or "key" not in row:
            raise InputError(f"{path} line {number} is not a manifest row", "dataset")
        rows.append(row)
    return rows


# -- planning: which windows exist and which are missing ---------------------------------------------


def plan_dataset(sources: list[ClipSource], spec: DatasetSpec, folder: DatasetFolder,
                 on_clip: Callable[[str], None] | None = None) -> tuple[list[ShotTask], list[Skip]]:
    """Probe every clip and list its training windows; a bad clip becomes a `Skip`, never an exception."""
    from ..video import probe

    cache = folder.load_cache()
    hashes, shot_cache = cache.setdefault("sha256", {}), cache.setdefault("shots", {})
    tasks, skips = [], []
    for source in sources:
        name = str(source.path)
        if on_clip is not None:
            on_clip(name)
        try:
            info = probe(source.path, max_seconds=None)
            sha = file_sha256(source.path, hashes)
            shots = _shots(source, info, spec, sha, shot_cache)
        except StudioError as exc:
            skips.append(Skip(name, _reason_code(str(exc)), str(exc)))
            continue
        except OSError as exc:
            skips.append(Skip(name, "unreadable", f"{source.path.name}: {exc.strerror or exc}"))
            continue
        for index, (lo, hi) in enumerate(shots):
            length = hi - lo
            if length < spec.min_shot_seconds - 1e-6:
                skips.append(Skip(name, "too-short", f"shot {index} lasts {length:.2f} s; training windows need "
                                  f"{spec.min_shot_seconds:.2f} s", index, lo, hi))
                continue
            if length > spec.max_shot_seconds + 1e-6:
                skips.append(Skip(name, "too-long", f"shot {index} lasts {length:.2f} s, over the "
                                  f"{spec.max_shot_seconds:g} s limit (--max-shot-seconds)", index, lo, hi))
                continue
            start, end = round(lo, 3), round(lo + spec.window_seconds, 3)
            tasks.append(ShotTask(
                clip=name, clip_sha256=sha, shot=index, start=start, end=end, shot_start=round(lo, 3),
                shot_end=round(hi, 3), key=spec.row_key(sha, start, end),
                caption_key=spec.caption_key(sha, start, end),
                caption_file=str(source.caption_file) if source.caption_file else None))
    folder.save_cache(cache)
    return tasks, skips


def _shots(source: ClipSource, info, spec: DatasetSpec, sha: str, cache: dict) -> list[tuple[float, float]]:
    if source.has_range:
        start = source.start or 0.0
        end = min(source.end if source.end is not None else info.duration, info.duration)
        if start >= info.duration:
            raise InputError(f"{source.path.name}: start {start:g} s is past the end ({info.duration:.2f} s)", "clips")
        return [(start, end)]
    key = f"{sha}|{spec.shot_threshold}"
    if key not in cache:
        from ..video import detect_shots

        cache[key] = [[s.start, s.end] for s in detect_shots(source.path, threshold=spec.shot_threshold, info=info)]
    return [tuple(pair) for pair in cache[key]]


def _reason_code(message: str) -> str:
    lowered = message.lower()
    for needle, code in (("no video stream", "no-video-stream"), ("but no frames", "no-frames"),
                         ("is truncated:", "truncated"), ("is empty (0 bytes)", "empty-file")):
        if needle in lowered:
            return code
    return "unreadable"


# -- the two stages ---------------------------------------------------------------------------------


class CaptionStage:
    """Task -> task with its caption: the cached one, the hand-written one, or the captioner's.

    The captioner is loaded on the first shot that needs it, so a resumed run whose captions are all
    cached (or hand-written) never loads it.
    """

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str | Path):
        self.config, self.spec, self.folder = config, spec, DatasetFolder(root)
        self.captioner = None

    def __call__(self, task: ShotTask) -> dict[str, Any]:
        cached = self.folder.caption_path(task.caption_key)
        if cached.is_file():
            return json.loads(cached.read_text())
        if task.caption_file:
            caption = StructuredCaption.load(task.caption_file, self.config.max_aspect_chars)
            result = {"caption": caption.to_dict(), "rewards": {a: None for a in ASPECTS}, "source": "user"}
        else:
            result = self._model_caption(task)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(cached.name + ".partial")
            partial.write_text(json.dumps(result, ensure_ascii=False))
            partial.replace(cached)
        return result

    def _model_caption(self, task: ShotTask) -> dict[str, Any]:
        from ..video import sample_clip

        if self.captioner is None:
            from ..captioner import Captioner

            self.captioner = Captioner.from_config(self.config)
        clip = sample_clip(task.clip, task.start, task.end, fps=CAPTION_FPS, max_seconds=None, check_cuts=False)
        if self.spec.best_of > 1:
            seed = int(task.caption_key[:8], 16)
            best = {a: self.captioner.best_of_n(clip, a, n=self.spec.best_of, seed=seed,
                                                max_new_tokens=self.spec.max_new_tokens)[0] for a in ASPECTS}
            texts, rewards = {a: best[a][0] for a in ASPECTS}, {a: best[a][1] for a in ASPECTS}
        else:
            texts = self.captioner.caption(clip, ASPECTS, two_stage=self.spec.two_stage,
                                           max_new_tokens=self.spec.max_new_tokens)
            rewards = {a: self.captioner.rewards(clip, a, [texts[a] or " "])[0] for a in ASPECTS}
        caption = StructuredCaption(provenance=Provenance(
            clip=task.clip, start=task.start, end=task.end, models={"captioner": self.captioner.model_id},
            source="captioner"))
        for aspect, text in texts.items():
            caption.set_text(aspect, text, self.config.max_aspect_chars)
        for aspect, reward in rewards.items():
            caption.aspects[aspect].reward = reward
            caption.aspects[aspect].reward_text = caption.aspects[aspect].text
        return {"caption": caption.to_dict(), "rewards": rewards, "source": "captioner"}

    def close(self) -> None:
        if self.captioner is not None:
            self.captioner.unload()
            self.captioner = None


class EncodeStage:
    """Captioned task -> manifest row, writing the shot's shard (latents + prompt embeddings)."""

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str | Path):
        self.config, self.spec, self.folder = config, spec, DatasetFolder(root)
        self.encoders = None

    def __call__(self, task: ShotTask, captioned: dict[str, Any]) -> dict[str, Any]:
        from ..compose import ComposeOptions, compose
        from ..video import MAX_FRAME_PIXELS, sample_clip
        from .encoders import TrainingEncoders, fit_frames, write_shard

        if self.encoders is None:
            self.encoders = TrainingEncoders.from_config(self.config, get_preset(self.spec.preset))
        caption = StructuredCaption.from_dict(captioned["caption"], self.config.max_aspect_chars)
        prompt = compose(caption, ComposeOptions(max_words=self.spec.prompt_words),
                         tokenizer=self.encoders.tokenizer).prompt
        if not prompt.strip():
            raise InputError("the caption has no text to compose a prompt from", "caption")
        clip = sample_clip(task.clip, task.start, task.end, fps=self.spec.fps, max_seconds=None, check_cuts=False,
                           max_pixels=self.spec.frames * MAX_FRAME_PIXELS)
        frames = clip.frames[: self.spec.frames]
        if len(frames) < self.spec.frames:
            raise InputError(f"only {len(frames)} of {self.spec.frames} frames could be read", "clip")
        latents = self.encoders.encode_video(fit_frames(frames, self.spec.width, self.spec.height))
        embeds = self.encoders.encode_prompt(prompt)
        shard = self.folder.shard_name(task.key)
        write_shard(self.folder.root / shard, {"latents": latents, "prompt_embeds": embeds},
                    {"clip_sha256": task.clip_sha256, "key": task.key})
        return {
            "key": task.key, "clip": task.clip, "clip_sha256": task.clip_sha256, "shot": task.shot,
            "start": task.start, "end": task.end, "shot_start": task.shot_start, "shot_end": task.shot_end,
            "caption": captioned["caption"], "caption_source": captioned["source"], "prompt": prompt,
            "rewards": captioned["rewards"],
            "latents": {"shard": shard, "key": "latents", "shape": list(latents.shape)},
            "embeddings": {"shard": shard, "key": "prompt_embeds", "tokens": int(embeds.shape[0]),
                           "dim": int(embeds.shape[1])},
            "preset": self.spec.preset, "height": self.spec.height, "width": self.spec.width,
            "frames": self.spec.frames, "fps": self.spec.fps,
        }

    def close(self) -> None:
        self.encoders = None


# -- the whole run, in this process -------------------------------------------------------------------


def prepare(config: StudioConfig, clips: str | Path, out: str | Path, spec: DatasetSpec,
            on_clip: Callable[[str], None] | None = None) -> tuple[DatasetFolder, list[ShotTask], list[Skip], int]:
    """Plan a run: the tasks still missing, the skips, and how many of the planned rows already exist."""
    sources = list_sources(clips)
    folder = DatasetFolder(out)
    folder.open_for(spec)
    tasks, skips = plan_dataset(sources, spec, folder, on_clip)
    done = {row["key"] for row in folder.rows() if (folder.root / row["latents"]["shard"]).is_file()}
    missing = [t for t in tasks if t.key not in done]
    return folder, missing, skips, len(tasks) - len(missing)


def build_dataset(config: StudioConfig, clips: str | Path, out: str | Path, spec: DatasetSpec,
                  progress: Callable[[str, int], Any] | None = None) -> DatasetSummary:
    """Caption and encode every missing shot in this process: all captions first (one model at a
    time in memory), then all encodings. `progress(stage, total)` returns a bar with `update()`."""
    began = time.perf_counter()
    folder, missing, skips, existing = prepare(config, clips, out, spec)
    summary = DatasetSummary(kept=existing, new=0)
    captioned: dict[str, dict] = {}
    captions = CaptionStage(config, spec, folder.root)
    bar = progress("caption", len(missing)) if progress else None
    try:
        for task in missing:
            try:
                captioned[task.key] = captions(task)
            except StudioError as exc:
                skips.append(Skip(task.clip, "caption-failed", str(exc), task.shot, task.start, task.end))
            if bar is not None:
                bar.update()
    finally:
        summary.loaded_captioner = captions.captioner is not None
        captions.close()
        if bar is not None:
            bar.close()
    encoder = EncodeStage(config, spec, folder.root)
    todo = [t for t in missing if t.key in captioned]
    bar = progress("encode", len(todo)) if progress else None
    try:
        for task in todo:
            try:
                folder.append_row(encoder(task, captioned[task.key]))
                summary.new += 1
            except StudioError as exc:
                skips.append(Skip(task.clip, "encode-failed", str(exc), task.shot, task.start, task.end))
            if bar is not None:
                bar.update()
    finally:
        summary.loaded_encoders = encoder.encoders is not None
        encoder.close()
        if bar is not None:
            bar.close()
    return summary.finish(folder, skips, began)

