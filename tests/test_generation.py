"""Side-by-side generation on the tiny Wan2.2 checkpoints (real pipelines, random weights)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import (
    PRESETS,
    Cancelled,
    GenerationSettings,
    list_runs,
    load_generator,
    load_run,
    load_run_from_video,
    load_tokenizer,
)
from studio.generation.outputs import BASELINE_LABEL, FINETUNED_LABEL
from studio.video import first_frame

TI2V = PRESETS["ti2v-5b"]
A14B = PRESETS["t2v-a14b"]
PROMPT = "a woman walks slowly across a wide street at night, camera tracks left"


@pytest.fixture(scope="session")
def tiny(tiny_models):
    return tiny_models("wan-ti2v", "wan-a14b", "finetuned-transformer", "finetuned-lora", "finetuned-lora-a14b")


def _generator(tiny, preset, finetuned, **config):
    base = tiny["wan-ti2v" if preset == "ti2v-5b" else "wan-a14b"]
    return load_generator(
        StudioConfig(baseline=str(base), finetuned=str(finetuned), device="cpu", **config), preset)


@pytest.fixture(scope="session")
def lora_gen(tiny):
    return _generator(tiny, "ti2v-5b", tiny["finetuned-lora"])


@pytest.fixture(scope="session")
def full_gen(tiny):
    return _generator(tiny, "ti2v-5b", tiny["finetuned-transformer"])


@pytest.fixture(scope="session")
def a14b_gen(tiny):
    return _generator(tiny, "t2v-a14b", tiny["finetuned-lora-a14b"])


def small(preset=TI2V, **overrides):
    values = {"frames": 9, "height": 64, "width": 64, "steps": 3, "seed": 7}
    values.update(overrides)
    return GenerationSettings.from_user(preset, **values)


# -- generation ---------------------------------------------------------------------------------------
def test_lora_run_writes_a_complete_run_directory(lora_gen, tmp_path):
    steps = []
    result = lora_gen.generate(PROMPT, small(preview_every=2), out_dir=tmp_path,
                               on_step=lambda model, step, total, preview: steps.append((model, step, total, preview)))
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"baseline.mp4", "finetuned.mp4", "side_by_side.mp4", "run.json",
            "baseline.png", "finetuned.png", "side_by_side.png"} <= files
    assert [(m, s, t) for m, s, t, _ in steps] == [("baseline", i, 3) for i in (1, 2, 3)] + \
        [("finetuned", i, 3) for i in (1, 2, 3)]
    previews = [p for *_, p in steps if p is not None]
    assert len(previews) == 4 and all(isinstance(p, Image.Image) for p in previews)

    record = json.loads(result.run_json.read_text())
    assert record["prompt"] == PROMPT and record["seed"] == 7 == result.seed
    assert record["settings"]["num_frames"] == 9 and record["settings"]["steps"] == 3
    assert record["models"]["finetuned"]["kind"] == "lora" and record["models"]["finetuned"]["lora_scale"] == 1.0
    assert record["models"]["baseline"]["location"].endswith("wan-ti2v")
    assert {"torch", "diffusers", "transformers"} <= set(record["versions"])
    assert {"encode_s", "baseline_denoise_s", "finetuned_denoise_s", "total_s"} <= set(record["timings"])

    import av

    with av.open(str(result.finetuned_video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert int(stream.average_rate) == 24
        assert sum(1 for _ in container.decode(stream)) == 9
    with av.open(str(result.side_by_side_video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
        assert frame.shape[1] > 2 * 64  # both halves and the gap
    loaded = load_run_from_video(result.side_by_side_video)
    assert loaded["prompt"] == PROMPT and loaded["settings"] == result.settings
    assert load_run(result.run_dir)["settings"] == result.settings
    assert [r.run_dir for r in list_runs(tmp_path)] == [result.run_dir]
    start = first_frame(result.baseline_video)  # the start image a rerun from this video would use
    assert start.size == (64, 64) and start.mode == "RGB"
    with pytest.raises(InputError, match="not a clip type"):
        first_frame(result.run_json)
    # A second run with the same prompt gets its own directory.
    again = lora_gen.generate(PROMPT, small(), out_dir=tmp_path)
    assert again.run_dir != result.run_dir and len(list_runs(tmp_path)) == 2


def test_same_seed_reproduces_and_models_differ(lora_gen):
    first = lora_gen.renderer.render(PROMPT, small())
    second = lora_gen.renderer.render(PROMPT, small())
    other_seed = lora_gen.renderer.render(PROMPT, small(seed=8))
    assert np.array_equal(first.baseline, second.baseline) and np.array_equal(first.finetuned, second.finetuned)
    assert np.abs(first.baseline - first.finetuned).mean() > 1e-3
    assert np.abs(first.baseline - other_seed.baseline).mean() > 1e-3


def test_lora_scale_zero_gives_the_baseline(lora_gen):
    try:
        lora_gen.models.set_lora_scale(0.0)
        pair = lora_gen.renderer.render(PROMPT, small())
        assert np.allclose(pair.baseline, pair.finetuned, atol=1e-6)
    finally:
        lora_gen.models.set_lora_scale(1.0)


def test_shared_components_and_lora_shares_base_weights(lora_gen, full_gen):
    for gen in (lora_gen, full_gen):
        baseline_pipe = gen.renderer._pipeline("baseline", small(), None)
        finetuned_pipe = gen.renderer._pipeline("finetuned", small(), None)
        assert baseline_pipe.vae is finetuned_pipe.vae is gen.models.vae is gen.renderer.encoder_pipe.vae
        assert gen.renderer.encoder_pipe.text_encoder is gen.models.text_encoder and gen.renderer.encoder_pipe.tokenizer is gen.models.tokenizer
        assert baseline_pipe.scheduler is not finetuned_pipe.scheduler  # per-run state
        assert baseline_pipe.scheduler.config == finetuned_pipe.scheduler.config
    assert lora_gen.models.finetuned_transformers[0] is lora_gen.models.baseline_transformers[0]
    assert full_gen.models.finetuned_transformers[0] is not full_gen.models.baseline_transformers[0]
    # Resident bytes: LoRA keeps one transformer, the full finetune two.
    transformer = sum(p.numel() * p.element_size() for p in full_gen.models.baseline_transformers[0].parameters())
    assert full_gen.models.resident_bytes() - lora_gen.models.resident_bytes() > 0.9 * transformer


def test_text_encoder_runs_once_and_matches_the_plain_pipeline(full_gen):
    from diffusers import WanPipeline

    calls = []
    handle = full_gen.models.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        settings = small()
        pair = full_gen.renderer.render(PROMPT, settings)
        assert len(calls) == 1
        scheduler = full_gen.models.scheduler_class.from_config(full_gen.models.scheduler_config, flow_shift=settings.shift)
        plain = WanPipeline(tokenizer=full_gen.models.tokenizer, text_encoder=full_gen.models.text_encoder, vae=full_gen.models.vae,
                            scheduler=scheduler, transformer=full_gen.models.baseline_transformers[0], expand_timesteps=True)
        plain.set_progress_bar_config(disable=True)
        reference = plain(prompt=PROMPT, negative_prompt=settings.negative_prompt, height=64, width=64, num_frames=9,
                          num_inference_steps=3, guidance_scale=settings.guidance,
                          generator=torch.Generator().manual_seed(settings.seed), output_type="np").frames[0]
        assert np.array_equal(reference, pair.baseline)
    finally:
        handle.remove()


def test_concurrent_runs_match_sequential_runs(full_gen):
    """The two-GPU path (both denoising loops in threads) exercised with CPU devices."""
    from studio.generation.hardware import Placement

    sequential = full_gen.renderer.render(PROMPT, small())
    saved = full_gen.models.placement
    full_gen.models.placement = Placement("gpu", "cpu", "cpu", concurrent=True)
    try:
        concurrent = full_gen.renderer.render(PROMPT, small())
    finally:
        full_gen.models.placement = saved
    assert "denoise_wall_s" in concurrent.timings
    assert np.array_equal(sequential.baseline, concurrent.baseline)
    assert np.array_equal(sequential.finetuned, concurrent.finetuned)


def test_full_finetune_differs_and_reports_kind(full_gen, tmp_path):
    result = full_gen.generate(PROMPT, small(), out_dir=tmp_path)
    record = json.loads(result.run_json.read_text())
    assert record["models"]["finetuned"]["kind"] == "diffusers"
    assert record["models"]["finetuned"]["lora_scale"] is None
    pair = full_gen.renderer.render(PROMPT, small())
    assert np.abs(pair.baseline - pair.finetuned).mean() > 1e-3


def test_transformer_safetensors_file_finetune(tiny):
    weights = tiny["finetuned-transformer"] / "transformer" / "diffusion_pytorch_model.safetensors"
    gen = _generator(tiny, "ti2v-5b", weights)
    assert gen.models.finetune.kind == "transformer"
    pair = gen.renderer.render(PROMPT, small(steps=2))
    assert np.abs(pair.baseline - pair.finetuned).mean() > 1e-3


def test_a14b_two_experts_lora_in_both(a14b_gen, tmp_path):
    for transformer in a14b_gen.models.baseline_transformers:
        assert "finetune" in transformer.peft_config
    assert len(a14b_gen.models.baseline_transformers) == 2
    settings = small(A14B, steps=4)
    assert settings.guidance == 4.0 and settings.guidance_2 == 3.0 and settings.shift == 12.0
    models = []
    result = a14b_gen.generate(PROMPT, settings, out_dir=tmp_path, on_step=lambda m, s, t, p: models.append(m))
    assert models.count("baseline") == 4 == models.count("finetuned")
    assert json.loads(result.run_json.read_text())["settings"]["guidance_2"] == 3.0
    with pytest.raises(InputError, match="text only"):
        a14b_gen.renderer.render(PROMPT, settings, image=Image.new("RGB", (64, 64), "red"))


def test_image_conditioning_changes_the_videos(lora_gen, tmp_path):
    image = Image.new("RGB", (80, 48), (200, 30, 30))
    plain = lora_gen.renderer.render(PROMPT, small())
    started = lora_gen.renderer.render(PROMPT, small(), image=image)
    again = lora_gen.renderer.render(PROMPT, small(), image=image)
    assert np.array_equal(started.baseline, again.baseline)
    assert np.abs(plain.baseline - started.baseline).mean() > 1e-3
    result = lora_gen.generate(PROMPT, small(), image=image, out_dir=tmp_path, image_source="upload")
    assert (result.run_dir / "start_image.png").is_file()
    assert json.loads(result.run_json.read_text())["image"] == {"source": "upload", "file": "start_image.png",
                                                                "fit": "cover-crop", "source_size": [80, 48]}
    assert Image.open(result.run_dir / "start_image.png").size == (64, 64)  # as conditioned, not as given


def test_cancel_raises_and_writes_nothing(lora_gen, tmp_path):
    cancel = threading.Event()
    seen = []

    def on_step(model, step, total, preview):
        seen.append((model, step))
        cancel.set()

    with pytest.raises(Cancelled, match="cancelled"):
        lora_gen.generate(PROMPT, small(steps=5), on_step=on_step, cancel=cancel, out_dir=tmp_path / "runs")
    assert seen == [("baseline", 1)]
    assert list((tmp_path / "runs").iterdir()) == []  # checked writable before rendering; nothing left in it


@pytest.mark.parametrize("stop_at", [("baseline", 3), ("finetuned", 1)],
                         ids=["after-the-first-sides-last-step", "during-the-second-side"])
def test_cancel_during_the_second_side_keeps_the_finished_first(lora_gen, ui_tiny_dir, tmp_path, stop_at):
    from studio.session import SharedModels
    from studio.session.models import unload_captioner
    from studio.research.judge import check_run_dir, judge_run
    from studio.research.report import run_section
    from studio.research.stats import aggregate, run_row
    from studio.session.runs import RunHistory

    cancel = threading.Event()
    seen = []

    def on_step(side, step, total, preview):
        seen.append((side, step))
        if (side, step) == stop_at:
            cancel.set()

    whole = lora_gen.generate(PROMPT, small(), out_dir=tmp_path / "whole")
    result = lora_gen.generate(PROMPT, small(), on_step=on_step, cancel=cancel, out_dir=tmp_path / "runs")
    assert seen[:3] == [("baseline", 1), ("baseline", 2), ("baseline", 3)] and ("finetuned", 2) not in seen
    assert result.partial and result.missing_sides == ["finetuned"] and [s.key for s in result.sides] == ["baseline"]
    files = sorted(p.name for p in result.run_dir.iterdir())
    assert files == ["baseline.mp4", "baseline.png", "run.json"]  # no finetuned or side-by-side video
    record = json.loads(result.run_json.read_text())
    assert record["partial"] is True
    assert [s["key"] for s in record["comparison"]["missing_sides"]] == ["finetuned"]
    assert [s["key"] for s in record["comparison"]["sides"]] == ["baseline"]
    # the kept side is the very video the uncancelled run made
    whole_record = json.loads(whole.run_json.read_text())
    baseline_hash = {s["key"]: s["frames_sha256"] for s in whole_record["comparison"]["sides"]}["baseline"]
    assert record["comparison"]["sides"][0]["frames_sha256"] == baseline_hash

    # the judge scores the side that is there, and says which is missing
    check_run_dir(result.run_dir)
    try:
        judgement = judge_run(result.run_dir, SharedModels(StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, device="cpu")).captioner())
    finally:
        unload_captioner()  # later test modules expect no shared captioner
    assert [s["key"] for s in judgement["sides"]] == ["baseline"]
    assert judgement["partial"] is True and judgement["missing_sides"] == ["finetuned"]
    assert all(set(row["scores"]) == {"baseline"} for row in judgement["aspects"].values())

    # the report shows it as partial and keeps it out of the paired aggregate
    row = run_row(result.run_dir.name, record, judgement)
    assert row["missing_sides"] == ["finetuned"] and aggregate([row]) == {}
    assert "Partial run: finetuned was cancelled" in run_section(row, tmp_path, tmp_path / "runs")

    # the history lists it, as partial, and a reload says the finetuned side was cancelled
    history = RunHistory(StudioConfig(output_dir=tmp_path / "runs"))
    card, = history.cards()
    assert card.run_id == result.run_dir.name and card.partial and "partial" in card.lines[0]
    assert card.missing == (FINETUNED_LABEL,)
    view = history.reload(card.run_id)
    assert [label for label, _ in view.videos] == [BASELINE_LABEL, f"{FINETUNED_LABEL} (cancelled)"]
    assert view.videos[0][1].endswith("baseline.mp4") and view.videos[1][1] is None and "partial" in view.message


def test_first_block_cache_runs(tiny):
    gen = _generator(tiny, "ti2v-5b", tiny["finetuned-lora"], first_block_cache=0.05)
    pair = gen.renderer.render(PROMPT, small(steps=4))
    assert pair.baseline.shape == (9, 64, 64, 3) and np.isfinite(pair.finetuned).all()


def test_the_shared_generator_is_loaded_once_and_takes_a_new_lora_scale_in_place(tiny):
    from studio.session import SharedModels
    from studio.session.models import unload_generator

    config = StudioConfig(baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu")
    try:
        first = SharedModels(config).generator("ti2v-5b")
        second = SharedModels(config.replace(lora_scale=0.5)).generator("ti2v-5b")
        assert first is second and second.models.lora_scale == 0.5
    finally:
        unload_generator()


def test_tiny_mode_uses_the_tiny_checkpoints_and_tokenizer(tiny):
    config = StudioConfig(tiny=True, tiny_dir=tiny["wan-ti2v"].parent, device="cpu")
    tokenizer = load_tokenizer(config)
    assert tokenizer("a man walks").input_ids == tokenizer("a man walks").input_ids[:3] + [tokenizer.eos_token_id]
    generator = load_generator(config, "ti2v-5b")
    assert generator.models.finetune.kind == "lora" and generator.models.finetune.location.endswith("finetuned-lora")
    assert len(tokenizer) == len(generator.models.tokenizer)


def test_labels_are_the_required_ones():
    assert FINETUNED_LABEL == "CHAI-finetuned Wan2.2" and BASELINE_LABEL == "Zero-shot Wan2.2"


# -- refusals ---------------------------------------------------------------------------------------------
def test_a14b_lora_on_the_5b_is_refused_naming_both(tiny):
    with pytest.raises(InputError) as info:
        _generator(tiny, "ti2v-5b", tiny["finetuned-lora-a14b"])
    message = str(info.value)
    assert "finetuned-lora-a14b" in message and "wan-ti2v" in message and "TI2V-5B" in message


def test_transformer_of_another_shape_is_refused(tiny):
    other = tiny["wan-a14b"] / "transformer" / "diffusion_pytorch_model.safetensors"
    with pytest.raises(InputError, match="does not fit baseline .*wan-ti2v.*shapes"):
        _generator(tiny, "ti2v-5b", other)
    with pytest.raises(InputError, match="does not fit baseline .*wan-ti2v.*attention_head_dim"):
        _generator(tiny, "ti2v-5b", tiny["wan-a14b"])


def test_missing_finetuned_is_refused_and_none_means_no_finetuned_mode(tiny, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        _generator(tiny, "ti2v-5b", tmp_path / "nothing-here")
    # No finetune at all loads (prompt and baseline modes need none) but cannot run finetuned mode.
    plain = load_generator(StudioConfig(baseline=str(tiny["wan-ti2v"]), device="cpu"), "ti2v-5b")
    with pytest.raises(InputError, match="no finetuned weights"):
        plain.renderer.render(PROMPT, small())
    with pytest.raises(InputError, match="mode: finetuned mode needs CHAI-finetuned weights"):
        plain.generate(PROMPT, small(), out_dir=tmp_path, mode="finetuned")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_wrong_preset_for_the_baseline_is_refused(tiny):
    with pytest.raises(InputError, match="finetuned-lora does not fit baseline .*wan-a14b .*T2V-A14B"):
        _generator(tiny, "t2v-a14b", tiny["finetuned-lora"])
    with pytest.raises(InputError, match="does not match preset t2v-a14b"):
        load_generator(StudioConfig(baseline=str(tiny["wan-ti2v"]),
                                                     finetuned=str(tiny["finetuned-lora"]), device="cpu"), "t2v-a14b")


def test_bad_requests_are_refused(lora_gen):
    with pytest.raises(InputError, match="prompt"):
        lora_gen.renderer.render("   ", small())
    with pytest.raises(InputError, match="height: must be a multiple of 32"):
        lora_gen.renderer.render(PROMPT, small().replace(height=48))
