"""Tiny mode offers and defaults to sizes the tiny checkpoints handle, and refuses larger ones cleanly.

The limits are read from the checkpoints the tiny builders actually write (their `config.json`),
so a change to the tiny shapes cannot leave the page offering a size the model cannot place on
its rotary position table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import GenerationSettings, get_preset
from studio.generation.presets import size_limits
from studio.session import Done, GenerateRequest, Limits, Session
from studio.session.requests import parse_resolution
from studio.ui.sections.generate import preset_defaults

ROOT = Path(__file__).resolve().parents[1]
TINY_BASELINES = {"ti2v-5b": "wan-ti2v", "t2v-a14b": "wan-a14b"}


def built_limits(folder: Path) -> tuple[int, int]:
    """(max side, max frames) from a written checkpoint's transformer and VAE configs."""
    transformer = json.loads((folder / "transformer" / "config.json").read_text())
    vae = json.loads((folder / "vae" / "config.json").read_text())
    return size_limits(transformer["rope_max_seq_len"], transformer["patch_size"], vae["scale_factor_spatial"],
                       vae["scale_factor_temporal"])


@pytest.fixture(scope="module")
def tiny_root(tiny_models):
    tiny_models("wan-ti2v", "wan-a14b")
    return tiny_models.root


@pytest.mark.parametrize("preset_name", sorted(TINY_BASELINES))
def test_tiny_defaults_and_choices_fit_the_built_checkpoint(tiny_root, preset_name):
    max_side, max_frames = built_limits(tiny_root / TINY_BASELINES[preset_name])
    real = get_preset(preset_name)
    assert max(real.width, real.height) > max_side  # the real default would not fit: the reason for a tiny preset
    tiny = get_preset(preset_name, tiny=True)
    assert (tiny.max_side, tiny.max_frames) == (min(real.max_side, max_side), min(real.max_frames, max_frames))
    defaults = preset_defaults(tiny)  # what the page's sliders and menu offer
    assert len(defaults["resolutions"]) >= 2 and defaults["steps"] == tiny.steps
    for choice in defaults["resolutions"]:
        width, height = parse_resolution(choice)
        assert max(width, height) <= max_side, choice
        assert width % real.size_multiple == 0 and height % real.size_multiple == 0, choice
    settings = GenerationSettings.defaults(tiny, seed=1)
    assert max(settings.width, settings.height) <= max_side and settings.num_frames <= max_frames
    assert settings.steps <= 4  # tiny runs are wiring checks: seconds, not minutes


def test_tiny_preset_refuses_a_size_too_large_naming_the_field():
    tiny = get_preset("ti2v-5b", tiny=True)
    with pytest.raises(InputError) as caught:
        GenerationSettings.from_user(tiny, width=1280, height=704, seed=1)
    message = str(caught.value)
    assert message.startswith("width: must be at most 1024 pixels") and "rope_max_seq_len is 32" in message


def test_tiny_page_generates_at_its_largest_choice(tiny_root, tmp_path):
    config = StudioConfig(tiny=True, tiny_dir=tiny_root, output_dir=tmp_path, device="cpu")
    session = Session(config)
    defaults = preset_defaults(session.locations.preset("ti2v-5b"))
    largest = max(defaults["resolutions"], key=lambda c: max(parse_resolution(c)))
    request = GenerateRequest.from_user(Limits.from_config(config), "A dog runs.", "ti2v-5b",
                                        locations=session.locations,
                                        seconds=defaults["seconds"], resolution=largest, steps=defaults["steps"],
                                        seed=3)
    events = list(session.generate(request, threading.Event()))
    assert isinstance(events[-1], Done)
    result = events[-1].result
    assert (result.settings.width, result.settings.height) == parse_resolution(largest)


def test_generator_refuses_a_size_past_its_position_table(tiny_root, tmp_path):
    """Settings made from the real preset (as a script might) meet the loaded model's own limit."""
    from studio.session import SharedModels

    config = StudioConfig(tiny=True, tiny_dir=tiny_root, device="cpu")
    generator = SharedModels(config).generator("ti2v-5b")
    assert generator.models.size_limits == built_limits(tiny_root / "wan-ti2v")
    settings = GenerationSettings.from_user(get_preset("ti2v-5b"), frames=9, steps=2, seed=1)  # 1280x704
    with pytest.raises(InputError) as caught:
        generator.renderer.render("A dog runs.", settings)
    assert str(caught.value).startswith("width: must be at most 1024 pixels for the transformer of")


