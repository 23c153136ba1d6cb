"""The page's plain functions, without Gradio: caption state, pickers, import/export, compose meter,
upload checks, generation guards and run history. Bad inputs must give clear errors and never
lose the caption the user already has."""

from __future__ import annotations

import json
import random
import threading

import pytest

from studio.config import StudioConfig
from studio.errors import InputError, ModelLoadError, StudioError
from studio.ui import actions, steps
from studio.ui.backends import Backends, models_take_turns, tiny_config

TEXTS = [
    "A woman in a red coat holds an umbrella.",
    "A rainy city street at night, lit by shop windows.",
    "She walks slowly toward the camera, then stops.",
    "Medium shot; she stays centred while the street recedes behind her.",
    "The camera is at eye level and dollies backward as she approaches.",
]


def state_with(texts=TEXTS):
    return actions.apply_edits(actions.empty_state(), texts).to_dict()


# -- caption state ----------------------------------------------------------------------------------

def test_edits_become_revisions_and_undo_restores_them():
    state = state_with()
    boxes = actions.texts_of(state)
    assert boxes == TEXTS
    boxes[4] = "The camera tracks left at waist height."
    caption, message = actions.undo(state, boxes, "camera")
    # The unsaved edit counts as the last revision: undo drops it and restores the typed-in text.
    assert caption.aspects["Camera"].text == TEXTS[4]
    assert "undid" in message
    caption, _ = actions.undo(caption.to_dict(), actions.texts_of(caption), "Camera")
    assert caption.aspects["Camera"].text == ""
    caption, message = actions.undo(caption.to_dict(), actions.texts_of(caption), "Camera")
    assert message == "Nothing to undo for Camera."


def test_state_dicts_are_never_mutated():
    state = state_with()
    before = json.dumps(state, sort_keys=True)
    boxes = list(TEXTS)
    boxes[0] = "A man."
    actions.apply_edits(state, boxes)
    actions.undo(state, boxes, "Subject")
    assert json.dumps(state, sort_keys=True) == before


def test_apply_edits_rejects_oversized_text_with_its_aspect():
    with pytest.raises(InputError, match=r"aspects.Scene.text: .*limit is 50"):
        actions.apply_edits(actions.empty_state(), ["a", "x" * 51, "", "", ""], max_chars=50)
    with pytest.raises(InputError, match="expected 5 aspect texts"):
        actions.apply_edits(actions.empty_state(), ["a"])


def test_history_and_reward_badge():
    caption = actions.apply_edits(state_with(), [*TEXTS[:4], "Static camera."])
    markdown = actions.history_markdown(caption, "Camera")
    assert "manual edit" in markdown and "dollies backward" in markdown
    assert actions.history_markdown(actions.empty_state(), "Camera") == "_No revisions yet._"
    assert actions.reward_badge(caption, "Camera") == "Reward: not scored"
    actions.set_reward(caption, "Camera", 0.734)
    assert actions.reward_badge(caption, "Camera") == "Reward: 73% yes"
    caption.aspects["Camera"].text = "Handheld camera."
    assert "stale" in actions.reward_badge(caption, "Camera")


def test_unknown_aspect_is_named():
    with pytest.raises(InputError, match="unknown aspect 'lens'"):
        actions.undo(state_with(), TEXTS, "lens")


# -- primitives -----------------------------------------------------------------------------------

def test_primitive_picker_inserts_then_replaces_within_an_exclusive_group():
    from studio.caption import vocabulary as vocabulary_module

    vocabulary = vocabulary_module.load_vocabulary()
    choices = actions.primitive_choices(vocabulary, "Camera")
    assert choices and all("." in qid for _, qid in choices)
    group = next(g for g in vocabulary.groups_for("Camera") if g.exclusive and len(g.primitives) >= 2)
    first, second = (f"{group.id}.{p.id}" for p in group.primitives[:2])
    state = state_with()
    caption = actions.apply_primitive(state, TEXTS, "camera", first, vocabulary_module)
    phrase1 = vocabulary.primitive(first).phrase
    assert phrase1 in caption.aspects["Camera"].text
    assert caption.aspects["Camera"].primitives == [first]
    caption = actions.apply_primitive(caption.to_dict(), actions.texts_of(caption), "Camera", second,
                                      vocabulary_module)
    text = caption.aspects["Camera"].text
    assert vocabulary.primitive(second).phrase in text and phrase1 not in text
    assert caption.aspects["Camera"].primitives == [second]
    # Each pick is one undoable revision.
    caption, _ = actions.undo(caption.to_dict(), actions.texts_of(caption), "Camera")
    assert phrase1 in caption.aspects["Camera"].text
    assert "**" in actions.primitive_definition(vocabulary, "Camera", first)
    assert group.name in actions.glossary_markdown(vocabulary, "Camera")
    with pytest.raises(InputError, match="pick a primitive"):
        actions.apply_primitive(state, TEXTS, "Camera", None, vocabulary_module)


