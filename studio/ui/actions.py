"""What the page does, as plain functions that know nothing about Gradio.

The Gradio layer (`studio/ui/page.py`) only moves values between components and these functions.
Everything that decides something lives here and is unit-tested without a browser: the caption
state (edits, primitives, undo, import/export, presets), the composer call and its meter, upload
and trim checks, generation settings and the run history.

The caption state travels between events as a plain dict (`StructuredCaption.to_dict()`), so a
session's work is a JSON value that can be saved, restored and compared. Every function that
changes the caption returns a new dict and leaves the old one untouched: when a step fails with a
`StudioError` the page keeps what it had, so no earlier work is lost.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..caption.structured import ASPECTS, StructuredCaption
from ..errors import InputError, StudioError
from ..video.intake import VIDEO_EXTENSIONS

VIDEO_TYPES_TEXT = ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS)
COMPOSE_MODES = ("Extractive", "Camera first", "LLM merge")
TOKEN_LIMIT = 512  # Wan's umT5 reads at most 512 tokens
MANUAL_EDIT = "manual edit"
MAX_SEED = 2**31 - 1

ASPECT_HINTS = {
    "Subject": "Who or what the shot is about: appearance, clothing, expression.",
    "Scene": "Where and when: setting, lighting, weather, time of day, mood.",
    "Motion": "What moves and how, in time order.",
    "Spatial": "Shot size, framing and where things sit in the frame.",
    "Camera": "Camera height, angle, focus and movement over the shot.",
}


# -- caption state --------------------------------------------------------------------------------

def empty_state() -> dict[str, Any]:
    return StructuredCaption().to_dict()


def to_caption(state: Mapping[str, Any] | StructuredCaption | None) -> StructuredCaption:
    """The caption a state dict describes (a fresh copy; the dict is never mutated)."""
    if state is None:
        return StructuredCaption()
    if isinstance(state, StructuredCaption):
        return state.copy()
    if not isinstance(state, Mapping):
        raise InputError(f"expected the caption as a JSON object, got {kind_of(state)}", "caption")
    return StructuredCaption.from_dict(dict(state))


def texts_of(state: Mapping[str, Any] | StructuredCaption | None) -> list[str]:
    """The five aspect texts, in ASPECTS order (what the five text boxes show)."""
    caption = to_caption(state)
    return [caption.aspects[a].text for a in ASPECTS]


def apply_edits(state: Mapping[str, Any] | None, texts: Sequence[str | None],
                max_chars: int = 6000) -> StructuredCaption:
    """Bring the caption in line with what the boxes show; each changed box is a revision.

    Typing is not recorded keystroke by keystroke: an edit becomes one revision the next time an
    action runs, which is also what makes a manual edit undoable.
    """
    if len(texts) != len(ASPECTS):
        raise InputError(f"expected {len(ASPECTS)} aspect texts, got {len(texts)}", "texts")
    caption = to_caption(state)
    for aspect, text in zip(ASPECTS, texts):
        text = "" if text is None else text
        if not isinstance(text, str):
            raise InputError(f"expected text, got {type(text).__name__}", f"aspects.{aspect}.text")
        if len(text) > max_chars:
            raise InputError(
                f"text is {len(text)} characters; the limit is {max_chars}. Shorten it before going on.",
                f"aspects.{aspect}.text",
            )
        if text.strip() != caption.aspects[aspect].text:
            caption.record_revision(aspect, MANUAL_EDIT, text, source="user")
    return caption


def aspect_name(aspect: str) -> str:
    for name in ASPECTS:
        if isinstance(aspect, str) and aspect.strip().lower() == name.lower():
            return name
    shown = repr(_one_line(aspect, 30)) if isinstance(aspect, str) else kind_of(aspect)
    raise InputError(f"unknown aspect {shown}; the aspects are {', '.join(ASPECTS)}", "aspect")


def undo(state: Mapping[str, Any] | None, texts: Sequence[str], aspect: str,
         max_chars: int = 6000) -> tuple[StructuredCaption, str]:
    """Undo the aspect's last revision (an unsaved edit in the box counts as the last one)."""
    aspect = aspect_name(aspect)
    caption = apply_edits(state, texts, max_chars)
    entry = caption.aspects[aspect]
    if not entry.history:
        return caption, f"Nothing to undo for {aspect}."
    last = entry.history[-1]
    caption.undo(aspect)
    return caption, f"{aspect}: undid the {last.source} revision ({last.critique or 'no note'})."


