"""What each step of a session is asked to do, checked once.

A request object is built with `from_user` from whatever the page or a script sent (numbers as
text, empty boxes, None) and raises `InputError` naming the field for anything it cannot use;
once built it holds clean, typed values, so the steps that run models never re-check them. The
page, the HTTP API and the command line build the same objects, so a value is refused in the
same words everywhere.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..caption.structured import ASPECTS, StructuredCaption, aspect_name
from ..errors import InputError
from ..generation.comparison import MODES
from ..generation.settings import GenerationSettings
from .. import values
from .limits import Limits

COMPOSE_MODES = ("Extractive", "Camera first", "LLM merge")
COMPARISON_CHOICES = ("auto", *MODES)
FOLLOW_IMAGE = "auto"  # the resolution that follows the start image (the preset's size without one)


@dataclass(frozen=True)
class ClipRange:
    """A reference clip and the part of it to use: a start/end range, or a shot numbered from 1
    (as `python -m studio shots` and the page list them); neither means the whole clip."""

    path: Path
    start: float | None = None
    end: float | None = None
    shot: int | None = None

    @classmethod
    def from_user(cls, path: Any, start: Any = None, end: Any = None, shot: Any = None,
                  limits: Limits | None = None) -> ClipRange:
        types = limits.video_types_text if limits else "a video file"
        clip = values.file_path(path, "reference", f"a reference clip ({types})")
        if limits is not None:
            limits.check_video_name(clip.name)
            size_mb = clip.stat().st_size / 2**20
            if size_mb > limits.max_upload_mb:
                raise InputError(f"{clip.name} is {size_mb:.0f} MB; the limit is {limits.max_upload_mb} MB "
                                 "(set --max-upload-mb to change it)", "reference")
        lo = values.optional_number(start, "start", 0)
        hi = values.optional_number(end, "end", 0)
        if hi == 0:
            hi = None  # the page's End box at 0 means "to the end of the clip"
        if lo is not None and hi is not None and hi <= lo:
            raise InputError(f"must be after start ({lo:g} s), got {hi:g}", "end")
        number = None
        if shot not in (None, ""):
            if values.number(shot, "shot") < 1:
                raise InputError(f"shots are numbered from 1, as `python -m studio shots` and the page list them; "
                                 f"got {values.number(shot, 'shot'):g}", "shot")
            number = values.whole(shot, "shot", 1, 10_000)
        if number is not None and (lo or hi is not None):
            raise InputError("give either a shot or a start/end range, not both", "shot")
        return cls(clip, lo, hi, number)

    @property
    def shot_index(self) -> int | None:
        """The shot as the video library indexes it (from 0)."""
        return None if self.shot is None else self.shot - 1

    @contextlib.contextmanager
    def numbered_from_one(self) -> Iterator[None]:
        """The library counts shots from 0; its "no such shot" error is said again in the numbering
        the user typed (the one place, with `shot_index`, where the two numberings meet)."""
        try:
            yield
        except InputError as exc:
            if exc.code != "no-such-shot" or self.shot is None:
                raise
            count = exc.details["shot_count"]
            raise InputError(f"there is no shot {self.shot}; the clip has {count} shot(s), numbered 1 to {count}",
                             "shot", "no-such-shot", shot_count=count) from exc


@dataclass(frozen=True)
class CaptionRequest:
    clip: ClipRange
    aspects: tuple[str, ...] = ASPECTS
    two_stage: bool = True
    fps: float | None = None  # None: the prompt pack's rate
    max_new_tokens: int | None = None

    @classmethod
    def from_user(cls, clip: ClipRange, limits: Limits, aspects: Sequence[Any] | None = None,
                  two_stage: Any = True, fps: Any = None, max_new_tokens: Any = None) -> CaptionRequest:
        """Two-stage by default: the order CHAI captioned in, Motion given the Subject caption and
        Spatial given Subject and Scene, which is what the captioner was trained on."""
        names = tuple(dict.fromkeys(aspect_name(a) for a in aspects)) if aspects else ASPECTS
        rate = limits.caption_fps if fps is None else values.number(fps, "fps", 0.1, 30)
        return cls(clip, names, bool(two_stage), rate, _max_new_tokens(max_new_tokens))


@dataclass(frozen=True)
class AspectRequest:
    """One aspect's text for the CHAI loop: score it, critique it, or revise it with `critique`."""

    clip: ClipRange
    aspect: str
    text: str
    critique: str = ""
    max_new_tokens: int | None = None  # cap on the critique's or revision's tokens (None: the model's own)

    @classmethod
    def from_user(cls, clip: ClipRange, limits: Limits, aspect: Any, text: Any, critique: Any = None,
                  verb: str = "score", needs_critique: bool = False, max_new_tokens: Any = None) -> AspectRequest:
        name = aspect_name(aspect)
        body = values.text(text, name, limits.max_aspect_chars).strip()
        if not body:
            raise InputError(f"the {name} text is empty; caption the clip or write it before you {verb} it", name)
        note = values.text(critique, f"{name} critique", limits.max_critique_chars).strip()
        if needs_critique and not note:
            raise InputError(f"write a critique for {name} (or press Suggest critique) before revising", name)
        return cls(clip, name, body, note, _max_new_tokens(max_new_tokens))