# -- import / export / presets ---------------------------------------------------------------------

def test_export_then_import_round_trip(tmp_path):
    state = state_with()
    path = actions.export_caption(state, TEXTS, tmp_path)
    assert path.suffix == ".json" and path.parent == tmp_path
    caption = actions.import_caption(path)
    assert actions.texts_of(caption) == TEXTS


def test_import_accepts_a_chai_record(tmp_path):
    record = {"video_id": "clip_001", "input_captions": {"Camera": "Static camera.", "subject": "A dog."}}
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    caption = actions.import_caption(path)
    assert caption.aspects["Camera"].text == "Static camera."
    assert caption.aspects["Subject"].text == "A dog."
    assert caption.provenance.source == "chai-record"


@pytest.mark.parametrize("content, name, message", [
    ("{not json", "bad.json", r"could not import bad.json: .*not valid JSON \(line 1"),
    ('{"Lens": "wide"}', "lens.json", "unknown aspect 'Lens'"),
    ("[1, 2]", "list.json", "expected a JSON object, got a list"),
    ("hello", "notes.txt", "notes.txt is not a .json file"),
])
def test_bad_imports_explain_and_keep_the_current_caption(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    state = state_with()
    with pytest.raises(InputError, match=message):
        steps.import_into(path, state, TEXTS, 6000)
    assert actions.texts_of(state) == TEXTS  # nothing lost


def test_import_replaces_texts_as_undoable_revisions(tmp_path):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({"Camera": "Slow push in."}))
    caption = steps.import_into(path, state_with(), TEXTS, 6000)
    assert caption.aspects["Camera"].text == "Slow push in."
    assert caption.aspects["Subject"].text == ""
    caption, _ = actions.undo(caption.to_dict(), actions.texts_of(caption), "Camera")
    assert caption.aspects["Camera"].text == TEXTS[4]


def test_export_of_an_empty_caption_is_refused(tmp_path):
    with pytest.raises(InputError, match="nothing to export"):
        actions.export_caption(actions.empty_state(), [""] * 5, tmp_path)


def test_presets_load_through_the_shot_library(tmp_path):
    backends = Backends(StudioConfig(output_dir=tmp_path))
    names = [name for _, name in actions.preset_names(backends.presets())]
    assert "dolly_zoom" in names
    caption = steps.load_preset(backends, "dolly_zoom", state_with(), TEXTS, 6000)
    assert not caption.is_empty()
    assert caption.provenance.source == "preset"
    with pytest.raises(InputError, match="choose a preset"):
        steps.load_preset(backends, "", state_with(), TEXTS, 6000)


# -- compose ---------------------------------------------------------------------------------------

def test_compose_modes_and_meter():
    state = state_with()
    prompt, report = actions.compose_prompt(state, TEXTS, "Extractive", 260)
    assert "red coat" in prompt and report["mode"] == "Extractive"
    camera_first, _ = actions.compose_prompt(state, TEXTS, "Camera first", 260)
    assert camera_first.startswith("The camera is at eye level")
    assert "Coverage: Subject" in actions.compose_summary(report)
    meter = actions.prompt_meter(prompt)
    assert f"{len(prompt.split())} words" in meter and "/ 512 tokens" in meter and "within the limit" in meter
    assert "over the limit" in actions.prompt_meter("word " * 700)


def test_compose_with_an_exact_tokenizer_reports_exact_counts():
    def tokenizer(text):
        return {"input_ids": list(range(len(text.split()) + 1))}

    meter = actions.prompt_meter("one two three", tokenizer)
    assert "4 / 512 tokens" in meter and "≈" not in meter