def history_markdown(state: Mapping[str, Any] | StructuredCaption | None, aspect: str, limit: int = 8) -> str:
    """The aspect's revision history, newest first, as a short readable list."""
    caption = to_caption(state)
    history = caption.aspects[aspect_name(aspect)].history
    if not history:
        return "_No revisions yet._"
    lines = []
    for n, rev in reversed(list(enumerate(history[-limit:], start=max(1, len(history) - limit + 1)))):
        note = _one_line(rev.critique, 90) or "no note"
        lines.append(f"- **#{n} {rev.source}** — {note}  \n  _before:_ {_one_line(rev.before, 70) or '(empty)'}")
    more = len(history) - limit
    if more > 0:
        lines.append(f"_…and {more} older revision(s)._")
    return "\n".join(lines)


def reward_badge(state: Mapping[str, Any] | StructuredCaption | None, aspect: str) -> str:
    """A one-line badge: the reward as a percentage, marked stale once the text changed."""
    entry = to_caption(state).aspects[aspect_name(aspect)]
    if entry.reward is None:
        return "Reward: not scored"
    stale = "" if entry.reward_is_current else " (stale: text changed since scoring)"
    return f"Reward: {entry.reward * 100:.0f}% yes{stale}"


def set_reward(caption: StructuredCaption, aspect: str, reward: float) -> StructuredCaption:
    entry = caption.aspects[aspect_name(aspect)]
    entry.reward = float(reward)
    entry.reward_text = entry.text
    return caption


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def clean_model_text(text: Any) -> str:
    """Model output made safe for a text box: control characters (a random-weight model emits
    them; a real one may on a bad decode) are dropped, so they never block the user's next step."""
    return _CONTROL.sub("", str(text or "")).strip()


