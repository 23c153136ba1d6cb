"""The shot library: every preset loads, is complete and uses only known primitives."""

from __future__ import annotations

import json
import shutil

import pytest

from studio.caption import ASPECTS, StructuredCaption, load_vocabulary
from studio.caption.structured import SCHEMA, SCHEMA_VERSION
from studio.errors import InputError
from studio.shot_library import PRESETS_DIR, PresetInfo, list_presets, load_preset, save_preset

REQUIRED = ["dolly_zoom", "rack_focus", "dutch_angle", "whip_pan", "crane_up_reveal", "handheld_tracking",
            "arc_orbit", "top_down", "first_person_pov", "fisheye", "slow_motion", "isometric_game"]
# The primitive each signature shot must record, so a preset cannot drift from what it is named for.
SIGNATURE = {
    "dolly_zoom": "dolly_zoom.dolly_in_zoom_out", "rack_focus": "focus_change.rack_focus",
    "dutch_angle": "dutch_angle.fixed", "whip_pan": "rotation.whip_pan", "crane_up_reveal": "translation.crane_up",
    "handheld_tracking": "steadiness.unsteady", "arc_orbit": "arc.arc_counterclockwise",
    "top_down": "camera_angle.bird_eye", "first_person_pov": "point_of_view.first_person",
    "fisheye": "lens_distortion.fisheye", "slow_motion": "video_speed.slow_motion",
    "isometric_game": "point_of_view.isometric_game", "time_lapse": "video_speed.time_lapse",
    "over_the_shoulder": "point_of_view.over_the_shoulder", "drone_flyover": "point_of_view.drone",
}
NAMES = [p.name for p in list_presets()]


def test_library_has_the_required_shots():
    assert len(NAMES) >= 14
    assert set(REQUIRED) <= set(NAMES)
    assert NAMES == sorted(NAMES)
    for info in list_presets():
        assert isinstance(info, PresetInfo) and info.path.parent == PRESETS_DIR and info.title.strip()


@pytest.mark.parametrize("name", NAMES)
def test_preset_is_a_complete_structured_caption(name):
    raw = json.loads((PRESETS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert raw["schema"] == SCHEMA and raw["schema_version"] == SCHEMA_VERSION
    caption = load_preset(name)
    assert isinstance(caption, StructuredCaption)
    assert caption.title.strip() and caption.provenance.source == "preset"
    vocab = load_vocabulary()
    used = []
    for aspect in ASPECTS:
        entry = caption[aspect]
        words = len(entry.text.split())
        assert 40 <= words <= 120, (name, aspect, words)
        assert entry.primitives, (name, aspect)
        assert vocab.validate_primitives(entry.primitives) == entry.primitives  # known ids, no duplicates
        for qualified_id in entry.primitives:
            assert vocab.primitive(qualified_id).aspect == aspect, (name, qualified_id)
        exclusive = [q.split(".")[0] for q in entry.primitives if vocab.group(q.split(".")[0]).exclusive]
        assert len(exclusive) == len(set(exclusive)), (name, aspect, "two picks from a pick-one group")
        used += entry.primitives
    if name in SIGNATURE:
        assert SIGNATURE[name] in used


def test_load_preset_accepts_json_suffix_and_returns_fresh_objects():
    first = load_preset("dolly_zoom.json")
    first["Camera"].text = "changed"
    assert load_preset("dolly_zoom")["Camera"].text != "changed"


@pytest.mark.parametrize("bad", ["no_such_shot", "../etc/passwd", "Dolly Zoom", ""])
def test_unknown_preset_lists_the_known_ones(bad):
    with pytest.raises(InputError) as info:
        load_preset(bad)
    message = str(info.value)
    assert message.startswith("preset:")
    if bad:
        assert repr(bad) in message and "dolly_zoom" in message and "whip_pan" in message


def test_other_directory_missing_and_empty(tmp_path):
    assert list_presets(tmp_path / "missing") == []
    with pytest.raises(InputError, match="no presets in"):
        load_preset("dolly_zoom", tmp_path)


def test_preset_with_unknown_primitive_names_file_and_id(tmp_path):
    data = json.loads((PRESETS_DIR / "fisheye.json").read_text(encoding="utf-8"))
    data["aspects"]["Camera"]["primitives"].append("lens_distortion.pincushion")
    (tmp_path / "broken.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_preset("broken", tmp_path)
    assert "broken.json" in str(info.value) and "'lens_distortion.pincushion'" in str(info.value)


def test_invalid_json_preset_still_lists_but_fails_clearly(tmp_path):
    (tmp_path / "garbled.json").write_text("{oops", encoding="utf-8")
    assert [p.name for p in list_presets(tmp_path)] == ["garbled"]
    with pytest.raises(InputError, match="not valid JSON"):
        load_preset("garbled", tmp_path)


def test_save_preset_round_trip_and_refusals(tmp_path):
    caption = load_preset("whip_pan")
    caption.provenance.source = "manual"
    path = save_preset(caption, "my_whip", tmp_path)
    assert path == tmp_path / "my_whip.json"
    again = load_preset("my_whip", tmp_path)
    assert again.texts() == caption.texts() and again.provenance.source == "preset"
    with pytest.raises(InputError, match="already exists"):
        save_preset(caption, "my_whip", tmp_path)
    save_preset(caption, "my_whip", tmp_path, overwrite=True)
    with pytest.raises(InputError, match="not a valid preset name"):
        save_preset(caption, "../escape", tmp_path)
    with pytest.raises(InputError, match="empty"):
        save_preset(StructuredCaption(), "blank", tmp_path)
    caption["Camera"].primitives = ["zoom.warp"]
    with pytest.raises(InputError, match="'zoom.warp'"):
        save_preset(caption, "other", tmp_path)
    assert not (tmp_path / "other.json").exists()


def test_library_copy_in_tmp_dir_matches(tmp_path):
    shutil.copy(PRESETS_DIR / "top_down.json", tmp_path / "top_down.json")
    assert load_preset("top_down", tmp_path).texts() == load_preset("top_down").texts()