def test_compose_of_an_empty_caption_explains_what_to_do():
    with pytest.raises(InputError, match="every aspect is empty; caption the clip, load a preset or type"):
        actions.compose_prompt(actions.empty_state(), [""] * 5, "Extractive", 260)
    with pytest.raises(InputError, match="unknown composer mode"):
        actions.compose_prompt(state_with(), TEXTS, "Poetic", 260)
    with pytest.raises(InputError, match="LLM merge needs the captioner"):
        actions.compose_prompt(state_with(), TEXTS, "LLM merge", 260)


def test_llm_merge_uses_the_merger_it_is_given():
    prompt, report = actions.compose_prompt(state_with(), TEXTS, "LLM merge", 260,
                                            merger=lambda caption: "  " + caption.aspects["Camera"].text + "  ")
    assert prompt == TEXTS[4] and report["mode"] == "LLM merge"


# -- reference clip checks -------------------------------------------------------------------------

def test_non_video_upload_is_refused_by_name(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="notes.txt is not a video file .* mp4, mov, webm, mkv, avi, m4v"):
        actions.check_upload(notes, 500)
    with pytest.raises(InputError, match="upload a reference clip"):
        actions.check_upload(None, 500)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(InputError, match="big.mp4 is 2 MB; the limit is 1 MB"):
        actions.check_upload(big, 1)


