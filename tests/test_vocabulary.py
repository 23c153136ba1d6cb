"""The CHAI vocabulary file's integrity, its lookups and the primitive picker."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources

import pytest

from studio.caption import (
    ASPECTS,
    Vocabulary,
    apply_primitive,
    load_vocabulary,
    remove_primitive,
    validate_primitives,
)
from studio.errors import InputError

# The 41 CHAI sub-aspects (json_fields), per aspect, in caption order.
SUB_ASPECTS = {
    "Subject": ["type", "appearance", "wardrobe", "facial_expression", "pose", "relationship", "transition"],
    "Scene": ["point_of_view", "location", "time_of_day", "architecture", "nature", "weather", "props", "style",
              "overlay", "scene_dynamics", "transition"],
    "Motion": ["subject_action", "group_action", "object_interaction", "subject_interaction"],
    "Spatial": ["shot_size", "frame_position", "scene_position", "spatial_depth", "height_relative_to_camera",
                "spatial_motion"],
    "Camera": ["playback_speed", "lens_distortion", "camera_height", "camera_angle", "camera_focus",
               "camera_steadiness", "camera_translation", "camera_rotation", "camera_zoom", "camera_arc",
               "tracking_shot", "camera_movement_speed", "camera_movement_purpose"],
}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def raw():
    return json.loads(resources.files("studio.data").joinpath("vocabulary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary()


# -- the packaged file -------------------------------------------------------------------------------

def test_file_has_the_five_aspects_and_41_sub_aspects(raw):
    assert [a["name"] for a in raw["aspects"]] == list(ASPECTS)
    assert {a["name"]: [s["id"] for s in a["sub_aspects"]] for a in raw["aspects"]} == SUB_ASPECTS
    assert sum(len(a["sub_aspects"]) for a in raw["aspects"]) == 41
    for aspect in raw["aspects"]:
        assert aspect["description"].strip()
        for sub in aspect["sub_aspects"]:
            assert sub["name"].strip() and sub["description"].strip(), sub


def test_file_ids_are_unique_snake_case_and_texts_complete(raw):
    group_ids = [g["id"] for g in raw["groups"]]
    assert len(group_ids) == len(set(group_ids))
    qualified = []
    for group in raw["groups"]:
        assert SNAKE.match(group["id"]), group["id"]
        assert group["sub_aspect"] in SUB_ASPECTS[group["aspect"]], group["id"]
        assert group["select"] in ("one", "many")
        assert group["name"].strip() and group["definition"].strip()
        ids = [p["id"] for p in group["primitives"]]
        assert ids and len(ids) == len(set(ids)), group["id"]
        for prim in group["primitives"]:
            assert SNAKE.match(prim["id"]), prim["id"]
            assert prim["id"] != "unknown"
            for key in ("name", "definition", "phrase"):
                assert prim[key].strip(), (group["id"], prim["id"], key)
            assert prim["phrase"].endswith("."), (group["id"], prim["id"])
            assert prim["phrase"][0].isupper(), (group["id"], prim["id"])
            qualified.append(f"{group['id']}.{prim['id']}")
    assert len(qualified) == len(set(qualified))
    assert 150 <= len(qualified) <= 260
    phrases = [p["phrase"] for g in raw["groups"] for p in g["primitives"]]
    assert len(phrases) == len(set(phrases)), "two primitives share a phrase; the picker could not tell them apart"


def test_every_aspect_has_groups_and_key_cinematography_is_covered(vocab):
    for aspect in ASPECTS:
        assert vocab.groups_for(aspect)
    for qualified_id in [
        "shot_size.extreme_close_up", "shot_size_change.wide_to_tight", "height_wrt_subject.below_subject",
        "frame_position.bottom_right", "depth_layer.middle_ground",
        "video_speed.time_lapse", "video_speed.slow_motion", "video_speed.speed_ramp", "video_speed.time_reversed",
        "lens_distortion.barrel", "lens_distortion.fisheye", "camera_height.underwater", "camera_angle.worm_eye",
        "dutch_angle.varying", "depth_of_field.ultra_shallow_focus", "focus_plane.background",
        "focus_change.rack_focus", "focus_change.pull_focus", "focus_change.focus_tracking",
        "steadiness.very_unsteady", "translation.dolly_in", "translation.truck_left", "translation.pedestal_up",
        "translation.crane_up", "rotation.pan_left", "rotation.tilt_up", "rotation.roll_clockwise", "rotation.whip_pan",
        "zoom.zoom_in", "arc.arc_clockwise", "movement_speed.fast",
        "tracking_shot.side", "tracking_shot.tail", "tracking_shot.lead", "tracking_shot.aerial",
        "tracking_shot.arc", "tracking_shot.pan", "tracking_shot.tilt",
        "dolly_zoom.dolly_in_zoom_out", "dolly_zoom.dolly_out_zoom_in", "motion_effects.motion_blur",
        "motion_effects.frame_freeze", "motion_effects.cinemagraph",
        "point_of_view.first_person", "point_of_view.over_the_shoulder", "point_of_view.top_down_game",
        "point_of_view.isometric_game", "point_of_view.drone", "point_of_view.dashcam", "point_of_view.selfie",
        "point_of_view.broadcast", "point_of_view.screen_recording", "point_of_view.locked_on",
        "overlays.subtitles", "scene_dynamics.dynamic",
        "subject_framing.single_dominant_subject", "subject_framing.many_subjects",
        "subject_change.subject_revealing", "subject_change.subject_disappearing", "subject_change.subject_switching",
    ]:
        primitive = vocab.primitive(qualified_id)
        assert primitive.qualified_id == qualified_id


def test_groups_feed_their_own_aspect(vocab):
    for aspect in ASPECTS:
        subs = {s.id for s in vocab.aspect(aspect).sub_aspects}
        for group in vocab.groups_for(aspect):
            assert group.aspect == aspect and group.sub_aspect in subs
            for prim in group.primitives:
                assert (prim.aspect, prim.sub_aspect, prim.group_id) == (aspect, group.sub_aspect, group.id)


def test_load_is_cached_and_aspect_lookup_is_case_insensitive(vocab):
    assert load_vocabulary() is vocab
    assert vocab.aspect("camera").name == "Camera"
    assert vocab.groups_for("SPATIAL")[0].aspect == "Spatial"


# -- lookups and errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, needle", [
    ("shot_size.huge", "'shot_size.huge'"),
    ("no_such_group.close_up", "no_such_group"),
    ("close_up", "group_id.primitive_id"),
    ("a.b.c", "group_id.primitive_id"),
])
def test_unknown_primitive_names_the_id(vocab, bad, needle):
    with pytest.raises(InputError) as info:
        vocab.primitive(bad)
    assert needle in str(info.value)


def test_unknown_aspect_lists_the_aspects(vocab):
    with pytest.raises(InputError, match="Subject, Scene, Motion, Spatial, Camera"):
        vocab.groups_for("Lighting")


def test_validate_primitives_dedupes_and_reports_every_unknown_id():
    assert validate_primitives(["zoom.zoom_in", "arc.arc_clockwise", "zoom.zoom_in"]) == ["zoom.zoom_in", "arc.arc_clockwise"]
    with pytest.raises(InputError) as info:
        validate_primitives(["zoom.zoom_in", "zoom.warp", "bogus"])
    message = str(info.value)
    assert "'zoom.warp'" in message and "'bogus'" in message and "'zoom.zoom_in'" not in message
    with pytest.raises(InputError, match="single string"):
        validate_primitives("zoom.zoom_in")


def test_glossary_pairs_and_markdown(vocab):
    camera = vocab.glossary("Camera")
    assert len(camera) == sum(len(g.primitives) for g in vocab.groups_for("Camera"))
    assert ("Rack focus (Focus change)", vocab.primitive("focus_change.rack_focus").definition) in camera
    assert len(vocab.glossary()) == sum(len(g.primitives) for g in vocab.groups)
    markdown = vocab.glossary_markdown("Spatial")
    assert markdown.startswith("## Spatial") and "### Shot size (pick one)" in markdown and "\n## Camera" not in markdown
    assert "- **Extreme close-up**:" in markdown


def test_picker_choices_cover_the_aspect(vocab):
    choices = vocab.picker_choices("Scene")
    assert ("Point of view: First person", "point_of_view.first_person") in choices
    assert all(vocab.primitive(qid).aspect == "Scene" for _, qid in choices)


# -- the picker -----------------------------------------------------------------------------------------

def test_apply_appends_phrase_and_selects(vocab):
    phrase = vocab.primitive("rotation.pan_left").phrase
    text, selected = apply_primitive("A man walks along the beach", "rotation.pan_left", [])
    assert text == f"A man walks along the beach. {phrase}"
    assert selected == ["rotation.pan_left"]
    assert apply_primitive("", "rotation.pan_left", []) == (phrase, ["rotation.pan_left"])


def test_exclusive_group_replaces_previous_phrase_in_place(vocab):
    wide, close = vocab.primitive("shot_size.wide").phrase, vocab.primitive("shot_size.close_up").phrase
    text, selected = apply_primitive("Intro.", "shot_size.wide", ["zoom.zoom_in"])
    text = text + " The woman smiles."
    text, selected = apply_primitive(text, "shot_size.close_up", selected)
    assert text == f"Intro. {close} The woman smiles."
    assert wide not in text
    assert selected == ["zoom.zoom_in", "shot_size.close_up"]


def test_exclusive_group_appends_when_old_phrase_was_edited_away(vocab):
    close = vocab.primitive("shot_size.close_up").phrase
    text, selected = apply_primitive("The user rewrote everything.", "shot_size.close_up", ["shot_size.wide"])
    assert text == f"The user rewrote everything. {close}"
    assert selected == ["shot_size.close_up"]


def test_many_group_accumulates_and_reapply_is_idempotent(vocab):
    text, selected = apply_primitive("", "rotation.pan_left", [])
    text, selected = apply_primitive(text, "rotation.tilt_up", selected)
    assert vocab.primitive("rotation.pan_left").phrase in text and vocab.primitive("rotation.tilt_up").phrase in text
    assert selected == ["rotation.pan_left", "rotation.tilt_up"]
    assert apply_primitive(text, "rotation.tilt_up", selected) == (text, selected)


def test_reapply_restores_a_deleted_phrase(vocab):
    text, selected = apply_primitive("Start.", "arc.full_orbit", ["arc.full_orbit"])
    assert text == "Start. " + vocab.primitive("arc.full_orbit").phrase and selected == ["arc.full_orbit"]


def test_exclusive_swap_when_new_phrase_already_typed_removes_old(vocab):
    wide, close = vocab.primitive("shot_size.wide").phrase, vocab.primitive("shot_size.close_up").phrase
    text, selected = apply_primitive(f"{wide} {close}", "shot_size.close_up", ["shot_size.wide"])
    assert text == close and selected == ["shot_size.close_up"]


def test_apply_does_not_mutate_inputs():
    selected = ["shot_size.wide"]
    apply_primitive("x.", "shot_size.close_up", selected)
    assert selected == ["shot_size.wide"]


def test_remove_primitive_cuts_phrase_and_keeps_line_breaks(vocab):
    phrase = vocab.primitive("translation.dolly_in").phrase
    text = f"First line.\n{phrase} The end."
    new_text, selected = remove_primitive(text, "translation.dolly_in", ["translation.dolly_in", "zoom.zoom_in"])
    assert new_text == "First line.\nThe end." and selected == ["zoom.zoom_in"]
    assert remove_primitive("Nothing here.", "translation.dolly_in", []) == ("Nothing here.", [])


def test_picker_rejects_bad_input():
    with pytest.raises(InputError, match="'zoom.warp'"):
        apply_primitive("text", "zoom.warp", [])
    with pytest.raises(InputError, match="'zoom.warp'"):
        remove_primitive("text", "zoom.warp", [])
    with pytest.raises(InputError, match="expected text"):
        apply_primitive(42, "zoom.zoom_in", [])
    with pytest.raises(InputError, match="single string"):
        apply_primitive("text", "zoom.zoom_in", "zoom.zoom_out")


# -- loading other vocabulary files --------------------------------------------------------------------

@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["groups"][0].update(sub_aspect="nonexistent"), "sub_aspect"),
    (lambda d: d["groups"][1].update(id=d["groups"][0]["id"]), "duplicate group id"),
    (lambda d: d["groups"][0]["primitives"][0].update(phrase="No period"), "phrase"),
    (lambda d: d["groups"][0]["primitives"][0].update(definition="  "), "definition"),
    (lambda d: d["groups"][0].update(select="several"), "select"),
    (lambda d: d["groups"][0]["primitives"].append(dict(d["groups"][0]["primitives"][0])), "duplicate primitive id"),
    (lambda d: d["aspects"].pop(), "aspects"),
    (lambda d: d["groups"][0].update(id="Bad-Id"), "snake_case"),
])
def test_corrupt_vocabulary_is_rejected_with_the_field(raw, tmp_path, mutate, field):
    data = copy.deepcopy(raw)
    mutate(data)
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=field):
        load_vocabulary(path)


def test_vocabulary_file_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_vocabulary(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid"):
        load_vocabulary(bad)
    with pytest.raises(InputError, match="JSON object"):
        Vocabulary.from_dict([1, 2])


def test_to_dict_round_trips(vocab):
    again = Vocabulary.from_dict(vocab.to_dict())
    assert again == vocab
    camera_only = vocab.to_dict("camera")
    assert [a["name"] for a in camera_only["aspects"]] == ["Camera"]
    assert {g["aspect"] for g in camera_only["groups"]} == {"Camera"}


def test_primitives_in_text_finds_inserted_phrases(vocab):
    text, selected = apply_primitive("A quiet street.", "camera_angle.low_angle", [])
    text, selected = apply_primitive(text, "rotation.tilt_up", selected)
    assert vocab.primitives_in_text(text) == ["camera_angle.low_angle", "rotation.tilt_up"]
    assert vocab.primitives_in_text(text, "Spatial") == []
    assert vocab.primitives_in_text("Nothing from the vocabulary here.") == []
