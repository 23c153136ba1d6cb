"""Caption editing as the page does it (`studio/caption/editing.py`): box edits become undoable
revisions, primitives, presets, import and export. Every operation returns a new caption, so a
step that fails leaves the page with what it had."""

from __future__ import annotations

import json

import pytest

from studio.caption import editing
from studio.caption.structured import ASPECTS, StructuredCaption
from studio.caption.vocabulary import load_vocabulary
from studio.errors import InputError

TEXTS = [
    "A woman in a red coat holds an umbrella.",
    "A rainy city street at night, lit by shop windows.",
    "She walks slowly toward the camera, then stops.",
    "Medium shot; she stays centred while the street recedes behind her.",
    "The camera is at eye level and dollies backward as she approaches.",
]
LIMIT = 6000


def boxes(texts=TEXTS) -> dict[str, str]:
    return dict(zip(ASPECTS, texts))


def texts_of(caption: StructuredCaption) -> list[str]:
    return [caption.aspects[a].text for a in ASPECTS]


def captioned(texts=TEXTS) -> StructuredCaption:
    return editing.with_edits(StructuredCaption(), boxes(texts), LIMIT)


# -- box edits and undo --------------------------------------------------------------------------------

def test_edits_become_revisions_and_undo_restores_them():
    caption = captioned()
    assert texts_of(caption) == TEXTS
    edited = editing.with_edits(caption, boxes([*TEXTS[:4], "The camera tracks left at waist height."]), LIMIT)
    # The typed edit is the last revision: Undo drops it and restores the text before it.
    caption, message = editing.undo(edited, "camera")
    assert caption.aspects["Camera"].text == TEXTS[4]
    assert message == "Camera: undid the user revision (manual edit)."
    caption, _ = editing.undo(caption, "Camera")
    assert caption.aspects["Camera"].text == ""
    caption, message = editing.undo(caption, "Camera")
    assert message == "Nothing to undo for Camera."


def test_unchanged_boxes_record_nothing_and_none_is_empty():
    caption = captioned()
    same = editing.with_edits(caption, boxes(), LIMIT)
    assert [len(same.aspects[a].history) for a in ASPECTS] == [1] * 5
    cleared = editing.with_edits(caption, {"Subject": None}, LIMIT)  # a box Gradio sent as None
    assert cleared.aspects["Subject"].text == "" and cleared.aspects["Scene"].text == ""


def test_captions_are_never_changed_in_place():
    caption = captioned()
    before = caption.to_json()
    editing.with_edits(caption, boxes(["A man.", *TEXTS[1:]]), LIMIT)
    editing.undo(caption, "Subject")
    editing.revise(caption, "Camera", "say the height", "Low camera.")
    editing.with_rewards(caption, {"Camera": 0.5})
    editing.with_primitive(caption, "Camera", editing.primitives_of(load_vocabulary(), "Camera")[0][2],
                           load_vocabulary())
    editing.take_in(caption, StructuredCaption.from_dict({"Camera": "Static."}), "import", "import")
    assert caption.to_json() == before


def test_bad_box_values_name_their_aspect():
    with pytest.raises(InputError, match=r"Scene: text is 51 characters; the limit is 50"):
        editing.with_edits(StructuredCaption(), boxes(["a", "x" * 51, "", "", ""]), 50)
    with pytest.raises(InputError, match="Motion: expected text, got int"):
        editing.with_edits(StructuredCaption(), {"Motion": 5}, 50)
    with pytest.raises(InputError, match="unknown aspect 'lens'"):
        editing.undo(captioned(), "lens")


def test_revisions_and_rewards_keep_their_texts():
    caption = editing.revise(captioned(), "camera", "Say how high the camera is.", "A low camera dollies back.")
    entry = caption.aspects["Camera"]
    assert entry.text == "A low camera dollies back." and entry.history[-1].before == TEXTS[4]
    assert entry.history[-1].source == "model" and entry.history[-1].critique == "Say how high the camera is."
    scored = editing.with_rewards(caption, {"camera": 0.25})
    assert scored.aspects["Camera"].reward == 0.25 and scored.aspects["Camera"].reward_is_current
    stale = editing.with_edits(scored, boxes([*TEXTS[:4], "Handheld."]), LIMIT)
    assert not stale.aspects["Camera"].reward_is_current


# -- primitives -------------------------------------------------------------------------------------------

