"""Settings conversion, placement choices and finetune classification: plain functions, no models."""

from __future__ import annotations

import pytest

from studio.errors import InputError
from studio.generation import PRESETS, GenerationSettings
from studio.generation.finetune import classify_finetuned
from studio.generation.hardware import (
    GIB,
    choose_memory_mode,
    plan_placement,
    resolve_attention_backend,
)
from studio.generation.presets import snap_frames

TI2V = PRESETS["ti2v-5b"]
A14B = PRESETS["t2v-a14b"]


def test_presets_carry_the_published_defaults():
    assert (TI2V.width, TI2V.height, TI2V.frames, TI2V.fps, TI2V.steps, TI2V.guidance, TI2V.shift) == \
        (1280, 704, 121, 24, 50, 5.0, 5.0)
    assert (A14B.frames, A14B.fps, A14B.steps, A14B.guidance, A14B.guidance_2, A14B.boundary_ratio) == \
        (81, 16, 40, 4.0, 3.0, 0.875)
    defaults = GenerationSettings.defaults(TI2V, seed=1)
    assert (defaults.num_frames, defaults.height, defaults.width, defaults.guidance_2) == (121, 704, 1280, None)


def test_duration_becomes_4k_plus_1_frames():
    assert GenerationSettings.from_user(TI2V, duration=2, seed=0).num_frames == 49  # 2 s x 24 fps + 1
    assert GenerationSettings.from_user(TI2V, duration="3.3", seed=0).num_frames == 81
    assert GenerationSettings.from_user(A14B, duration=5, seed=0).num_frames == 81
    assert GenerationSettings.from_user(TI2V, frames=10, seed=0).num_frames == 9
    assert [snap_frames(n) for n in (1, 2, 3, 4, 5, 7, 121)] == [1, 1, 5, 5, 5, 9, 121]


@pytest.mark.parametrize("value", [0, -1, "abc", 60, float("nan")])
def test_bad_duration_is_refused(value):
    with pytest.raises(InputError, match="^duration: "):
        GenerationSettings.from_user(TI2V, duration=value)


def test_sizes_snap_to_the_model_multiple_and_odd_sizes_are_refused():
    settings = GenerationSettings.from_user(TI2V, height=720, width=1270, seed=0)
    assert (settings.height, settings.width) == (704, 1280)
    assert GenerationSettings.from_user(A14B, height=720, seed=0).height == 720
    for value, match in [(7, "at least 32"), (-64, "positive"), (4000, "at most 1280"), ("12.5", "whole number")]:
        with pytest.raises(InputError, match=f"^height: .*{match}"):
            GenerationSettings.from_user(TI2V, height=value)


@pytest.mark.parametrize("field,value,match", [
    ("steps", 0, "between 1 and 200"), ("steps", 500, "between 1 and 200"), ("steps", "ten", "number"),
    ("guidance", -1, "between 0 and 20"), ("shift", 0, "between 0.5 and 30"), ("seed", -5, "-1"),
    ("frames", 500, "between 1 and 121"), ("guidance_2", 3, "one expert"), ("preview_every", -2, "positive"),
])
def test_out_of_range_settings_name_the_field(field, value, match):
    with pytest.raises(InputError, match=f"^{field}: .*{match}"):
        GenerationSettings.from_user(TI2V, **{field: value})


def test_duration_and_frames_together_are_refused():
    with pytest.raises(InputError, match="either"):
        GenerationSettings.from_user(TI2V, duration=2, frames=49)


def test_random_seed_is_drawn_and_reported():
    seeds = {GenerationSettings.from_user(TI2V).seed for _ in range(5)}
    assert all(0 <= s < 2**31 for s in seeds) and len(seeds) > 1
    assert GenerationSettings.from_user(TI2V, seed="42").seed == 42


def test_settings_round_trip():
    settings = GenerationSettings.from_user(A14B, seed=3, steps=12)
    assert GenerationSettings.from_dict(settings.to_dict()) == settings


def test_memory_mode_follows_free_vram():
    resident, largest = 40 * GIB, 12 * GIB
    assert choose_memory_mode(None, resident, largest) == "cpu"
    assert choose_memory_mode(80 * GIB, resident, largest) == "gpu"
    assert choose_memory_mode(30 * GIB, resident, largest) == "model_offload"
    assert choose_memory_mode(12 * GIB, resident, largest) == "group_offload"
    assert choose_memory_mode(80 * GIB, resident, largest, override="group_offload") == "group_offload"
    with pytest.raises(InputError, match="memory_mode: .*needs a CUDA GPU"):
        choose_memory_mode(None, resident, largest, override="gpu")
    with pytest.raises(InputError, match="memory_mode: must be one of"):
        choose_memory_mode(80 * GIB, resident, largest, override="fast")


def test_two_gpus_run_a_full_finetune_concurrently_but_not_a_lora():
    placement = plan_placement([80 * GIB, 80 * GIB], 42 * GIB, 10 * GIB, 12 * GIB)
    assert placement.concurrent and placement.finetuned_device == "cuda:1" and placement.mode == "gpu"
    lora = plan_placement([80 * GIB, 80 * GIB], 32 * GIB, 0, 12 * GIB, shares_base=True)
    assert not lora.concurrent and lora.finetuned_device == "cuda:0"
    single = plan_placement([24 * GIB], 42 * GIB, 10 * GIB, 12 * GIB)
    assert not single.concurrent and single.mode == "model_offload"
    assert plan_placement([], 1, 1, 1).mode == "cpu"


def test_attention_backend_names():
    assert resolve_attention_backend("sdpa", cuda=False) == "native"
    assert resolve_attention_backend("flash", cuda=True) in ("flash", "_native_flash")
    with pytest.raises(InputError, match="attention: .*CUDA"):
        resolve_attention_backend("flash", cuda=False)
    with pytest.raises(InputError, match="attention: must be one of"):
        resolve_attention_backend("magic", cuda=True)
    assert resolve_attention_backend("auto", cuda=False) == "native"  # a CPU always gets PyTorch's SDPA
    import importlib.util

    expected = ("flash" if importlib.util.find_spec("flash_attn") else
                "sage" if importlib.util.find_spec("sageattention") else "native")
    assert resolve_attention_backend("auto", cuda=True) == expected
    for name, package in (("sage", "sageattention"), ("flash3", "kernels"), ("xformers", "xformers")):
        if importlib.util.find_spec(package) is None:
            with pytest.raises(InputError, match=f"attention: .*pip install {package}"):
                resolve_attention_backend(name, cuda=True)
        else:
            assert resolve_attention_backend(name, cuda=True)


def test_finetuned_slot_kinds(tmp_path):
    with pytest.raises(InputError, match="no finetuned weights"):
        classify_finetuned("")
    with pytest.raises(InputError, match="does not exist"):
        classify_finetuned(str(tmp_path / "missing.safetensors"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a .safetensors"):
        classify_finetuned(str(tmp_path / "notes.txt"))
    (tmp_path / "broken.safetensors").write_bytes(b"not really")
    with pytest.raises(InputError, match="not a readable safetensors"):
        classify_finetuned(str(tmp_path / "broken.safetensors"))
    assert classify_finetuned("someone/wan22-chai-finetune").kind == "diffusers"
