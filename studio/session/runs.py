"""Past runs as the page shows them: cards for the history, and everything a reload restores.

A run is named by its id (its folder's name under the output folder); only folders inside the
output folder are read and only files inside a run are handed out. A studio mp4 or a run.json
that a visitor drops on the page restores the same settings as a run from the history.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..caption.structured import StructuredCaption
from ..config import StudioConfig
from ..errors import InputError
from ..values import file_path, one_line

log = logging.getLogger("studio.session")

ANY = ""  # a filter field left empty matches every run


@dataclass(frozen=True)
class RunCard:
    """One history entry, in words a filmmaker reads at a glance."""

    run_id: str
    created: str
    prompt: str
    seed: int
    mode: str
    preset: str
    size: str
    steps: int
    seconds: float
    poster: str | None
    judged: dict[str, float] = field(default_factory=dict)  # side label -> mean judge score
    missing: tuple[str, ...] = ()  # labels of the sides a cancel stopped (a partial run)
    profile: str = "final"
    from_run: str | None = None  # the run this one rendered again (a kept draft, for a final)
    rendered_again: tuple[str, ...] = ()  # the runs made from this one (a draft's finals)

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def lines(self) -> list[str]:
        date = self.created.replace("T", " ")[:16] or "unknown date"
        judged = " · ".join(f"{label} {score * 100:.0f}%" for label, score in self.judged.items())
        partial = f" · partial ({', '.join(self.missing)} cancelled)" if self.missing else ""
        links = ([f"from {self.from_run}"] if self.from_run else []) + \
            ([f"rendered again as {', '.join(self.rendered_again)}"] if self.rendered_again else [])
        return [date + partial, f"{self.mode} · {self.preset} · {self.size} · {self.seconds:g} s",
                f"seed {self.seed} · {self.steps} steps · {self.profile}", *links, judged or "not judged",
                one_line(self.prompt, 90)]


@dataclass(frozen=True)
class HistoryFilter:
    """Which cards the history shows: a comparison mode, a model preset, and words to search for
    (every word must appear in the prompt, the run id, the date or the card's settings line)."""

    mode: str = ANY
    model: str = ANY
    text: str = ANY

    @classmethod
    def from_user(cls, mode: Any = None, model: Any = None, text: Any = None) -> HistoryFilter:
        from ..generation.comparison import MODES
        from ..generation.presets import PRESETS

        mode, model = str(mode or ANY).strip(), str(model or ANY).strip()
        if mode and mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} (or none for all)", "mode")
        if model and model not in PRESETS:
            raise InputError(f"unknown model {model!r}; choose one of {', '.join(PRESETS)} (or none for all)",
                             "model")
        if text is not None and not isinstance(text, str):
            raise InputError("expected words to search for", "search")
        return cls(mode, model, " ".join((text or "").split())[:200])

    def matches(self, card: RunCard) -> bool:
        if self.mode and card.mode != self.mode:
            return False
        if self.model and card.preset != self.model:
            return False
        haystack = " ".join((card.run_id, card.prompt, *card.lines)).lower()
        return all(word in haystack for word in self.text.lower().split())

    @property
    def active(self) -> bool:
        return bool(self.mode or self.model or self.text)


@dataclass(frozen=True)
class RunView:
    """What a reload puts back on the page."""

    run_id: str | None
    caption: StructuredCaption | None
    prompt: str
    settings: dict[str, Any]
    videos: list[tuple[str, str | None]]  # (side label, video file) left then right
    downloads: list[str]
    reference: dict[str, Any] | None  # {"clip": path or None, "start", "end"} when the run used one
    start_image: str | None  # the run's own start image (image-start runs)
    message: str
    judgement: dict[str, Any] | None = None  # the run's judge.json, when it was judged


