"""The page's model-backed steps as plain functions, on the tiny checkpoints: streaming caption,
score/critique/revise bookkeeping, cancel, and model-load failures that keep earlier work."""

from __future__ import annotations

import threading

import pytest

from studio.caption.structured import ASPECTS
from studio.config import StudioConfig
from studio.errors import ModelLoadError, StudioError
from studio.ui import actions, steps
from studio.ui.backends import Backends

TEXTS = ["A dog.", "A park at noon.", "The dog runs left.", "Wide shot, dog centred.", "Static camera."]


@pytest.fixture(scope="module")
def tiny(ui_tiny_dir, tmp_path_factory):
    config = StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, output_dir=tmp_path_factory.mktemp("runs"), device="cpu")
    return config, Backends(config)


def test_caption_streams_and_keeps_the_old_texts_undoable(tiny, reference_clip):
    config, backends = tiny
    base = actions.apply_edits(actions.empty_state(), TEXTS)
    events = list(steps.caption_reference(backends, config, reference_clip, 1.0, 2.0, 2.0, False, base))
    assert not events[0].done and len(events[0].texts) == 5 and events[-1].done
    assert 0 < events[0].fraction < 1
    caption = events[-1].caption
    assert caption.provenance.source == "captioner" and (caption.provenance.start, caption.provenance.end) == (1.0, 2.0)
    assert all(caption.aspects[a].text for a in ASPECTS)
    assert all("\x00" not in caption.aspects[a].text for a in ASPECTS)
    undone, _ = actions.undo(caption.to_dict(), actions.texts_of(caption), "Motion")
    assert undone.aspects["Motion"].text == TEXTS[2]


def test_score_and_revise_update_the_aspect(tiny, reference_clip):
    config, backends = tiny
    state = actions.apply_edits(actions.empty_state(), TEXTS).to_dict()
    scored = steps.score_aspect(backends, config, reference_clip, 0, 1, state, TEXTS, "Camera")
    assert scored.aspects["Camera"].reward_is_current and 0 <= scored.aspects["Camera"].reward <= 1
    revised = steps.revise_aspect(backends, config, reference_clip, 0, 1, scored.to_dict(), TEXTS, "Camera",
                                  "Say how high the camera is.")
    entry = revised.aspects["Camera"]
    assert entry.history[-1].source == "model" and entry.history[-1].before == TEXTS[4]
    assert entry.history[-1].critique == "Say how high the camera is."
    assert "stale" in actions.reward_badge(revised, "Camera") or entry.text == TEXTS[4]
    with pytest.raises(StudioError, match="write a critique for Camera"):
        steps.revise_aspect(backends, config, reference_clip, 0, 1, state, TEXTS, "Camera", "  ")
    with pytest.raises(StudioError, match="the Scene text is empty"):
        steps.suggest_critique(backends, config, reference_clip, 0, 1, state, ["a", "", "", "", ""], "Scene")


def test_cancel_stops_generation_and_writes_nothing(tiny):
    config, backends = tiny
    cancel = threading.Event()
    cancel.set()
    caption = actions.apply_edits(actions.empty_state(), TEXTS)
    with pytest.raises(StudioError, match="cancelled"):
        for _ in steps.generate(backends, config, "A dog runs.", "ti2v-5b", 0.3, "64x64", 2, 5.0, 5.0, 3, False,
                                "", False, None, 0, caption, cancel):
            pass
    assert not any(config.output_dir.iterdir())
    assert actions.texts_of(caption) == TEXTS


def test_a_captioner_that_cannot_load_names_the_setting(tmp_path, reference_clip):
    config = StudioConfig(captioner=str(tmp_path / "missing-captioner"), output_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="--captioner"):
        steps.critique_text(Backends(config), config, reference_clip, 0, 1, "Camera", "Static camera.")


def test_llm_merge_writes_a_prompt_with_the_captioner(tiny):
    config, backends = tiny
    caption = actions.apply_edits(actions.empty_state(), TEXTS)
    prompt, report = steps.compose(backends, config, caption, "LLM merge", 120)
    assert prompt.strip() and report["mode"] == "LLM merge" and "\x00" not in prompt


def test_generation_can_start_from_the_reference_frame(tiny, reference_clip):
    config, backends = tiny
    caption = actions.apply_edits(actions.empty_state(), TEXTS)
    events = list(steps.generate(backends, config, "A dog runs.", "ti2v-5b", 0.3, "64x64", 2, 5.0, 5.0, 5, False, "",
                                 True, reference_clip, 1.0, caption, threading.Event()))
    result = events[-1].result
    assert events[-1].done and result.seed == 5
    assert (result.run_dir / "start_image.png").is_file()
    assert result.finetuned_video.is_file() and result.side_by_side_video.is_file()
    items, ids = steps.history_items(config.output_dir)
    assert ids == [result.run_dir.name] and items[0][0].endswith("side_by_side.png")
    view = steps.reload_run(config.output_dir, result.run_dir.name)
    assert actions.texts_of(view.caption) == TEXTS and view.settings["seed"] == 5
    assert view.finetuned_video.endswith("finetuned.mp4") and view.downloads[0].endswith("side_by_side.mp4")


def test_compose_counts_tokens_with_the_baseline_tokenizer(tiny):
    config, backends = tiny
    caption = actions.apply_edits(actions.empty_state(), TEXTS)
    prompt, report = steps.compose(backends, config, caption, "Extractive", 120)
    assert report["tokens_estimated"] is False
    exact = len(backends.loaded_tokenizer()(prompt)["input_ids"])
    assert report["tokens"] == exact
    assert f"{exact} / 512 tokens" in actions.prompt_meter(prompt, backends.loaded_tokenizer())


def test_worker_yields_reports_in_order_then_the_result_or_the_error():
    worker = steps.Worker("count", lambda report: [report(i) for i in range(3)] and "finished")
    assert list(worker) == [0, 1, 2] and worker.result == "finished"

    def fails(report):
        report("started")
        raise ValueError("the model ran out of memory")

    failing = steps.Worker("fail", fails)
    seen = []
    with pytest.raises(ValueError, match="out of memory"):
        for item in failing:
            seen.append(item)
    assert seen == ["started"]
