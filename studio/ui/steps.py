"""The page's model-backed steps, as plain functions over `Backends` (no Gradio).

Each step validates its inputs with `actions`, calls the captioner, the generator or the video
reader through `Backends`, and returns plain values (or yields progress events) for the page to
show. Long steps are generators of small event objects so the page can stream tokens and
per-model progress; tests simply iterate them to the end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..caption.structured import ASPECTS, StructuredCaption
from ..config import StudioConfig
from ..errors import InputError, ModelLoadError, StudioError
from . import actions
from .backends import Backends
from .zerogpu import generation_seconds

CAPTION_FPS = 2.0
log = logging.getLogger("studio.ui")


# -- vocabulary, presets (never fail the page build) -----------------------------------------------

def safe_preset_names(backends: Backends) -> list[str]:
    try:
        return actions.preset_names(backends.presets())
    except StudioError:
        return []


def safe_primitive_choices(backends: Backends, aspect: str) -> list[tuple[str, str]]:
    try:
        return actions.primitive_choices(backends.vocabulary(), aspect)
    except StudioError:
        return []


def safe_glossary(backends: Backends, aspect: str) -> str:
    try:
        return actions.glossary_markdown(backends.vocabulary(), aspect)
    except StudioError as exc:
        return f"_Glossary unavailable: {exc}_"


def safe_definition(backends: Backends, aspect: str, qualified_id: str | None) -> str:
    try:
        return actions.primitive_definition(backends.vocabulary(), aspect, qualified_id)
    except StudioError:
        return ""


def replace_caption(state: Mapping[str, Any] | None, boxes: Sequence[str], new: StructuredCaption,
                    note: str, source: str, max_chars: int) -> StructuredCaption:
    """Take `new`'s texts into the current caption as revisions, so one Undo per aspect restores them."""
    caption = actions.apply_edits(state, boxes, max_chars)
    for aspect in ASPECTS:
        incoming = new.aspects[aspect]
        if incoming.text != caption.aspects[aspect].text:
            caption.record_revision(aspect, note, incoming.text, source=source)
        caption.aspects[aspect].primitives = list(incoming.primitives)
        caption.aspects[aspect].reward = incoming.reward
        caption.aspects[aspect].reward_text = incoming.reward_text
    caption.provenance = new.provenance
    caption.title = new.title or caption.title
    return caption


def load_preset(backends: Backends, name: str | None, state, boxes, max_chars: int) -> StructuredCaption:
    new = actions.preset_caption(backends.presets(), name)
    return replace_caption(state, boxes, new, f"loaded preset {name}", "preset", max_chars)


def import_into(path: str | Path, state, boxes, max_chars: int) -> StructuredCaption:
    new = actions.import_caption(path, max_chars)
    return replace_caption(state, boxes, new, f"imported {Path(path).name}", "import", max_chars)


def apply_primitive(backends: Backends, state, boxes, aspect: str, qualified_id: str | None,
                    max_chars: int) -> StructuredCaption:
    vocabulary_module = backends.vocabulary_module()
    return actions.apply_primitive(state, boxes, aspect, qualified_id, vocabulary_module, max_chars)


# -- reference clip --------------------------------------------------------------------------------

def inspect_reference(backends: Backends, path: str | Path, config: StudioConfig) -> dict[str, Any]:
    """Check and probe an upload: duration, shot list, the first shot as trim range, a preview frame."""
    path = actions.check_upload(path, config.max_upload_mb)
    video = backends.video()
    # One rule with the CLI: a clip longer than max_clip_seconds is refused, never silently cut.
    info = video.probe(path, max_seconds=config.max_clip_seconds)
    duration = float(getattr(info, "duration", 0.0) or 0.0)
    try:
        shots = list(video.detect_shots(path, info=info))
    except StudioError:
        shots = []
    choices = actions.shot_choices(shots)
    if shots:
        start, end = float(shots[0].start), float(shots[0].end)
    else:
        start, end = 0.0, duration
    frame = safe_frame(backends, path, start, Path(path).parent)
    summary = (f"**{Path(path).name}** · {duration:.2f} s · {len(shots)} shot(s) detected"
               + (f" · {info.width}×{info.height}" if getattr(info, "width", None) else ""))
    return dict(preview=str(path), shots=choices, shot=choices[0][1] if choices else None, start=round(start, 2),
                end=round(end, 2), frame=frame, summary=summary, duration=duration)