def test_primitive_inserts_then_replaces_within_an_exclusive_group():
    vocabulary = load_vocabulary()
    group = next(g for g in vocabulary.groups_for("Camera") if g.exclusive and len(g.primitives) >= 2)
    first, second = (f"{group.id}.{p.id}" for p in group.primitives[:2])
    caption = editing.with_primitive(captioned(), "camera", first, vocabulary)
    phrase1 = vocabulary.primitive(first).phrase
    assert phrase1 in caption.aspects["Camera"].text and caption.aspects["Camera"].primitives == [first]
    caption = editing.with_primitive(caption, "Camera", second, vocabulary)
    text = caption.aspects["Camera"].text
    assert vocabulary.primitive(second).phrase in text and phrase1 not in text
    assert caption.aspects["Camera"].primitives == [second]
    caption, _ = editing.undo(caption, "Camera")  # each pick is one undoable revision
    assert phrase1 in caption.aspects["Camera"].text
    with pytest.raises(InputError, match="pick a primitive from the Camera list first"):
        editing.with_primitive(captioned(), "Camera", None, vocabulary)
    subject_id = editing.primitives_of(vocabulary, "Subject")[0][2]
    with pytest.raises(InputError, match=f"{subject_id} is not a Camera primitive"):
        editing.with_primitive(captioned(), "Camera", subject_id, vocabulary)


def test_the_camera_picker_is_grouped_by_sub_aspect():
    vocabulary = load_vocabulary()
    subs = editing.sub_aspect_choices(vocabulary, "Camera")
    assert len(subs) >= 4 and len({sub for _, sub in subs}) == len(subs)
    every = editing.primitives_of(vocabulary, "Camera")
    per_sub = [editing.primitives_of(vocabulary, "Camera", sub) for _, sub in subs]
    assert all(per_sub) and sum(len(rows) for rows in per_sub) == len(every)
    assert {qid for rows in per_sub for _, _, qid in rows} == {qid for _, _, qid in every}
    label, definition, qualified = per_sub[0][0]
    assert ": " in label and definition and vocabulary.primitive(qualified).aspect == "Camera"


# -- import, export, the shot library --------------------------------------------------------------------

def test_export_then_import_round_trip(tmp_path):
    caption = captioned()
    caption.title = "Rainy walk / take 2"
    path = editing.export_caption(caption, tmp_path)
    again = editing.export_caption(caption, tmp_path)
    assert path.parent.parent == tmp_path and path.name == again.name == "Rainy-walk-take-2.json" and path != again
    assert texts_of(editing.import_caption(path, LIMIT)) == TEXTS
    # A caption file without a title keeps its file's name through an import and an export.
    untitled = tmp_path / "harbour night.json"
    untitled.write_text(json.dumps({"Camera": "Static camera.", "Subject": "A dog."}))
    assert editing.export_caption(editing.import_caption(untitled, LIMIT), tmp_path).name == "harbour-night.json"
    with pytest.raises(InputError, match="export: every aspect is empty; there is nothing to export yet"):
        editing.export_caption(StructuredCaption(), tmp_path)


def test_import_accepts_a_chai_record(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"video_id": "clip_001",
                                "input_captions": {"Camera": "Static camera.", "subject": "A dog."}}))
    caption = editing.import_caption(path, LIMIT)
    assert caption.aspects["Camera"].text == "Static camera." and caption.aspects["Subject"].text == "A dog."
    assert caption.provenance.source == "chai-record"


@pytest.mark.parametrize("content, name, message", [
    ("{not json", "bad.json", r"import: could not import bad.json: .*not valid JSON \(line 1"),
    ('{"Lens": "wide"}', "lens.json", "unknown aspect 'Lens'"),
    ("[1, 2]", "list.json", "expected a JSON object, got a list"),
    ("hello", "notes.txt", "notes.txt is not a .json file"),
])
def test_bad_imports_explain_without_the_server_path(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as refused:
        editing.import_caption(path, LIMIT)
    assert str(tmp_path) not in str(refused.value)
    with pytest.raises(InputError, match="choose a caption JSON file to import"):
        editing.import_caption(None, LIMIT)


def test_take_in_replaces_texts_as_undoable_revisions():
    imported = StructuredCaption.from_dict({"Camera": "Slow push in."})
    caption = editing.take_in(captioned(), imported, "imported a caption file", "import")
    assert caption.aspects["Camera"].text == "Slow push in." and caption.aspects["Subject"].text == ""
    assert caption.aspects["Camera"].history[-1].critique == "imported a caption file"
    caption, _ = editing.undo(caption, "Camera")
    assert caption.aspects["Camera"].text == TEXTS[4]
    caption, _ = editing.undo(caption, "Subject")
    assert caption.aspects["Subject"].text == TEXTS[0]


def test_the_shot_library_loads_presets():
    names = [name for _, name in editing.preset_choices()]
    assert "dolly_zoom" in names
    caption = editing.preset_caption("dolly_zoom")
    assert not caption.is_empty() and caption.provenance.source == "preset" and caption.title
    with pytest.raises(InputError, match="preset: choose a shot from the library first"):
        editing.preset_caption("")