class RunHistory:
    def __init__(self, config: StudioConfig) -> None:
        self.output_dir = Path(config.output_dir)

    def folder(self, run_id: Any) -> Path:
        """The run's folder; None (a run this visitor may not see) is refused like a missing one."""
        from ..generation import run_dir_for

        return run_dir_for(self.output_dir, run_id)

    def cards(self, only: Sequence[str] | None = None, shown: HistoryFilter = HistoryFilter()) -> list[RunCard]:
        """Every finished run, newest first; with `only`, just those ids (a visitor's own); with
        `shown`, just the runs that filter matches."""
        return [card for card in self._cards(only) if shown.matches(card)]

    def delete(self, run_id: Any) -> str:
        """Remove a run's folder with every file in it (videos, posters, run.json, judge.json).
        Only a run folder inside the outputs folder can be named (see `folder`)."""
        run_dir = self.folder(run_id)
        files = sum(1 for path in run_dir.rglob("*") if path.is_file())
        try:
            shutil.rmtree(run_dir)
        except OSError as exc:
            raise InputError(f"could not delete run {run_dir.name} ({type(exc).__name__}); check the outputs "
                             "folder's permissions", "run") from exc
        log.info("deleted run %s (%d files)", run_dir.name, files)
        return f"Deleted run **{run_dir.name}** and its {files} file(s)."

    def _cards(self, only: Sequence[str] | None) -> list[RunCard]:
        from ..generation import list_runs
        from ..research.judge import load_judgement

        cards = []
        for run in list_runs(self.output_dir):
            if only is not None and run.run_id not in only:
                continue
            record = run.record
            settings = record.get("settings") or {}
            mode = (record.get("comparison") or {}).get("mode", "finetuned")
            judged = _judge_means(load_judgement(run.run_dir))
            cards.append(RunCard(run.run_id, run.created, run.prompt, run.seed, mode, run.preset,
                                 f"{settings.get('width', '?')}×{settings.get('height', '?')}",
                                 int(settings.get("steps", 0)), round(_seconds(settings), 2),
                                 str(run.poster) if run.poster else None, judged, missing_labels(record),
                                 str(settings.get("profile") or "final"), record.get("from_run")))
        # A draft's card names the finals made from it, as each final's card names its draft.
        again: dict[str, list[str]] = {}
        for card in cards:
            if card.from_run:
                again.setdefault(card.from_run, []).append(card.run_id)
        return [dataclasses.replace(card, rendered_again=tuple(again[card.run_id])) if card.run_id in again else card
                for card in cards]

    def reload(self, run_id: Any) -> RunView:
        from ..generation import load_run_by_id

        run = load_run_by_id(self.output_dir, run_id)
        files = run["files"]
        image_file = files.get("start_image")
        from ..research.judge import load_judgement

        view = _view(run, run["run_dir"].name, files, str(image_file) if image_file else None)
        return dataclasses.replace(view, judgement=load_judgement(run["run_dir"]))

    def import_file(self, path: Any) -> RunView:
        """Settings from a dropped run.json or studio mp4 (videos are not restored: only settings)."""
        from ..generation import load_run_file, load_run_from_video

        source = file_path(path, "run file", "a run.json or a studio mp4")
        if source.suffix.lower() == ".json":
            run = load_run_file(source)  # refuses a file too large to be a run record before reading it
        elif source.suffix.lower() == ".mp4":
            run = load_run_from_video(source)
        else:
            raise InputError(f"{source.name} is neither a run.json nor a studio mp4", "run file")
        return _view(run, None, {}, None, f"Loaded the settings of **{source.name}**")


def missing_labels(record: dict[str, Any]) -> tuple[str, ...]:
    """The labels of a partial run's missing sides (none for a whole run)."""
    if not record.get("partial"):
        return ()
    missing = (record.get("comparison") or {}).get("missing_sides") or []
    return tuple(str(side.get("label") or side.get("key")) for side in missing if isinstance(side, dict))


def _seconds(settings: dict[str, Any]) -> float:
    try:
        return (int(settings["num_frames"]) - 1) / int(settings["fps"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 0.0


def _judge_means(judgement: dict[str, Any] | None) -> dict[str, float]:
    if not judgement:
        return {}
    labels = {side["key"]: side["label"] for side in judgement.get("sides", [])}
    sums: dict[str, list[float]] = {}
    for row in (judgement.get("aspects") or {}).values():
        for key, score in (row.get("scores") or {}).items():
            sums.setdefault(labels.get(key, key), []).append(float(score))
    return {label: sum(scores) / len(scores) for label, scores in sums.items() if scores}


def _view(run: dict[str, Any], run_id: str | None, files: dict[str, Any], start_image: str | None,
          message: str | None = None) -> RunView:
    s, record = run["settings"], run["record"]
    comparison = record.get("comparison") or {}
    settings = dict(preset=run["preset"], seconds=round(s.duration, 2), resolution=f"{s.width}x{s.height}",
                    steps=s.steps, guidance=s.guidance, shift=s.shift, seed=run["seed"],
                    negative_prompt=s.negative_prompt, mode=comparison.get("mode", "finetuned"),
                    short_prompt=comparison.get("short_prompt") or "",
                    start_from_frame=bool((record.get("image") or {}).get("file")))
    videos = []
    for side in comparison.get("sides", []):
        video = files.get(f"{side['key']}_video")
        videos.append((side.get("label", side["key"]), str(video) if video else None))
    videos += [(f"{label} (cancelled)", None) for label in missing_labels(record)]
    downloads = [str(files[k]) for k in ("side_by_side_video", "run_json") if files.get(k)]
    reference = record.get("reference") or None
    if reference:
        clip = reference.get("clip")
        reference = {**reference, "clip": clip if clip and Path(clip).is_file() else None}
    note = "" if run["caption"] is not None else " (this run kept no caption; the current caption is unchanged)"
    message = message or f"Reloaded run **{run_id}**"
    if record.get("partial"):
        message += f" (partial: {', '.join(missing_labels(record))} was cancelled)"
    return RunView(run_id, run["caption"], run["prompt"], settings, videos, downloads, reference, start_image,
                   f"{message}{note}.")
