import json
from pathlib import Path

import pytest

from studio.caption import ASPECTS, StructuredCaption
from studio.caption.structured import SCHEMA_VERSION
from studio.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures"


def full_caption() -> StructuredCaption:
    caption = StructuredCaption.load(FIXTURES / "harbor_dolly.json")
    caption.aspects["Camera"].primitives = ["camera_movement.dolly_zoom"]
    caption.aspects["Camera"].reward = 0.73
    caption.aspects["Camera"].reward_text = caption.aspects["Camera"].text
    caption.record_revision("Camera", "Say the zoom direction.", "The camera dollies in while zooming out.", "model")
    caption.provenance.start, caption.provenance.end = 1.5, 6.0
    caption.provenance.models = {"captioner": "tiny/captioner"}
    return caption


def test_json_round_trip_keeps_everything():
    caption = full_caption()
    data = json.loads(caption.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    again = StructuredCaption.from_json(caption.to_json())
    assert again.to_dict() == caption.to_dict()
    assert again.aspects["Camera"].history[0].source == "model"


def test_chai_record_import():
    caption = StructuredCaption.load(FIXTURES / "harbor_dolly.json")
    assert caption.provenance.source == "chai-record"
    assert caption.provenance.clip == "fixture-harbor-dolly"
    assert all(caption.aspects[a].text for a in ASPECTS)


def test_plain_dict_import_accepts_any_case_and_partial_aspects():
    caption = StructuredCaption.from_dict({"camera": "The camera tilts up.", "SUBJECT": "A lighthouse."})
    assert caption.aspects["Camera"].text == "The camera tilts up."
    assert caption.aspects["Subject"].text == "A lighthouse."
    assert caption.aspects["Motion"].text == ""


def test_revision_history_and_undo():
    caption = StructuredCaption.from_plain({"Camera": "The camera pans."})
    caption.record_revision("Camera", "Which direction?", "The camera pans left.")
    caption.record_revision("Camera", "How fast?", "The camera pans left quickly.", source="model")
    assert [r.after for r in caption.aspects["Camera"].history] == ["The camera pans left.", "The camera pans left quickly."]
    assert caption.undo("Camera") and caption.aspects["Camera"].text == "The camera pans left."
    assert caption.undo("Camera") and caption.aspects["Camera"].text == "The camera pans."
    assert not caption.undo("Camera")


def test_reward_goes_stale_when_the_text_changes():
    caption = full_caption()
    camera = caption.aspects["Camera"]
    assert not camera.reward_is_current  # the revision changed the text after scoring
    camera.reward_text = camera.text
    assert camera.reward_is_current


@pytest.mark.parametrize("payload, field", [
    ('{"Lighting": "soft"}', "Lighting"),
    ('{"Camera": ["pans"]}', "Camera"),
    ('{"Camera": null}', "Camera"),
    ('"just text"', "caption"),
    ('{"Camera": ""}', "caption"),
    ('{"input_captions": "x"}', "input_captions"),
    ('{"input_captions": {"Camera": 1}}', "input_captions.Camera"),
    ('{"schema": "other/thing", "schema_version": 1}', "schema"),
    ('{"schema_version": 99}', "schema_version"),
    ('{"schema_version": 1, "aspects": {"Camera": {"text": "x", "colour": 1}}}', "aspects.Camera"),
    ('{"schema_version": 1, "aspects": {"Camera": {"text": "x", "reward": 1.5}}}', "aspects.Camera.reward"),
    ('{"schema_version": 1, "aspects": {"Camera": {"text": "x", "primitives": "dolly"}}}', "aspects.Camera.primitives"),
    ('{"schema_version": 1, "aspects": {"Camera": {"history": [3]}}}', "aspects.Camera.history[0]"),
    ('{"schema_version": 1, "provenance": {"start": 5, "end": 2}}', "provenance.end"),
    ('{"schema_version": 1, "aspects": {"Mood": "calm"}}', "aspects.Mood"),
    ('{oops', "caption"),
    ('{"schema_version": true}', "schema_version: expected a number, got true/false"),
    ('{"schema_version": 1, "colour": "red"}', "caption: unknown field(s) colour"),
    ('{"schema_version": 1, "aspects": {"Camera": 3}}', "aspects.Camera: expected text or a JSON object"),
    ('{"schema_version": 1, "provenance": {"start": true}}', "provenance.start: expected a number"),
    ('{"schema_version": 1, "provenance": {"models": {"captioner": 1}}}', "provenance.models.captioner: expected text"),
    ('{"schema_version": 1, "provenance": {"camera": "x"}}', "provenance: unknown field(s) camera"),
])
def test_bad_input_names_the_field(payload, field):
    with pytest.raises(InputError) as info:
        StructuredCaption.from_json(payload)
    assert str(info.value).startswith(field), str(info.value)


def test_oversized_text_is_rejected():
    with pytest.raises(InputError, match="Camera: text is 7000 characters; the limit is 6000"):
        StructuredCaption.from_plain({"Camera": "x" * 7000})
    with pytest.raises(InputError, match="limit is 100"):
        StructuredCaption.from_plain({"Camera": "x" * 101}, max_chars=100)


def test_load_reports_the_path(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe not utf8")
    with pytest.raises(InputError, match="bad.json"):
        StructuredCaption.load(bad)
    with pytest.raises(InputError, match="no such file"):
        StructuredCaption.load(tmp_path / "missing.json")