def safe_frame(backends: Backends, path: str | Path | None, at: float, out_dir: str | Path) -> str | None:
    """A still of the clip at `at` seconds, saved as PNG; None when it cannot be read."""
    if not path:
        return None
    try:
        image = backends.video().first_frame(path, float(at or 0.0), max_seconds=None)
    except StudioError:
        return None
    out = Path(out_dir) / f"frame-{Path(path).stem}-{float(at or 0):.2f}.png"
    image.save(out)
    return str(out)


def _clip(backends: Backends, config: StudioConfig, path, start, end, duration: float | None = None):
    path = actions.check_upload(path, config.max_upload_mb)
    t0, t1 = actions.check_trim(start, end, duration, config.max_clip_seconds)
    clip = backends.video().sample_clip(path, t0, t1, fps=CAPTION_FPS, max_seconds=config.max_clip_seconds)
    return clip, (str(path), t0, t1)


# -- streaming from a model thread -----------------------------------------------------------------

class Worker:
    """Runs `job(report)` in a daemon thread; iterating yields what the job reports, in the caller's thread.

    Gradio streams an event's updates from a generator, while the model calls back from inside
    `generate`, so the callbacks cross threads through a queue. After the loop `result` holds what
    the job returned; an exception it raised is re-raised in the caller's thread instead.
    """

    _DONE = object()

    def __init__(self, name: str, job) -> None:
        self._updates: queue.Queue = queue.Queue()
        self._job, self._error, self.result = job, None, None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.result = self._job(self._updates.put)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc
        finally:
            self._updates.put(self._DONE)

    def __iter__(self) -> Iterator[Any]:
        while (item := self._updates.get()) is not self._DONE:
            yield item
        self._thread.join()
        if self._error is not None:
            raise self._error


# -- caption ---------------------------------------------------------------------------------------

@dataclass
class CaptionEvent:
    done: bool
    message: str
    texts: list[str] = field(default_factory=list)
    fraction: float = 0.0
    caption: StructuredCaption | None = None


def caption_reference(backends: Backends, config: StudioConfig, path, start, end, duration, two_stage: bool,
                      base: StructuredCaption) -> Iterator[CaptionEvent]:
    """Caption all five aspects, streaming the text as it is written; earlier texts become undoable."""
    clip, (clip_path, t0, t1) = _clip(backends, config, path, start, end, duration)
    captioner = backends.captioner()
    streamed = {a: base.aspects[a].text for a in ASPECTS}
    worker = Worker("caption", lambda report: captioner.caption(
        clip, aspects=ASPECTS, two_stage=two_stage, on_text=lambda aspect, text: report((aspect, text))))
    started, seen = time.monotonic(), set()
    for aspect, text in worker:
        aspect = actions.aspect_name(aspect)
        streamed[aspect] = actions.clean_model_text(text)
        seen.add(aspect)
        yield CaptionEvent(False, f"Captioning {aspect}… ({time.monotonic() - started:.0f} s)",
                           [streamed[a] for a in ASPECTS], fraction=len(seen) / (len(ASPECTS) + 1))
    result = worker.result
    texts = result.texts() if isinstance(result, StructuredCaption) else dict(result)
    new = StructuredCaption()
    for aspect, text in texts.items():
        new.set_text(aspect, actions.clean_model_text(text)[: config.max_aspect_chars], config.max_aspect_chars)
    new.title = Path(clip_path).stem
    new.provenance.clip, new.provenance.start, new.provenance.end = Path(clip_path).name, t0, t1
    new.provenance.source = "captioner"
    new.provenance.models = {"captioner": getattr(captioner, "model_id", config.captioner)}
    caption = replace_caption(base.to_dict(), [base.aspects[a].text for a in ASPECTS], new, "captioned the clip",
                              "model", config.max_aspect_chars)
    warnings = "".join(f" ⚠ {w}" for w in getattr(clip, "warnings", []) or [])
    yield CaptionEvent(True, f"Captioned {Path(clip_path).name} {t0:.2f}–{t1:.2f} s in "
                             f"{time.monotonic() - started:.0f} s.{warnings}", caption=caption, fraction=1.0)


