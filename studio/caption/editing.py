"""Editing a caption the way the page does: box edits, primitives, undo, presets, import, export.

Every operation takes the current caption and returns a new one (the argument is never changed),
so a step that fails leaves the page with what it had. Each change is recorded as a revision:
one Undo per aspect restores the text before it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from .structured import ASPECTS, StructuredCaption, aspect_name

MANUAL_EDIT = "manual edit"


def with_edits(caption: StructuredCaption, texts: Mapping[str, Any], max_chars: int) -> StructuredCaption:
    """The caption brought in line with what the boxes show; each changed box is a revision.

    Typing is not recorded keystroke by keystroke: an edit becomes one revision the next time an
    action runs, which is also what makes a manual edit undoable."""
    caption = caption.copy()
    for aspect in ASPECTS:
        text = texts.get(aspect)
        text = "" if text is None else text
        if not isinstance(text, str):
            raise InputError(f"expected text, got {type(text).__name__}", aspect)
        if len(text) > max_chars:
            raise InputError(f"text is {len(text)} characters; the limit is {max_chars}. Shorten it before going on.",
                             aspect)
        if text.strip() != caption.aspects[aspect].text:
            caption.record_revision(aspect, MANUAL_EDIT, text, source="user")
    return caption


def take_in(caption: StructuredCaption, new: StructuredCaption, note: str, source: str) -> StructuredCaption:
    """`new`'s texts taken into `caption` as revisions (a caption, preset or import replacing the
    current one), so one Undo per aspect restores what was there."""
    caption = caption.copy()
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


def undo(caption: StructuredCaption, aspect: str) -> tuple[StructuredCaption, str]:
    """Undo the aspect's last revision; returns the caption and a sentence saying what was undone."""
    aspect = aspect_name(aspect)
    caption = caption.copy()
    history = caption.aspects[aspect].history
    if not history:
        return caption, f"Nothing to undo for {aspect}."
    last = history[-1]
    caption.undo(aspect)
    return caption, f"{aspect}: undid the {last.source} revision ({last.critique or 'no note'})."


def revise(caption: StructuredCaption, aspect: str, critique: str, text: str, source: str = "model"
           ) -> StructuredCaption:
    caption = caption.copy()
    caption.record_revision(aspect_name(aspect), critique, text, source=source)
    return caption


def with_rewards(caption: StructuredCaption, rewards: Mapping[str, float]) -> StructuredCaption:
    """The rewards recorded against the texts they scored (stale once the text changes)."""
    caption = caption.copy()
    for aspect, reward in rewards.items():
        entry = caption.aspects[aspect_name(aspect)]
        entry.reward, entry.reward_text = float(reward), entry.text
    return caption


def with_primitive(caption: StructuredCaption, aspect: str, qualified_id: Any, vocabulary: Any) -> StructuredCaption:
    """The primitive's phrase put into the aspect (replacing its group's previous choice)."""
    aspect = aspect_name(aspect)
    if not qualified_id or not isinstance(qualified_id, str):
        raise InputError(f"pick a primitive from the {aspect} list first", f"{aspect} primitive")
    if vocabulary.primitive(qualified_id).aspect != aspect:
        raise InputError(f"{qualified_id} is not a {aspect} primitive", f"{aspect} primitive")
    caption = caption.copy()
    entry = caption.aspects[aspect]
    new_text, selected = vocabulary.apply_primitive(entry.text, qualified_id, list(entry.primitives))
    if new_text != entry.text:
        caption.record_revision(aspect, f"primitive {qualified_id}", new_text, source="primitive")
    caption.aspects[aspect].primitives = list(selected)
    return caption


def sub_aspect_choices(vocabulary: Any, aspect: str) -> list[tuple[str, str]]:
    """(label, id) of the aspect's sub-aspects that have primitives, in the vocabulary's order
    (for Camera: playback speed, lens distortion, height, angle, focus, steadiness, movement...)."""
    used = {group.sub_aspect for group in vocabulary.groups_for(aspect)}
    return [(sub.name, sub.id) for sub in vocabulary.aspect(aspect).sub_aspects if sub.id in used]


def primitives_of(vocabulary: Any, aspect: str, sub_aspect: str | None = None) -> list[tuple[str, str, str]]:
    """(label, definition, qualified id) of the aspect's primitives, one sub-aspect's or all."""
    return [(f"{group.name}: {p.name}", p.definition, p.qualified_id) for group in vocabulary.groups_for(aspect)
            if sub_aspect in (None, "", group.sub_aspect) for p in group.primitives]


def import_caption(path: Any, max_chars: int) -> StructuredCaption:
    """A caption from an uploaded JSON file: our schema, a CHAI record or a plain {aspect: text}."""
    if not path:
        raise InputError("choose a caption JSON file to import", "import")
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise InputError(f"{path.name} is not a .json file; export a caption from the studio or use a CHAI record",
                         "import")
    try:
        caption = StructuredCaption.load(path, max_chars)
    except InputError as exc:
        raise InputError(f"could not import {path.name}: {str(exc).replace(str(path) + ': ', '')}", "import") from exc
    # A file with no title is known by its name: exported again, it comes back under that name.
    caption.title = caption.title or path.stem
    return caption


def export_caption(caption: StructuredCaption, out_dir: str | Path) -> Path:
    """The caption written to `<title>.json`, for download. Each export gets a folder of its own,
    so the file keeps exactly the caption's name however many are exported."""
    if caption.is_empty():
        raise InputError("every aspect is empty; there is nothing to export yet", "export")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", caption.title or "caption").strip("-")[:60] or "caption"
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=out_dir))
    return caption.save(folder / f"{stem}.json")


def preset_caption(name: Any) -> StructuredCaption:
    """A caption from the shot library."""
    from .. import shot_library

    if not name:
        raise InputError("choose a shot from the library first", "preset")
    caption = shot_library.load_preset(name)
    caption.provenance.source = "preset"
    caption.title = caption.title or str(name)
    return caption


def preset_choices() -> list[tuple[str, str]]:
    """(title, name) pairs of the shot library."""
    from .. import shot_library

    return [(item.title or item.name, item.name) for item in shot_library.list_presets()]