@dataclass(frozen=True)
class BestOfRequest:
    """`n` sampled texts for one aspect; `current` (the aspect's text now, "" when empty) is scored
    among them and kept unless one beats it."""

    clip: ClipRange
    aspect: str
    n: int
    current: str = ""

    @classmethod
    def from_user(cls, clip: ClipRange, limits: Limits, aspect: Any, n: Any, current: Any = None) -> BestOfRequest:
        name = aspect_name(aspect)
        return cls(clip, name, values.whole(n, "n", *limits.best_of),
                   values.text(current, name, limits.max_aspect_chars).strip())


@dataclass(frozen=True)
class ComposeRequest:
    caption: StructuredCaption
    mode: str = "Extractive"
    max_words: int = 260

    @classmethod
    def from_user(cls, caption: StructuredCaption, limits: Limits, mode: Any = "Extractive",
                  max_words: Any = None) -> ComposeRequest:
        if caption.is_empty():
            raise InputError("every aspect is empty; caption the clip, load a preset or type at least one aspect "
                             "before composing", "compose")
        if mode not in COMPOSE_MODES:
            raise InputError(f"unknown composer mode; choose one of {', '.join(COMPOSE_MODES)}", "mode")
        words = limits.default_words if max_words in (None, "") else values.whole(max_words, "max_words",
                                                                                  *limits.words)
        return cls(caption, mode, words)