def _aspect_text(state, boxes, aspect: str, max_chars: int) -> tuple[StructuredCaption, str, str]:
    aspect = actions.aspect_name(aspect)
    caption = actions.apply_edits(state, boxes, max_chars)
    text = caption.aspects[aspect].text
    if not text.strip():
        raise InputError(f"the {aspect} text is empty; caption the clip or write it first", aspect)
    return caption, aspect, text


def score_text(backends: Backends, config: StudioConfig, path, start, end, aspect: str, text: str) -> float:
    aspect = actions.aspect_name(aspect)
    if not (text or "").strip():
        raise InputError(f"the {aspect} text is empty; nothing to score", aspect)
    clip, _ = _clip(backends, config, path, start, end)
    return float(backends.captioner().reward(clip, aspect, text))


def critique_text(backends: Backends, config: StudioConfig, path, start, end, aspect: str, text: str) -> str:
    aspect = actions.aspect_name(aspect)
    if not (text or "").strip():
        raise InputError(f"the {aspect} text is empty; nothing to critique", aspect)
    clip, _ = _clip(backends, config, path, start, end)
    return actions.clean_model_text(backends.captioner().critique(clip, aspect, text))


def revise_text(backends: Backends, config: StudioConfig, path, start, end, aspect: str, text: str,
                critique: str) -> str:
    aspect = actions.aspect_name(aspect)
    if not (text or "").strip():
        raise InputError(f"the {aspect} text is empty; nothing to revise", aspect)
    if not (critique or "").strip():
        raise InputError(f"write a critique for {aspect} (or press Suggest critique) before revising", aspect)
    clip, _ = _clip(backends, config, path, start, end)
    return actions.clean_model_text(backends.captioner().revise(clip, aspect, text, critique))[:config.max_aspect_chars]


def score_aspect(backends, config, path, start, end, state, boxes, aspect) -> StructuredCaption:
    caption, aspect, text = _aspect_text(state, boxes, aspect, config.max_aspect_chars)
    return actions.set_reward(caption, aspect, score_text(backends, config, path, start, end, aspect, text))


def suggest_critique(backends, config, path, start, end, state, boxes, aspect) -> str:
    caption, aspect, text = _aspect_text(state, boxes, aspect, config.max_aspect_chars)
    return critique_text(backends, config, path, start, end, aspect, text)


def revise_aspect(backends, config, path, start, end, state, boxes, aspect, critique) -> StructuredCaption:
    caption, aspect, text = _aspect_text(state, boxes, aspect, config.max_aspect_chars)
    revised = revise_text(backends, config, path, start, end, aspect, text, critique)
    caption.record_revision(aspect, critique.strip(), revised, source="model")
    return caption


# -- compose ---------------------------------------------------------------------------------------

def compose(backends: Backends, config: StudioConfig, caption: StructuredCaption, mode: str,
            max_words: int) -> tuple[str, dict[str, Any]]:
    merger = None
    if mode == "LLM merge":
        captioner = backends.captioner()

        # Tiny checkpoints write noise: cap the merge at the captioner's own (tiny) token budget so a
        # wiring check takes seconds, not the real merge's long budget.
        limit = getattr(captioner, "max_new_tokens", None) if config.tiny else None

        def llm_merge(caption: StructuredCaption) -> str:
            return actions.clean_model_text(captioner.merge(caption, max_words, max_new_tokens=limit))

        merger = llm_merge
    return actions.compose_prompt(caption.to_dict(), actions.texts_of(caption), mode, max_words,
                                  tokenizer=backends.tokenizer(), merger=merger,
                                  max_chars=config.max_aspect_chars)


# -- generation ------------------------------------------------------------------------------------

def gpu_warning(config: StudioConfig) -> str | None:
    """The page banner's text when `--device auto` cannot use the machine's GPU (None otherwise)."""
    if config.device != "auto":
        return None
    from ..gpu_check import warn_if_gpu_unusable

    return warn_if_gpu_unusable()


def generation_presets() -> list[tuple[str, str]]:
    """(label, preset name) pairs for the preset radio."""
    from ..generation import PRESETS

    return [(preset.label, name) for name, preset in PRESETS.items()]


