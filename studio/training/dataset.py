"""`python -m studio dataset`: clips -> captioned shots -> cached latents and prompt embeddings.

The pipeline, per clip: probe, split into shots (PySceneDetect), take each usable shot's training
window, caption it with the CHAI captioner (or take the caption written beside the clip), compose
the training prompt, then encode the window's frames with the baseline's VAE and the prompt with
its text encoder into one safetensors shard per shot.

The stages live in `studio.training.stages`. The dataset folder holds:
    dataset.json     what the dataset was built for (preset, size, frames, models); fixed once written
    manifest.jsonl   one row per finished shot (appended as each finishes, so a killed run keeps them)
    skipped.jsonl    every clip or shot left out, with its reason (rewritten by each run)
    shards/KEY.safetensors   `latents` (C, F', H', W') and `prompt_embeds` (tokens, dim), bfloat16
    captions/KEY.json        each shot's caption and rewards, cached so an interrupted run resumes
    cache.json               clip hashes and detected shots, so re-runs do not re-read big files

Work is keyed by the clip's content hash, the shot's range and the settings that shape it, so
running the command again does only what is missing and loads no model when nothing is.

`stages.build_dataset` runs everything in this process; `studio.training.ray_stages` runs the same two
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

from ..config import StudioConfig
from ..errors import InputError, StudioError
from .folder import DATASET_SCHEMA, DATASET_VERSION, DatasetFolder, Skip
from ..generation.provenance import file_sha256
from ..tiny.locations import model_locations
from .sources import ClipSource, cached_file_sha256, list_sources

log = logging.getLogger(__name__)

MAX_BEST_OF = 16


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
    two_stage: bool = True
    prompt_pack: str = ""  # the captioner's prompt pack (its sha256): another pack captions anew
    prompt_words: int = 260
    min_shot_seconds: float = 0.0
    max_shot_seconds: float = 60.0
    shot_threshold: float = 27.0
    max_new_tokens: int | None = None  # cap on each caption's tokens (None: the captioner's default)

    @property
    def window_seconds(self) -> float:
        """The span a training window covers: `frames` frames at the preset's frame rate."""
        return self.frames / self.fps

    def caption_key(self, clip_sha: str, start: float, end: float, caption_sha: str = "") -> str:
        """What a shot's caption depends on: its pixels, and either the captioner's settings or the
        content of the caption written by hand (`caption_sha`)."""
        if caption_sha:
            return _digest(clip_sha, f"{start:.6f}", f"{end:.6f}", "user", caption_sha)
        return _digest(clip_sha, f"{start:.6f}", f"{end:.6f}", self.captioner, self.best_of, self.two_stage,
                       self.max_new_tokens, self.prompt_pack)

    def row_key(self, clip_sha: str, start: float, end: float, caption_sha: str = "") -> str:
        return _digest(self.caption_key(clip_sha, start, end, caption_sha), self.baseline, self.preset, self.height,
                       self.width, self.frames, self.prompt_words)

    def header(self) -> dict[str, Any]:
        """What `dataset.json` records; training checks its preset and size against this."""
        return {"schema": DATASET_SCHEMA, "version": DATASET_VERSION, "preset": self.preset, "height": self.height,
                "width": self.width, "frames": self.frames, "fps": self.fps, "baseline": self.baseline,
                "captioner": self.captioner, "best_of": self.best_of, "two_stage": self.two_stage,
                "prompt_pack": self.prompt_pack, "prompt_words": self.prompt_words, "max_new_tokens": self.max_new_tokens}

    @classmethod
    def from_user(cls, config: StudioConfig, preset: str, height: Any = None, width: Any = None, frames: Any = None,
                  best_of: Any = 1, two_stage: bool = True, min_shot_seconds: Any = None,
                  max_shot_seconds: Any = 60.0, shot_threshold: Any = 27.0,
                  max_new_tokens: Any = None) -> DatasetSpec:
        """Sizes are snapped and checked exactly as `generate` does (its flags have the same names)."""
        from ..captioner import PromptPack
        from .. import values
        from ..generation.settings import GenerationSettings

        locations = model_locations(config)
        chosen = locations.preset(preset)  # the sizes these checkpoints handle
        size = GenerationSettings.from_user(chosen, height=height, width=width, frames=frames, seed=0)
        best = values.whole(best_of, "best_of", say_text=False)
        if not 1 <= best <= MAX_BEST_OF:
            raise InputError(f"must be from 1 to {MAX_BEST_OF}, got {best}", "best_of")
        window = size.num_frames / size.fps
        low = (window if min_shot_seconds is None
               else values.number(min_shot_seconds, "min_shot_seconds", say_text=False))
        high = values.number(max_shot_seconds, "max_shot_seconds", say_text=False)
        if low < window - 1e-6:
            raise InputError(f"must be at least the training window, {window:.2f} s ({size.num_frames} frames at "
                             f"{size.fps} fps); lower --frames for shorter shots", "min_shot_seconds")
        if high < low:
            raise InputError(f"must be at least min_shot_seconds ({low:g}), got {high:g}", "max_shot_seconds")
        threshold = values.number(shot_threshold, "shot_threshold", say_text=False)
        if not 0 < threshold <= 100:
            raise InputError(f"must be in (0, 100], got {threshold:g}", "shot_threshold")
        tokens = None if max_new_tokens is None else values.whole(max_new_tokens, "max_new_tokens", say_text=False)
        if tokens is not None and not 1 <= tokens <= 4096:
            raise InputError(f"must be from 1 to 4096, got {tokens}", "max_new_tokens")
        return cls(preset=chosen.name, height=size.height, width=size.width, frames=size.num_frames, fps=size.fps,
                   captioner=locations.recorded("captioner"), baseline=locations.recorded("baseline", chosen.name),
                   best_of=best, two_stage=bool(two_stage),
                   prompt_pack=PromptPack.for_config(config).sha256, prompt_words=config.prompt_words,
                   min_shot_seconds=low, max_shot_seconds=high, shot_threshold=threshold, max_new_tokens=tokens)


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