@dataclass(frozen=True)
class GenerateRequest:
    """One comparison run: the prompt, the preset and its checked settings, the comparison mode,
    and optionally a start image: the reference clip's frame at the range's start (a ClipRange), or
    an image file (a Path: a reloaded run's own, or a script's `--image`)."""

    prompt: str
    preset: str
    settings: GenerationSettings
    mode: str | None = None
    short_prompt: str | None = None
    finetuned: str = ""  # a name from the models folder ("": the weights the server started with)
    start_image: ClipRange | Path | None = None
    caption: StructuredCaption | None = None
    image_source: str | None = None  # what the run record says the start image came from (default: its file)
    reference: dict[str, Any] | None = None  # a reproduced run's recorded reference clip and range
    # No size was asked for and the run starts from an image: the size follows the image's aspect
    # at the preset's pixel area (chosen once the image is read), instead of cropping it hard.
    size_follows_image: bool = False
    from_run: str | None = None  # the run this one renders again at another profile (a draft's final)
    # The speed LoRA's location: None = the server's own setting, "" = none for this run.
    speed_adapter: str | None = None

    @classmethod
    def from_user(cls, limits: Limits, prompt: Any, preset: Any, *, locations: Any = None,
                  seconds: Any = None,
                  resolution: Any = None, width: Any = None, height: Any = None, steps: Any = None, guidance: Any = None,
                  shift: Any = None, seed: Any = -1, negative_prompt: Any = None, mode: Any = "auto",
                  short_prompt: Any = None, finetuned: Any = "", start_image: ClipRange | None = None,
                  caption: StructuredCaption | None = None, preview_every: int = 0, frames: Any = None,
                  guidance_2: Any = None, image: Any = None, profile: Any = None,
                  step_cache: Any = None, reference: ClipRange | None = None,
                  speed_adapter: Any = None) -> GenerateRequest:
        """`seconds` and `frames` are alternatives, as are `start_image` (a frame of the reference)
        and `image` (an image file's path). `profile` (draft, preview, final) fills the size,
        length, steps and step cache not given; `step_cache` is `NAME[:key=value,...]` or none.
        `reference`: the clip and range the caption describes, for a run that does not start from
        it (a start frame is its own reference), recorded so the judge has its ceiling and a
        reload brings the clip back. `speed_adapter` (a location, "" = none; None = the server's
        setting, its sampling not applied) is checked here, and its sidecar's steps, guidance and
        shift fill the values not given, ahead of the profile's. `locations` (the configuration's
        `ModelLocations`) sizes the preset for its checkpoints; None: the real models' sizes."""
        from ..generation.presets import PRESETS, get_preset
        from ..generation.speed_adapter import describe_speed_adapter

        text = values.text(prompt, "prompt", limits.max_prompt_chars).strip()
        if not text:
            raise InputError("the prompt is empty; compose one from the caption or type it", "prompt")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise InputError(f"unknown model preset; choose one of {', '.join(PRESETS)}", "preset")
        if mode in (None, ""):
            mode = "auto"
        if mode not in COMPARISON_CHOICES:
            raise InputError(f"unknown comparison mode; choose one of {', '.join(COMPARISON_CHOICES)}", "mode")
        short = values.text(short_prompt, "short_prompt", limits.max_prompt_chars).strip() or None
        if mode == "prompt" and short is None:
            raise InputError("prompt mode compares the CHAI prompt with a short plain prompt; write the short "
                             "prompt first", "short_prompt")
        follow = resolution == FOLLOW_IMAGE or (resolution in (None, "") and width in (None, "")
                                                and height in (None, ""))
        if resolution not in (None, "", FOLLOW_IMAGE):
            width, height = parse_resolution(resolution)
        spec = locations.preset(preset) if locations else get_preset(preset)  # sized for these checkpoints
        if start_image is not None and image not in (None, ""):
            raise InputError("give either the reference frame or an image file as the start, not both", "image")
        for given, field in ((start_image, "start_image"), (image, "image")):
            if given not in (None, "") and not spec.supports_image:
                raise InputError(f"{spec.label} generates from text only; use the ti2v-5b preset to start from "
                                 "an image", field)
        image_file = None if image in (None, "") else start_image_file(image)
        negative = values.text(negative_prompt, "negative_prompt", limits.max_negative_chars).strip() or None
        speed = None if speed_adapter is None else values.text(speed_adapter, "speed_adapter").strip()
        adapter = describe_speed_adapter(speed) if speed else None
        settings = GenerationSettings.from_user(
            spec, duration=seconds, frames=frames, width=width, height=height, steps=steps, guidance=guidance,
            guidance_2=guidance_2, shift=shift, seed=-1 if seed in (None, "") else seed, negative_prompt=negative,
            preview_every=preview_every, profile=profile, step_cache=None if step_cache in (None, "") else step_cache,
            adapter_defaults=adapter.defaults() if adapter else None)
        start = image_file or start_image
        return cls(text, preset, settings, None if mode == "auto" else mode, short,
                   values.text(finetuned, "finetuned"), start, caption,
                   str(image) if image_file else None,
                   reference=None if reference is None else {"clip": str(reference.path), "start": reference.start,
                                                             "end": reference.end},
                   size_follows_image=follow and start is not None, speed_adapter=speed)