def generation_defaults(config: StudioConfig, preset: str | None) -> dict[str, Any]:
    """Slider defaults and resolution choices for a preset (the tiny checkpoints' own in tiny mode)."""
    from ..generation import DEFAULT_PRESET, get_preset

    spec = get_preset(preset or DEFAULT_PRESET, tiny=config.tiny)
    return dict(seconds=round(spec.duration, 2), resolutions=list(spec.resolutions), resolution=spec.resolutions[0],
                steps=spec.steps, guidance=spec.guidance, shift=spec.shift,
                max_seconds=round((spec.max_frames - 1) / spec.fps, 2))


def zerogpu_duration(steps, seconds, width, height) -> int:
    frames = float(seconds or 5) * 24 + 1
    return generation_seconds(steps, frames, width, height)


@dataclass
class GenerationEvent:
    done: bool
    message: str
    progress: dict[str, str]
    seed: int | None = None
    result: Any = None


def _bar(label: str, step: int, total: int, state: str = "") -> str:
    share = 0.0 if not total else min(1.0, step / total)
    filled = int(round(share * 20))
    return f"{'▰' * filled}{'▱' * (20 - filled)} {label}: step {step}/{total}{(' · ' + state) if state else ''}"


def finetune_choices(config: StudioConfig) -> list[tuple[str, str]]:
    """The page's finetuned-slot menu: the weights the server started with ("" keeps them), then every
    LoRA, diffusers folder and transformer file in the models folder (`--models-dir`)."""
    from ..generation.finetune import list_finetunes

    started = Path(config.finetuned).name if config.finetuned else ("the tiny LoRA" if config.tiny else "none set")
    # Values are names inside the models folder: the page never shows or accepts server paths.
    return [(f"As started ({started})", "")] + [(c.label, Path(c.location).name)
                                               for c in list_finetunes(config.models_dir)]


def chosen_finetune(config: StudioConfig, choice: Any) -> StudioConfig:
    """The config with the finetuned slot the visitor picked. Only names on the models folder's
    current list are accepted, so a client can never point the server at a path of its own."""
    if choice in (None, ""):
        return config
    if not isinstance(choice, str) or choice not in {name for _, name in finetune_choices(config)[1:]}:
        raise InputError("is not one of the models in the models folder; refresh the list and pick again",
                         "finetuned")
    return config.replace(finetuned=str(Path(config.models_dir) / choice))


def require_finetuned(config: StudioConfig) -> None:
    if not config.finetuned and not config.tiny:
        raise ModelLoadError(
            "Generating side by side needs the CHAI-finetuned Wan2.2 weights, and none are set. Set "
            "--finetuned PATH (or CHAI_STUDIO_FINETUNED=PATH) to a diffusers folder, a transformer .safetensors "
            "or a LoRA; or start with --tiny for an offline wiring check. Captions and prompts are kept."
        )