def _one_line(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- primitives -----------------------------------------------------------------------------------

def primitive_choices(vocabulary: Any, aspect: str) -> list[tuple[str, str]]:
    """(label, qualified id) pairs for the aspect's pickers, grouped as 'Group: primitive'."""
    if hasattr(vocabulary, "picker_choices"):
        return list(vocabulary.picker_choices(aspect_name(aspect)))
    choices = []
    for group in vocabulary.groups_for(aspect_name(aspect)):
        group_label = _label(group)
        for primitive in getattr(group, "primitives", []):
            qualified = f"{group.id}.{primitive.id}"
            choices.append((f"{group_label} › {_label(primitive)}", qualified))
    return choices


def glossary_markdown(vocabulary: Any, aspect: str) -> str:
    """The glossary of the aspect's primitives, for the panel's 'Glossary' drawer."""
    if hasattr(vocabulary, "glossary_markdown"):
        return vocabulary.glossary_markdown(aspect_name(aspect))
    lines = []
    for group in vocabulary.groups_for(aspect_name(aspect)):
        lines.append(f"**{_label(group)}**")
        for primitive in getattr(group, "primitives", []):
            definition = _definition(primitive)
            lines.append(f"- *{_label(primitive)}*" + (f": {definition}" if definition else ""))
    return "\n".join(lines) if lines else "_No primitives for this aspect._"


def primitive_definition(vocabulary: Any, aspect: str, qualified_id: str | None) -> str:
    if not qualified_id:
        return ""
    for group in vocabulary.groups_for(aspect_name(aspect)):
        for primitive in getattr(group, "primitives", []):
            if f"{group.id}.{primitive.id}" == qualified_id:
                definition = _definition(primitive)
                return f"**{_label(primitive)}** — {definition}" if definition else f"**{_label(primitive)}**"
    return ""


def apply_primitive(state: Mapping[str, Any] | None, texts: Sequence[str], aspect: str,
                    qualified_id: str | None, vocabulary_module: Any, max_chars: int = 6000) -> StructuredCaption:
    """Insert the primitive's phrase into the aspect (replacing the group's previous choice)."""
    aspect = aspect_name(aspect)
    if not qualified_id:
        raise InputError(f"pick a primitive from the {aspect} list first", f"{aspect} primitive")
    caption = apply_edits(state, texts, max_chars)
    entry = caption.aspects[aspect]
    new_text, selected = vocabulary_module.apply_primitive(entry.text, qualified_id, list(entry.primitives))
    if new_text != entry.text:
        caption.record_revision(aspect, f"primitive {qualified_id}", new_text, source="primitive")
    caption.aspects[aspect].primitives = list(selected)
    return caption


def _label(item: Any) -> str:
    for name in ("label", "name", "title", "id"):
        value = getattr(item, name, None)
        if isinstance(value, str) and value:
            return value
    return str(item)


def _definition(item: Any) -> str:
    for name in ("definition", "description", "gloss"):
        value = getattr(item, name, None)
        if isinstance(value, str) and value:
            return _one_line(value, 240)
    return ""


# -- import / export / presets -------------------------------------------------------------------

def import_caption(path: str | Path | None, max_chars: int = 6000) -> StructuredCaption:
    """A caption from an uploaded JSON file: our schema, a CHAI record or a plain {aspect: text}."""
    if not path:
        raise InputError("choose a caption JSON file to import", "import")
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise InputError(f"{path.name} is not a .json file; export a caption from the studio or use a CHAI record",
                         "import")
    try:
        return StructuredCaption.load(path, max_chars)
    except InputError as exc:
        raise InputError(f"could not import {path.name}: {str(exc).replace(str(path) + ': ', '')}", "import") from None


def export_caption(state: Mapping[str, Any] | None, texts: Sequence[str], out_dir: str | Path,
                   max_chars: int = 6000) -> Path:
    """Write the caption (with the boxes' current text) to a JSON file for download."""
    caption = apply_edits(state, texts, max_chars)
    if caption.is_empty():
        raise InputError("every aspect is empty; there is nothing to export yet", "export")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", caption.title or "caption").strip("-")[:60] or "caption"
    out = Path(out_dir) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    return caption.save(out)


def preset_caption(presets_module: Any, name: str | None) -> StructuredCaption:
    if not name:
        raise InputError("choose a preset from the shot library first", "preset")
    caption = presets_module.load_preset(name)
    if not isinstance(caption, StructuredCaption):
        caption = StructuredCaption.from_dict(caption)
    caption.provenance.source = "preset"
    caption.title = caption.title or str(name)
    return caption


def preset_names(presets_module: Any) -> list[tuple[str, str]]:
    """(title, name) pairs of the shot library, for the preset dropdown."""
    names = []
    for item in presets_module.list_presets():
        if isinstance(item, str):
            names.append((item, item))
        else:
            names.append((getattr(item, "title", None) or item.name, item.name))
    return names


# -- compose -------------------------------------------------------------------------------------

def compose_prompt(state: Mapping[str, Any] | None, texts: Sequence[str], mode: str, max_words: int,
                   tokenizer: Any = None, merger: Any = None, max_chars: int = 6000) -> tuple[str, dict[str, Any]]:
    """Compose the prompt. 'LLM merge' needs `merger` (caption -> prompt text), the captioner's merge."""
    from ..compose import ComposeOptions, compose

    caption = apply_edits(state, texts, max_chars)
    if caption.is_empty():
        raise InputError("every aspect is empty; caption the clip, load a preset or type at least one aspect "
                         "before composing", "compose")
    if not isinstance(mode, str) or mode not in COMPOSE_MODES:
        raise InputError(f"unknown composer mode; choose one of {', '.join(COMPOSE_MODES)}", "mode")
    words = number(max_words, "max_words", 20, 320)
    options = ComposeOptions(max_words=int(words), camera_first=(mode == "Camera first"))
    result = compose(caption, options, tokenizer=tokenizer)
    report = result.report.to_dict()
    report["mode"] = mode
    if mode == "LLM merge":
        if merger is None:
            raise InputError("LLM merge needs the captioner; load it or pick the Extractive mode", "mode")
        merged = merger(caption)
        merged = merged if isinstance(merged, str) else getattr(merged, "prompt", str(merged))
        return merged.strip(), report
    return result.prompt, report


def prompt_meter(prompt: str | None, tokenizer: Any = None) -> str:
    """Words and tokens of the (possibly edited) prompt against the 512-token limit."""
    from ..compose.text import estimate_tokens, word_count

    prompt = prompt or ""
    words = word_count(prompt)
    if tokenizer is not None:
        tokens, approx = len(tokenizer(prompt)["input_ids"]), ""
    else:
        tokens, approx = estimate_tokens(prompt), "≈"
    if tokens > TOKEN_LIMIT:
        state = f"over the limit: the generator reads only the first {TOKEN_LIMIT} tokens, shorten the prompt"
    elif tokens > 0.9 * TOKEN_LIMIT:
        state = "close to the limit"
    else:
        state = "within the limit"
    return f"**{words} words · {approx}{tokens} / {TOKEN_LIMIT} tokens** — {state}"


def compose_summary(report: Mapping[str, Any]) -> str:
    coverage = report.get("coverage") or {}
    parts = [f"{a} {coverage[a] * 100:.0f}%" for a in ASPECTS if a in coverage]
    lines = ["Coverage: " + (", ".join(parts) if parts else "n/a")]
    dropped = report.get("dropped") or []
    if dropped:
        reasons: dict[str, int] = {}
        for item in dropped:
            reasons[item.get("reason", "?")] = reasons.get(item.get("reason", "?"), 0) + 1
        lines.append("Left out: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
    lines.extend(f"⚠ {w}" for w in report.get("warnings") or [])
    return "  \n".join(lines)


# -- reference clip -------------------------------------------------------------------------------

def check_upload(path: str | Path | None, max_upload_mb: int) -> Path:
    """The upload must be a video file of an accepted type and size."""
    if not path:
        raise InputError(f"upload a reference clip ({VIDEO_TYPES_TEXT}) first", "reference")
    if not isinstance(path, (str, Path)):
        raise InputError(f"expected an uploaded file, got {kind_of(path)}", "reference")
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(
            f"{path.name} is not a video file the studio reads; upload a clip of type {VIDEO_TYPES_TEXT}", "reference")
    if not path.is_file():
        raise InputError(f"the uploaded file {path.name} is gone; upload it again", "reference")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_upload_mb:
        raise InputError(f"{path.name} is {size_mb:.0f} MB; the limit is {max_upload_mb} MB "
                         "(set --max-upload-mb to change it)", "reference")
    return path


def check_trim(start: float | None, end: float | None, duration: float | None, max_seconds: float) -> tuple[float, float]:
    """A valid [start, end) range in seconds inside the clip, at most `max_seconds` long."""
    start = 0.0 if start is None else number(start, "trim start")
    end = None if end is None else number(end, "trim end")
    duration = None if duration is None else number(duration, "clip duration")
    end = (duration if duration else 0.0) if end is None or end <= 0 else end
    if start < 0:
        raise InputError(f"start must be 0 or more, got {start:g}", "trim")
    if duration:
        end = min(end, float(duration))
        if start >= float(duration):
            raise InputError(f"start ({start:g} s) is past the end of the clip ({float(duration):g} s)", "trim")
    if end <= start:
        raise InputError(f"end ({end:g} s) must be after start ({start:g} s)", "trim")
    if end - start > max_seconds:
        raise InputError(f"the range is {end - start:.1f} s; the limit is {max_seconds:g} s. "
                         "Pick a shot or trim the range (or set --max-clip-seconds)", "trim")
    return start, end


def shot_choices(shots: Iterable[Any]) -> list[tuple[str, str]]:
    """Dropdown choices 'Shot 1: 0.00–3.20 s' with the value 'start-end'."""
    choices = []
    for n, shot in enumerate(shots, start=1):
        start, end = float(shot.start), float(shot.end)
        index = getattr(shot, "index", n - 1)
        choices.append((f"Shot {int(index) + 1}: {start:.2f}–{end:.2f} s", f"{start:.3f}-{end:.3f}"))
    return choices


def parse_shot(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    try:
        start, end = (float(x) for x in value.split("-", 1))
    except ValueError:
        raise InputError(f"not a shot range: {value!r}", "shot") from None
    return start, end


# -- generation settings ---------------------------------------------------------------------------

def choose_seed(seed: Any, randomize: bool, rng: random.Random | None = None) -> int:
    """The seed to use: `randomize`, an empty box or -1 (the CLI's "random") draw one."""
    if randomize or seed is None or seed == "":
        return (rng or random.SystemRandom()).randint(0, MAX_SEED)
    value = number(seed, "seed")
    if value != int(value):
        raise InputError(f"must be a whole number, got {value:g}", "seed")
    if int(value) == -1:
        return (rng or random.SystemRandom()).randint(0, MAX_SEED)
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"must be -1 (random) or between 0 and {MAX_SEED}, got {value:g}", "seed")
    return int(value)


def parse_resolution(value: str | None) -> tuple[int, int]:
    """'1280x704' -> (1280, 704); both sides multiples of 16 between 64 and 2048."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", str(value or ""))
    if not match:
        raise InputError(f"expected WIDTHxHEIGHT such as 1280x704, got {value!r}", "resolution")
    width, height = int(match.group(1)), int(match.group(2))
    for side in (width, height):
        if not 64 <= side <= 2048 or side % 16:
            raise InputError(f"{width}x{height}: each side must be a multiple of 16 between 64 and 2048",
                             "resolution")
    return width, height


def check_prompt(prompt: str | None) -> str:
    prompt = text(prompt, "prompt").strip()
    if not prompt:
        raise InputError("the prompt is empty; compose one from the caption or type it", "prompt")
    return prompt


# -- run history -----------------------------------------------------------------------------------

def run_label(run_dir: str | Path, prompt: str, seed: int) -> str:
    return f"{Path(run_dir).name} · seed {seed} · {_one_line(prompt, 60)}"


def error_message(exc: BaseException) -> str:
    """What the page shows for a failed step: a StudioError's message with server paths cut to
    file names; anything else as one line that names no internals (the log has the traceback)."""
    if isinstance(exc, StudioError):
        return without_paths(str(exc))
    if isinstance(exc, RecursionError):
        return "the data sent is nested too deeply to read; send a flat JSON caption"
    return (f"this step failed unexpectedly ({type(exc).__name__}); nothing you had was lost. The server log "
            "has the details")


# An absolute POSIX path of two or more parts (not part of a URL, a hub id or a relative path).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/`]+/)+([^\s'\"/`]*)")


def without_paths(message: str) -> str:
    """`/tmp/gradio/ab12/clip.mp4 is ...` -> `clip.mp4 is ...`: visitors see file names, not where
    the server keeps them (upload cache, outputs and working folders)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "(folder)", message)


# -- values from API clients ------------------------------------------------------------------------

def kind_of(value: Any) -> str:
    """A value's JSON kind for a message, never its Python repr."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of another kind"


def number(value: Any, field: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number (or numeric text) from the page or an API client, optionally in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"expected a number, got {kind_of(value)}", field)
    try:
        result = float(value)
    except ValueError:
        raise InputError(f"expected a number, got text {_one_line(value, 30)!r}", field) from None
    if result != result or result in (float("inf"), float("-inf")):
        raise InputError("expected a finite number", field)
    if (low is not None and result < low) or (high is not None and result > high):
        raise InputError(f"must be between {low:g} and {high:g}, got {result:g}", field)
    return result


def text(value: Any, field: str) -> str:
    """Text from the page or an API client (None is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected text, got {kind_of(value)}", field)
    return value