def parse_resolution(value: Any) -> tuple[int, int]:
    """'1280x704' -> (1280, 704); the sizes themselves are checked by GenerationSettings."""
    # [0-9], not \d: \d and int() would read full-width and other scripts' digits as a size.
    match = re.fullmatch(r"\s*([0-9]{1,5})\s*[x×*]\s*([0-9]{1,5})\s*", value if isinstance(value, str) else "")
    if not match:
        raise InputError(f"expected WIDTHxHEIGHT such as 1280x704 (digits 0-9), got "
                         f"{values.one_line(str(value), 30)!r}", "resolution", "not-a-size")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class RunRequest:
    """A past run named by its id (its folder's name under the output folder)."""

    run_id: str

    @classmethod
    def from_user(cls, run_id: Any) -> RunRequest:
        name = values.text(run_id, "run").strip()
        if not name:
            raise InputError("name a run (its folder's name in the history)", "run")
        return cls(name)


def caption_from_user(value: Any, limits: Limits) -> StructuredCaption:
    """A caption sent as JSON (our schema, a CHAI record or {aspect: text}); None is empty."""
    if value is None:
        return StructuredCaption()
    if isinstance(value, StructuredCaption):
        return value.copy()
    if not isinstance(value, Mapping):
        raise InputError(f"expected the caption as a JSON object, got {values.kind_of(value)}", "caption")
    return StructuredCaption.from_dict(dict(value), limits.max_aspect_chars)


def _max_new_tokens(value: Any) -> int | None:
    return None if value in (None, "") else values.whole(value, "max_new_tokens", 1, 8192)


def start_image_file(value: Any) -> Path:
    """A start image file that PIL can read (checked now, so a bad file costs no model load)."""
    from PIL import Image, UnidentifiedImageError

    path = values.file_path(value, "image", "a start image (PNG or JPEG)")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise InputError(f"{path.name} is not an image (PNG or JPEG expected)", "image") from None
    return path


def request_again(run: dict[str, Any], run_dir: Path, profile: str | None = None, step_cache: str | None = None,
                  adapter_defaults: Mapping[str, Any] | None = None) -> GenerateRequest:
    """A recorded run as a request: its prompt, caption, settings, mode and start image. With
    `profile` (or `step_cache`), the same prompt, seed, guidance and start image at that profile:
    a kept draft rendered final (its frames are then new ones); `adapter_defaults`, a speed
    adapter's own sampling, then come ahead of the profile's. Either way `from_run` links the new
    run to this one in the history."""
    from ..generation.presets import get_preset

    record = run["record"]
    image_record = record.get("image") or {}
    image = start_image_file(Path(run_dir) / image_record["file"]) if image_record.get("file") else None
    comparison = record.get("comparison") or {"mode": "finetuned"}
    # The recorded settings were checked when the run was made; the prompt is still counted by
    # Session.generate, so a run from an older studio is never silently cut.
    recorded = settings = run["settings"]
    if profile is not None or step_cache is not None:
        settings = GenerationSettings.from_user(
            get_preset(run["preset"] or "ti2v-5b", tiny=bool(record.get("preset_tiny"))), seed=recorded.seed,
            guidance=recorded.guidance, guidance_2=recorded.guidance_2, shift=recorded.shift,
            negative_prompt=recorded.negative_prompt, fps=recorded.fps, profile=profile or recorded.profile,
            step_cache=step_cache, adapter_defaults=adapter_defaults)
        if profile is None:  # only the cache changes: the size, length and steps stay the recorded ones
            settings = settings.replace(width=recorded.width, height=recorded.height,
                                        num_frames=recorded.num_frames, steps=recorded.steps)
    return GenerateRequest(run["prompt"], run["preset"] or "ti2v-5b", settings, comparison.get("mode"),
                           comparison.get("short_prompt"), start_image=image, caption=run["caption"],
                           image_source=image_record.get("source"), reference=record.get("reference"),
                           size_follows_image=image is not None and settings is not recorded,
                           from_run=Path(run_dir).name)