def test_fake_video_is_refused_by_the_reader(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    backends = Backends(StudioConfig(output_dir=tmp_path))
    with pytest.raises(StudioError):
        steps.inspect_reference(backends, fake, backends.config)


def test_trim_range_checks():
    assert actions.check_trim(1, 3, 10, 60) == (1.0, 3.0)
    assert actions.check_trim(0, 0, 10, 60) == (0.0, 10.0)  # end 0 = to the end of the clip
    assert actions.check_trim(2, 50, 10, 60) == (2.0, 10.0)
    with pytest.raises(InputError, match="end .* must be after start"):
        actions.check_trim(3, 2, 10, 60)
    with pytest.raises(InputError, match="past the end"):
        actions.check_trim(12, 14, 10, 60)
    with pytest.raises(InputError, match="the limit is 5 s"):
        actions.check_trim(0, 9, 10, 5)


def test_shot_choices_round_trip():
    class Shot:
        def __init__(self, index, start, end):
            self.index, self.start, self.end = index, start, end

    choices = actions.shot_choices([Shot(0, 0.0, 1.5), Shot(1, 1.5, 4.0)])
    assert choices[1][0] == "Shot 2: 1.50–4.00 s"
    assert actions.parse_shot(choices[1][1]) == (1.5, 4.0)
    assert actions.parse_shot(None) is None


# -- generation guards -----------------------------------------------------------------------------

def test_seed_and_resolution_parsing():
    assert actions.choose_seed(7, False) == 7
    assert actions.choose_seed("12", False) == 12
    assert 0 <= actions.choose_seed(7, True, random.Random(0)) <= actions.MAX_SEED
    with pytest.raises(InputError, match="seed: expected a number, got text 'abc'"):
        actions.choose_seed("abc", False)
    with pytest.raises(InputError, match="seed: must be a whole number"):
        actions.choose_seed(1.5, False)
    # -1 is "random" on the page as in the CLI
    assert 0 <= actions.choose_seed(-1, False, random.Random(0)) <= actions.MAX_SEED
    assert actions.parse_resolution("1280x704") == (1280, 704)
    with pytest.raises(InputError, match="expected WIDTHxHEIGHT"):
        actions.parse_resolution("big")
    with pytest.raises(InputError, match="multiple of 16"):
        actions.parse_resolution("1000x700")


def test_finetuned_mode_without_finetuned_weights_says_what_to_set(tmp_path):
    config = StudioConfig(output_dir=tmp_path)
    caption = actions.apply_edits(actions.empty_state(), TEXTS)
    events = steps.generate(Backends(config), config, "A prompt.", "ti2v-5b", 1, "64x64", 2, 5.0, 5.0, 1, False,
                            "", False, None, 0, caption, threading.Event(), mode="finetuned")
    with pytest.raises(InputError, match="--finetuned PATH .*CHAI_STUDIO_FINETUNED"):
        next(events)
    with pytest.raises(InputError, match="short_prompt: prompt mode compares"):
        next(steps.generate(Backends(config), config, "A prompt.", "ti2v-5b", 1, "64x64", 2, 5.0, 5.0, 1, False,
                            "", False, None, 0, caption, threading.Event(), mode="prompt"))
    assert actions.texts_of(caption) == TEXTS
    with pytest.raises(InputError, match="the prompt is empty"):
        next(steps.generate(Backends(config), config, "  ", "ti2v-5b", 1, "64x64", 2, 5.0, 5.0, 1, False, "",
                            False, None, 0, caption, threading.Event()))


def test_generation_defaults_follow_the_presets():
    labels = dict(steps.generation_presets())
    assert labels["Wan2.2 TI2V-5B"] == "ti2v-5b" and labels["Wan2.2 T2V-A14B"] == "t2v-a14b"
    d = steps.generation_defaults(StudioConfig(), "ti2v-5b")
    assert d["resolution"] == "1280x704" and d["steps"] == 50 and d["max_seconds"] == 5.0
    a = steps.generation_defaults(StudioConfig(), "t2v-a14b")
    assert a["shift"] == 12.0
    tiny = steps.generation_defaults(tiny_config(StudioConfig(tiny=True)), "ti2v-5b")
    assert tiny["resolution"] == "64x64" and tiny["steps"] == 2


def test_zerogpu_duration_grows_with_the_work():
    from studio.ui import zerogpu

    small = steps.zerogpu_duration(4, 1, 64, 64)
    big = steps.zerogpu_duration(50, 5, 1280, 704)
    assert small == zerogpu.OVERHEAD_SECONDS < big <= zerogpu.MAX_DURATION
    assert zerogpu.gpu(10)(len) is len  # a no-op off ZeroGPU


# -- run history -----------------------------------------------------------------------------------

def test_broken_runs_are_left_out_of_history_and_refused_by_name(tmp_path):
    for name, text in {"not-json": "{oops", "not-a-run": '{"prompt": "p"}',
                       "no-settings": '{"schema": "chai-studio/generation-run", "prompt": "p", "seed": 1}',
                       "bad-seed": '{"schema": "chai-studio/generation-run", "prompt": "p", "seed": "x"}'}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(text)
        (tmp_path / name / "side_by_side.png").write_bytes(b"")
    assert steps.history_items(tmp_path) == ([], [])  # a broken run is skipped, not fatal
    assert steps.history_items(tmp_path / "missing") == ([], [])
    with pytest.raises(InputError, match="run not-json does not hold a studio run record"):
        steps.reload_run(tmp_path, "not-json")
    with pytest.raises(InputError, match="run no-settings is a damaged run record: preset"):
        steps.reload_run(tmp_path, "no-settings")
    with pytest.raises(InputError, match="there is no run"):
        steps.reload_run(tmp_path, "missing")


# -- backends --------------------------------------------------------------------------------------

def test_captioner_and_generator_take_turns_only_on_small_gpus():
    assert models_take_turns("cuda", 24.0) and models_take_turns("cuda", 48.0)
    assert not models_take_turns("cuda", 80.0) and not models_take_turns("cuda", 141.0)
    assert not models_take_turns("cpu", 24.0) and not models_take_turns("cuda", None)


def test_tiny_mode_only_sets_the_flag(tmp_path):
    config = tiny_config(StudioConfig(tiny_dir=tmp_path))
    assert config.tiny and config.tiny_dir == tmp_path
    steps.require_finetuned(config)  # tiny mode falls back to the tiny finetune: no error


def test_loader_failures_name_the_settings():
    from studio.ui.backends import _loading

    def offline():
        raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")

    with pytest.raises(ModelLoadError, match=r"could not load the captioner from 'org/model' .*Set --captioner "
                                             r"/ CHAI_STUDIO_CAPTIONER\. If this machine is offline"):
        _loading(offline, "the captioner", "org/model", "--captioner / CHAI_STUDIO_CAPTIONER")

    def no_gpu():
        raise RuntimeError("Found no NVIDIA driver; CUDA is not available")

    with pytest.raises(ModelLoadError, match="set --device cpu"):
        _loading(no_gpu, "the generator", "x", "--baseline")
    with pytest.raises(InputError):  # studio errors already say what to change: passed through
        _loading(lambda: actions.check_prompt(""), "the generator", "x", "--baseline")