def generate(backends: Backends, config: StudioConfig, prompt, preset, seconds, resolution, num_steps, guidance,
             shift, seed, randomize, negative, use_first_frame, reference, start, caption: StructuredCaption,
             cancel: threading.Event, mode: str | None = None, short_prompt: str | None = None,
             finetuned: str | None = None) -> Iterator[GenerationEvent]:
    """Run the comparison's two sides on the same seed and settings, yielding per-side progress.

    The progress dict keeps the page's two slots: "finetuned" is the left side (the finetuned model
    or the CHAI prompt), "baseline" the right one (the zero-shot model or the short prompt).
    `finetuned` is a choice from `finetune_choices` ("" or None: the weights the server started with)."""
    from ..generation.comparison import resolve_mode

    config = chosen_finetune(config, finetuned)
    prompt = actions.check_prompt(prompt)
    resolve_mode(mode, bool(config.finetuned) or config.tiny, short_prompt)  # before any model loads
    module = backends.generation_module()
    width, height = actions.parse_resolution(resolution)
    used_seed = actions.choose_seed(seed, bool(randomize))
    settings = module.GenerationSettings.from_user(
        module.get_preset(preset, tiny=config.tiny), duration=seconds, width=width, height=height, steps=num_steps,
        guidance=guidance, shift=shift, seed=used_seed, negative_prompt=(negative or "").strip() or None)
    image, image_source = None, None
    from ..generation import outputs

    # Checked before a model loads or a step runs: a full or read-only disk is found in a second.
    outputs.check_writable(config.output_dir, outputs.estimate_run_bytes(settings))
    if use_first_frame:
        path = actions.check_upload(reference, config.max_upload_mb)
        image = backends.video().first_frame(path, actions.number(start or 0.0, "start", 0),
                                             max_seconds=config.max_clip_seconds)
        image_source = f"{path.name} at {float(start or 0.0):.2f} s"
    generator = backends.generator(preset, config.finetuned)
    backends.remember_generator(preset, generator)
    mode, sides = generator.plan(prompt, mode, short_prompt)

    slots = dict(zip((side.key for side in sides), ("finetuned", "baseline")))
    names = {slots[side.key]: side.label for side in sides}
    progress = {k: _bar(names.get(k, "—"), 0, int(num_steps), "waiting" if k in names else "not used")
                for k in ("finetuned", "baseline")}
    yield GenerationEvent(False, f"Loading {preset} and starting {mode} mode (seed {used_seed})…", dict(progress),
                          used_seed)
    last_step = [sides[0].key, 0, int(settings.steps)]

    def job(report):
        def on_step(side, step, total, preview=None):
            last_step[:] = [side, step, total]
            report((side, step, total))

        try:
            return generator.generate(prompt, settings, caption=caption, image=image, cancel=cancel,
                                      out_dir=config.output_dir, image_source=image_source, mode=mode,
                                      short_prompt=short_prompt, on_step=on_step)
        except StudioError as exc:
            if cancel.is_set():  # the log records where a cancelled or abandoned run stopped
                log.warning("generation stopped after %s step %d/%d: %s", *last_step, exc)
            raise

    worker = Worker("generate", job)
    for side, step, total in worker:  # side is a comparison side's key
        slot = slots[side]
        progress[slot] = _bar(names[slot], step, total, "done" if step >= total else "denoising")
        yield GenerationEvent(False, f"Generating: {names[slot]} step {step}/{total}", dict(progress), used_seed)
    result = worker.result
    for key in names:
        progress[key] = _bar(names[key], int(num_steps), int(num_steps), "done")
    yield GenerationEvent(True, f"Done: {Path(result.run_dir).name} (seed {result.seed}).", progress,
                          result.seed, result)


# -- history ---------------------------------------------------------------------------------------

def history_items(output_dir: str | Path, only: Sequence[str] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery items (poster or video, label) and the matching run ids, newest first; with `only`,
    just those runs (a visitor's own, when history is per session)."""
    from ..generation import list_runs

    items, ids = [], []
    for run in list_runs(output_dir):
        if only is not None and run.run_id not in only:
            continue
        media = run.poster or run.side_by_side_video
        if media is not None:
            items.append((str(media), actions.run_label(run.run_dir, run.prompt, run.seed)))
            ids.append(run.run_id)
    return items, ids


@dataclass
class RunView:
    caption: StructuredCaption | None
    prompt: str
    settings: dict[str, Any]
    finetuned_video: str | None
    baseline_video: str | None
    downloads: list[str]
    message: str


def reload_run(output_dir: str | Path, run_id: Any) -> RunView:
    """What the page restores from a past run, named by its id: caption, prompt, settings, videos.
    Only a run folder inside `output_dir` can be read, and only files inside it are served."""
    from ..generation import run_records as outputs

    run = outputs.load_run_by_id(output_dir, run_id)
    s, files = run["settings"], run["files"]
    settings = dict(preset=run["preset"], seconds=round(s.duration, 2),
                    resolution=f"{s.width}x{s.height}", steps=s.steps, guidance=s.guidance, shift=s.shift,
                    seed=run["seed"], negative_prompt=s.negative_prompt)

    def present(key: str) -> str | None:
        return str(files[key]) if files.get(key) is not None else None

    downloads = [p for p in (present("side_by_side_video"), present("run_json")) if p]
    note = "" if run["caption"] is not None else " (this run kept no caption; the current caption is unchanged)"
    return RunView(run["caption"], run["prompt"], settings, present("finetuned_video"), present("baseline_video"),
                   downloads, f"Reloaded run **{run['run_dir'].name}**{note}.")