# -- planning: which windows exist and which are missing ---------------------------------------------


def plan_dataset(sources: list[ClipSource], spec: DatasetSpec, folder: DatasetFolder,
                 on_clip: Callable[[str], None] | None = None) -> tuple[list[ShotTask], list[Skip]]:
    """Probe every clip and list its training windows; a bad clip becomes a `Skip`, never an exception."""
    from ..video import probe

    cache = folder.load_cache()
    hashes, shot_cache = cache.setdefault("sha256", {}), cache.setdefault("shots", {})
    tasks, skips, seen = [], [], {}
    for source in sources:
        name = str(source.path)
        if on_clip is not None:
            on_clip(name)
        try:
            info = probe(source.path, max_seconds=None)
            sha = cached_file_sha256(source.path, hashes)
            shots = _shots(source, info, spec, sha, shot_cache)
        except StudioError as exc:
            skips.append(Skip(name, _reason_code(exc), str(exc)))
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
            # Six decimals, not three: 9 frames at 16 fps end at 0.5625 s, and 0.562 s holds only 8.
            start, end = round(lo, 6), round(lo + spec.window_seconds, 6)
            caption_sha = file_sha256(source.caption_file) if source.caption_file else ""
            key = spec.row_key(sha, start, end, caption_sha)
            if key in seen:
                skips.append(Skip(name, "duplicate", f"shot {index} repeats {Path(seen[key]).name} (same content "
                                  "and range)", index, lo, hi))
                continue
            seen[key] = name
            tasks.append(ShotTask(
                clip=name, clip_sha256=sha, shot=index, start=start, end=end, shot_start=round(lo, 3),
                shot_end=round(hi, 3), key=key, caption_key=spec.caption_key(sha, start, end, caption_sha),
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


# The clip checks whose codes a skip reports as they are; any other refusal is "unreadable".
CLIP_SKIP_CODES = ("no-video-stream", "no-frames", "truncated", "empty-file")


def _reason_code(error: StudioError) -> str:
    return error.code if error.code in CLIP_SKIP_CODES else "unreadable"


# -- the whole run, in this process -------------------------------------------------------------------


def prepare(config: StudioConfig, clips: str | Path, out: str | Path, spec: DatasetSpec,
            on_clip: Callable[[str], None] | None = None) -> tuple[DatasetFolder, list[ShotTask], list[Skip], int]:
    """Plan a run: the tasks still missing, the skips, and how many of the planned rows already exist."""
    sources = list_sources(clips)
    folder = DatasetFolder(out)
    folder.open_for(spec.header())
    tasks, skips = plan_dataset(sources, spec, folder, on_clip)
    done = {row["key"] for row in folder.rows() if (folder.root / row["latents"]["shard"]).is_file()}
    missing = [t for t in tasks if t.key not in done]
    return folder, missing, skips, len(tasks) - len(missing)