def test_cli_tiny_run_at_an_oversized_width_is_one_error_line(tiny_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    result = subprocess.run(
        [sys.executable, "-m", "studio", "generate", "--prompt", "a cat sits", "--tiny", "--tiny-dir", str(tiny_root),
         "--frames", "9", "--width", "1280", "--height", "64", "--steps", "2", "--device", "cpu",
         "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: width: must be at most 1024 pixels"), result.stderr


def test_tiny_mode_is_one_provider_of_model_locations(tmp_path):
    from studio.generation.calibration import planned_locations
    from studio.hub import download_models
    from studio.tiny.locations import model_locations

    tiny = StudioConfig(tiny=True, tiny_dir=tmp_path / "tiny")
    locations = model_locations(tiny)
    # Only naming a location writes nothing: cache keys and calibration look-ups stay instant.
    assert locations.baseline("t2v-a14b", build=False) == str(tmp_path / "tiny" / "wan-a14b")
    assert locations.finetuned("ti2v-5b", build=False) == str(tmp_path / "tiny" / "finetuned-lora")
    assert planned_locations(tiny, "ti2v-5b") == {"baseline": str(tmp_path / "tiny" / "wan-ti2v"),
                                                 "finetuned": str(tmp_path / "tiny" / "finetuned-lora")}
    assert download_models(locations.to_download()) == [] and not (tmp_path / "tiny").exists()
    # A finetune given explicitly still takes the finetuned slot in tiny mode.
    assert model_locations(tiny.replace(finetuned="mine.safetensors")).finetuned("ti2v-5b") == "mine.safetensors"
    built = Path(locations.captioner())
    assert built == tmp_path / "tiny" / "captioner" and (built / ".complete").is_file()

    real = StudioConfig(captioner="org/captioner", baseline=str(tmp_path), finetuned="")
    assert model_locations(real).captioner() == "org/captioner"
    assert model_locations(real).resolved_baseline("ti2v-5b") == str(tmp_path)
    assert model_locations(real).finetuned("ti2v-5b") == "" and model_locations(real).shown("baseline") == str(tmp_path)


def test_everything_tiny_mode_changes_comes_from_its_provider(tmp_path):
    from studio.captioner.packs import DEFAULT_PACK, TINY_PACK, PromptPack
    from studio.gpu_check import PAGE_MODELS, models_on_cpu_message
    from studio.session.finetunes import finetune_choices
    from studio.tiny.locations import model_locations

    tiny_config = StudioConfig(tiny=True, tiny_dir=tmp_path / "tiny")
    real_config = StudioConfig(captioner="org/captioner", baseline="org/wan", finetuned="")
    tiny, real = model_locations(tiny_config), model_locations(real_config)
    # The presets at the sizes each provider's checkpoints take.
    assert tiny.preset("ti2v-5b") == get_preset("ti2v-5b", tiny=True) and tiny.preset("ti2v-5b").tiny
    assert real.preset("t2v-a14b") is get_preset("t2v-a14b")
    for locations in (tiny, real):
        with pytest.raises(InputError) as caught:
            locations.preset("wan-99b")
        assert caught.value.field == "preset" and "unknown preset 'wan-99b'" in str(caught.value)
    # Records name models so they mean the same elsewhere: the settings as given, or tiny:NAME.
    assert (real.recorded("captioner"), real.recorded("baseline", "ti2v-5b")) == ("org/captioner", "org/wan")
    assert (tiny.recorded("captioner"), tiny.recorded("baseline", "t2v-a14b")) == ("tiny:captioner", "tiny:t2v-a14b")
    assert PromptPack.for_config(tiny_config) == PromptPack.load(TINY_PACK)
    assert PromptPack.for_config(real_config) == PromptPack.load(DEFAULT_PACK) != PromptPack.load(TINY_PACK)
    assert finetune_choices(real_config)[0] == ("As started (none set)", "")
    assert finetune_choices(tiny_config.replace(models_dir=tmp_path))[0] == ("As started (the tiny LoRA)", "")
    assert "random-weight" in tiny.notice and real.notice is None
    assert models_on_cpu_message(tiny_config, PAGE_MODELS) is None and not tiny.full_size and real.full_size
    assert not (tmp_path / "tiny").exists()  # none of it built a checkpoint
