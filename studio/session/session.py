"""`Session`: the studio's steps, one method each, over checked request objects.

The page and the command line both drive the studio through this class: the page turns its events
into requests and the returned events into component updates; the command line turns its flags
into the same requests and the events into stderr lines. Models come from `SharedModels`, loaded
on first use and shared by every session of a server.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from ..caption.structured import ASPECTS, StructuredCaption
from ..captioner.candidates import Candidate
from ..captioner.packs import PromptPack
from ..config import StudioConfig
from ..errors import InputError, StudioError
from ..tiny.locations import model_locations
from .events import CaptionText, Done, Event, Plan, SideStep, Status, Worker
from .limits import Limits
from .models import SharedModels
from .requests import AspectRequest, BestOfRequest, CaptionRequest, ClipRange, ComposeRequest, GenerateRequest
from .runs import RunHistory

log = logging.getLogger("studio.session")


@dataclass(frozen=True)
class Composition:
    prompt: str
    report: dict[str, Any]
    tokens: int
    exact_tokens: bool  # False: estimated (no tokenizer could be loaded)
    token_limit: int

    @property
    def over_limit(self) -> bool:
        return self.tokens > self.token_limit


@dataclass(frozen=True)
class ReferenceInfo:
    """What a probe of the reference clip found: its length, size and shots (numbered from 1)."""

    path: Path
    duration: float
    width: int
    height: int
    shots: list[tuple[float, float]]


class Session:
    """One visitor's (or one command's) way into the studio; cheap to create, models are shared."""

    def __init__(self, config: StudioConfig, models: SharedModels | None = None) -> None:
        self.config = config
        self.pack = PromptPack.for_config(config)  # checked here: a bad pack is refused before any model loads
        self.limits = Limits.from_config(config)
        self.locations = model_locations(config)  # the checkpoints' presets, names and notices
        self.models = models or SharedModels(config)
        self.runs = RunHistory(config)
        self._sampled: dict[tuple, Any] = {}

    # -- the reference clip ------------------------------------------------------------------------
    def clip(self, path: Any, start: Any = None, end: Any = None, shot: Any = None) -> ClipRange:
        return ClipRange.from_user(path, start, end, shot, self.limits)

    def inspect(self, path: Any) -> ReferenceInfo:
        """Check and probe an upload. A clip longer than max_clip_seconds is refused, never cut."""
        from ..video import detect_shots, probe

        clip = self.clip(path)
        info = probe(clip.path, self.config.max_clip_seconds)
        try:
            shots = [(float(s.start), float(s.end)) for s in detect_shots(clip.path, info=info)]
        except StudioError as exc:
            log.info("no shot list for %s: %s", clip.path.name, exc)
            shots = []
        return ReferenceInfo(clip.path, float(info.duration), int(info.width), int(info.height), shots)

    def frame(self, path: Path, at: float) -> Any:
        """The clip's frame at `at` seconds (a PIL image)."""
        from ..video import first_frame

        return first_frame(path, float(at), max_seconds=self.config.max_clip_seconds)

    def sample(self, clip: ClipRange, fps: float | None = None) -> Any:
        """The clip's frames as the captioner reads them; the last few ranges are kept, so scoring,
        critiquing and revising one shot decode it once."""
        from ..captioner import load_clip

        fps = fps or self.limits.caption_fps
        stat = clip.path.stat()
        key = (str(clip.path), stat.st_size, stat.st_mtime_ns, clip.start, clip.end, clip.shot, fps)
        if key not in self._sampled:
            with clip.numbered_from_one():
                sampled = load_clip(self.config, clip.path, clip.start, clip.end, clip.shot_index, fps=fps,
                                    sampling=self.pack.sampling)
            while len(self._sampled) >= 4:
                self._sampled.pop(next(iter(self._sampled)))
            self._sampled[key] = sampled
        return self._sampled[key]

    # -- captioning --------------------------------------------------------------------------------
    def caption(self, request: CaptionRequest, compare: bool = False) -> Iterator[Event]:
        """Caption the clip, streaming each aspect's text; ends with Done(StructuredCaption).
        `compare` uses the second captioner of the A/B view instead of the CHAI one."""
        from ..captioner import caption_clip

        started = time.monotonic()
        clip = request.clip
        # Sampled before any model loads: a shot past the last or a bad range costs no model load.
        sampled = self.sample(clip, request.fps)
        if compare:
            yield Status("Loading the second captioner…")
            captioner = self.models.compare_captioner()
        else:
            if not self.models.captioner_loaded():
                yield Status("Loading the captioner… (the first caption of a server takes longer)")
            captioner = self.models.captioner()
        log.info("caption %s (%s) with %s", clip.path.name, ", ".join(request.aspects), captioner.model_id)
        warnings: list[str] = []

        def job(report):
            def warn(message: str) -> None:
                warnings.append(message)
                report(Status(f"⚠ {message}"))

            return caption_clip(self.config, clip.path, clip.start, clip.end, clip.shot_index,
                                aspects=request.aspects, two_stage=request.two_stage, captioner=captioner,
                                fps=request.fps, max_new_tokens=request.max_new_tokens, on_warning=warn,
                                on_text=lambda aspect, text: report((aspect, text)), clip=sampled)

        streamed: dict[str, str] = {}
        worker = Worker("caption", job)
        for item in worker:
            if isinstance(item, Status):  # a range warning (a cut inside it), said as soon as it is known
                yield item
                continue
            aspect, text = item
            streamed[aspect] = clean_model_text(text)
            yield CaptionText(dict(streamed), f"Captioning {aspect}… ({time.monotonic() - started:.0f} s)")
        caption: StructuredCaption = worker.result
        for aspect in ASPECTS:
            caption.aspects[aspect].text = clean_model_text(caption.aspects[aspect].text)
        caption.provenance.clip = clip.path.name
        caption.title = caption.title or clip.path.stem  # what an export of it is called
        note = "".join(f" ⚠ {w}" for w in warnings)
        yield Done(caption, f"Captioned {clip.path.name} {caption.provenance.start:.2f}–{caption.provenance.end:.2f} s "
                            f"in {time.monotonic() - started:.0f} s.{note}")

    def critique(self, request: AspectRequest) -> str:
        return clean_model_text(self.models.captioner().critique(self.sample(request.clip), request.aspect,
                                                                  request.text, max_new_tokens=request.max_new_tokens))

    def needs_change(self, critique: str) -> bool:
        """False when `critique` is the prompt pack's no-change sentence (CHAI's "The caption is
        accurate and requires no edits, ..."): the caption is then kept, not revised."""
        return not self.pack.says_no_change(critique)

    def revise(self, request: AspectRequest, caption: StructuredCaption | None = None) -> str:
        """The aspect rewritten to answer the request's critique; with `caption`, the revision is
        also recorded in that caption's history (so it can be undone) and becomes its text. A
        no-change critique returns the text as it is, without a model call."""
        if not request.critique:
            raise InputError(f"write a critique for {request.aspect} (or press Suggest critique) before revising",
                             request.aspect)
        if not self.needs_change(request.critique):
            return request.text
        revised = self.models.captioner().revise(self.sample(request.clip), request.aspect, request.text,
                                                 request.critique, max_new_tokens=request.max_new_tokens)
        revised = clean_model_text(revised)[: self.limits.max_aspect_chars]
        if caption is not None and revised != request.text:
            caption.record_revision(request.aspect, request.critique, revised, source="model")
        return revised

    def score(self, request: AspectRequest) -> float:
        return float(self.models.captioner().reward(self.sample(request.clip), request.aspect, request.text))

    def score_all(self, clip: ClipRange, caption: StructuredCaption) -> dict[str, float]:
        """The reward of every aspect that has text (one clip decode, one model)."""
        texts = {a: caption.aspects[a].text for a in ASPECTS if caption.aspects[a].text.strip()}
        if not texts:
            raise InputError("every aspect is empty; caption the clip or write an aspect before scoring", "caption")
        captioner, sampled = self.models.captioner(), self.sample(clip)
        return {aspect: float(captioner.reward(sampled, aspect, text)) for aspect, text in texts.items()}

    def best_of_n(self, request: BestOfRequest) -> list[Candidate]:
        """`n` sampled captions of one aspect and the current text (when there is one, marked
        `current`), scored in one reward batch and ranked best first: the first is the one to keep,
        which is the current text unless a candidate beats it."""
        captioner = self.models.captioner()
        ranked = captioner.candidates(self.sample(request.clip), request.aspect, n=request.n,
                                      current=request.current or None)
        return [replace(c, text=c.text if c.current else clean_model_text(c.text)) for c in ranked]

    # -- the prompt --------------------------------------------------------------------------------
    def count_tokens(self, prompt: str, load: bool = True) -> tuple[int, bool]:
        """(umT5 tokens of `prompt`, exact?): estimated when no tokenizer can be loaded, or (with
        `load` False, as the meter does on every keystroke) when none is loaded yet."""
        from ..compose.text import estimate_tokens

        tokenizer = self.models.tokenizer() if load else self.models.loaded_tokenizer()
        if tokenizer is None:
            return estimate_tokens(prompt), False
        return len(tokenizer(prompt)["input_ids"]), True

    def compose(self, request: ComposeRequest) -> Composition:
        from ..compose import ComposeOptions, compose
        from ..compose.composer import describe

        options = ComposeOptions(max_words=request.max_words, camera_first=request.mode == "Camera first")
        result = compose(request.caption, options, tokenizer=self.models.tokenizer())
        prompt, report = result.prompt, result.report
        if request.mode == "LLM merge":
            prompt = clean_model_text(self.models.captioner().merge(request.caption, request.max_words))
        tokens, exact = self.count_tokens(prompt)
        if request.mode == "LLM merge":
            # The extractive draft's report would describe a text nobody sees: the report and the
            # meter both speak of the merged prompt, with this one count.
            report = describe(prompt, request.caption, options, tokens, not exact)
        return Composition(prompt, {**report.to_dict(), "mode": request.mode}, tokens, exact, self.limits.token_limit)

    def fit_to_limit(self, request: ComposeRequest) -> Composition:
        """The longest extractive prompt (largest word budget, in steps of 10) that fits the text
        encoder's token limit: the composer's budget is in words, the encoder's in tokens."""
        low, high = self.limits.words
        best = None
        for words in range(min(request.max_words, high), low - 1, -10):
            composed = self.compose(ComposeRequest(request.caption, "Extractive" if request.mode == "LLM merge"
                                                   else request.mode, words))
            if not composed.over_limit:
                best = composed
                break
        if best is None:
            raise InputError(f"even {low} words exceed {self.limits.token_limit} tokens; shorten the aspects",
                             "prompt")
        return best

    # -- generation --------------------------------------------------------------------------------
    def generate(self, request: GenerateRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Render the comparison's sides on one seed; SideStep events carry progress, ETA and latent
        previews; ends with Done(RunResult). A prompt over the token limit is refused, never cut."""
        from ..generation.comparison import plan_sides, resolve_mode
        from ..generation.rendering import run_order
        from .finetunes import finetune_location

        config = self.config
        finetuned = finetune_location(config, request.finetuned)
        if finetuned:
            config = config.replace(finetuned=finetuned)
        if request.speed_adapter is not None:
            config = config.replace(speed_adapter=request.speed_adapter)
        # Planned once, here, before the long load: the generator is handed the mode and its sides.
        has_finetune = bool(self.locations.finetuned(request.preset, build=False).strip())
        mode = resolve_mode(request.mode, has_finetune, request.short_prompt)
        sides = plan_sides(mode, request.prompt, request.short_prompt, has_finetune)
        if request.settings.step_cache.startswith("magcache"):
            from ..generation.calibration import check_calibrated

            models = list(dict.fromkeys(side.model for side in sides))
            check_calibrated(config, request.preset, models, request.settings.steps)  # before the long load
        image, image_source, reference = self._start_image(request)
        yield Status(f"Loading {request.preset}…")
        generator = self.models.generator(request.preset, config.finetuned or None, config.speed_adapter)
        tokens, _ = self.count_tokens(request.prompt)
        if tokens > self.limits.token_limit:
            raise InputError(f"is {tokens} tokens; the text encoder reads {self.limits.token_limit}, so the end "
                             "would be cut. Shorten it, or fit it (the page's 'Fit to the limit', "
                             "`python -m studio compose --fit`)", "prompt")
        labels = {side.key: side.label for side in sides}
        settings = request.settings
        if image is not None and request.size_follows_image:
            loaded = generator.models
            settings = settings.following_image(image.size, loaded.size_multiple,
                                                min(loaded.size_limits[0], loaded.preset.max_side))
        together = generator.renderer.runs_concurrently(sides, image)
        yield Plan(mode, tuple(labels.items()), () if together else tuple(s.key for s in run_order(sides)),
                   settings.seed)
        total_steps, started = settings.steps * len(sides), time.monotonic()
        done_steps = [0]
        log.info("generate %s mode, preset %s, seed %d, %d steps", mode, request.preset, settings.seed, settings.steps)

        def job(report):
            def on_step(side, step, total, preview=None):
                done_steps[0] += 1
                elapsed = time.monotonic() - started
                eta = elapsed / done_steps[0] * (total_steps - done_steps[0])
                report(SideStep(side, labels[side], step, total, eta, preview))

            try:
                return generator.generate(request.prompt, settings, caption=request.caption, image=image,
                                          cancel=cancel, out_dir=config.output_dir, image_source=image_source,
                                          mode=mode, sides=sides, short_prompt=request.short_prompt,
                                          on_step=on_step, reference=reference, from_run=request.from_run)
            except StudioError as exc:
                if cancel is not None and cancel.is_set():
                    log.warning("generation stopped after %d of %d steps: %s", done_steps[0], total_steps, exc)
                raise

        worker = Worker("generate", job)
        yield from worker
        result = worker.result
        if result.partial:
            kept = ", ".join(labels[side.key] for side in result.sides)
            yield Done(result, f"Cancelled: kept the finished {kept} side as partial run {Path(result.run_dir).name} "
                               f"(seed {result.seed}); {', '.join(labels[k] for k in result.missing_sides)} "
                               "was not rendered.")
            return
        yield Done(result, f"Done: run {Path(result.run_dir).name} (seed {result.seed}) in "
                           f"{time.monotonic() - started:.0f} s.")

    def _start_image(self, request: GenerateRequest):
        """(image, where it came from, the reference record) for an image-start run."""
        start = request.start_image
        if start is None:
            return None, None, request.reference
        from PIL import Image

        if isinstance(start, Path):  # a reloaded run's own start image, or a script's image file
            with Image.open(start) as image:
                source = request.image_source or f"{start.parent.name}/{start.name}"
                return image.convert("RGB"), source, request.reference
        at = start.start or 0.0
        image = self.frame(start.path, at)
        reference = {"clip": str(start.path), "start": at, "end": start.end}
        return image, f"{start.path.name} at {at:.2f} s", reference

    # -- the judge ---------------------------------------------------------------------------------
    def judge(self, run_id: Any) -> dict[str, Any]:
        """Score a finished run's sides with the captioner (writes the run's judge.json)."""
        from ..research.judge import check_run_dir, judge_run

        run_dir = self.runs.folder(run_id)
        record = check_run_dir(run_dir)
        return judge_run(run_dir, self.models.captioner(), record)


def clean_model_text(text: Any) -> str:
    """Model output made safe for a text box: control characters (a random-weight model emits them;
    a real one may on a bad decode) are dropped, so they never block the user's next step."""
    import re

    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]", "", str(text or "")).strip()
