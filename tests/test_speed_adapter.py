"""Speed adapters on the tiny Wan2.2 checkpoints: the project's tiny speed LoRA loads under both
sides, beneath a LoRA or full-weight finetune and into both A14B experts. Which adapters are active
is read inside the transformers' forward passes (peft's own state while each side renders), and
the outputs are compared with generators loaded without the adapter. run.json records it,
`--from-run` renders it again, and bad adapters are refused in one line before anything loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import SideBySideGenerator, load_generator
from studio.generation.comparison import plan_sides
from studio.generation.finetune import list_finetunes
from studio.generation.presets import get_preset
from studio.generation.provenance import content_hash
from studio.generation.settings import GenerationSettings
from studio.generation.speed_adapter import SIDECAR_NAME, describe_speed_adapter
from studio.session import GenerateRequest, Limits
from studio.session.speed_adapters import speed_adapter_choices, speed_adapter_defaults, speed_adapter_location
from studio.tiny.locations import model_locations

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "A slow push in on a lighthouse at dusk, waves breaking below."


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models("wan-ti2v", "finetuned-lora", "finetuned-transformer", "speed-lora")


def load(tiny, finetuned: str | None = "finetuned-lora", speed: str | None = "speed-lora") -> SideBySideGenerator:
    config = StudioConfig(baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny[finetuned]) if finetuned else "",
                          speed_adapter=str(tiny[speed]) if speed else "", device="cpu")
    return load_generator(config, "ti2v-5b")


def record_active_adapters(transformers: list) -> list[tuple[int, tuple[str, ...]]]:
    """(which transformer, the adapters peft has active) at every first-block attention call."""
    seen: list[tuple[int, tuple[str, ...]]] = []
    for index, transformer in enumerate(transformers):
        def hook(module, args, output, index=index, transformer=transformer):
            seen.append((index, tuple(transformer.active_adapters())))
        transformer.blocks[0].attn1.register_forward_hook(hook)
    return seen


def settings_for(generator, **given) -> GenerationSettings:
    adapter = generator.models.speed_adapter
    return GenerationSettings.from_user(get_preset("ti2v-5b", tiny=True), frames=5, seed=11,
                                        adapter_defaults=adapter.defaults() if adapter else None, **given)


def render_one(generator, mode: str, settings: GenerationSettings):
    sides = plan_sides(mode, PROMPT, None, generator.models.has_finetune)
    frames, _ = generator.renderer.render_sides(sides, settings)
    return frames[sides[0].key]


def test_the_speed_adapter_stacks_beneath_a_lora_finetune_on_both_sides(tiny):
    stacked = load(tiny)
    base = stacked.models.baseline_transformers[0]
    assert set(base.peft_config) == {"finetune", "speed"}
    settings = settings_for(stacked)
    assert (settings.steps, settings.guidance, settings.shift) == (2, 1.0, 3.0)  # the tiny sidecar's sampling
    seen = record_active_adapters(stacked.models.baseline_transformers)
    pair = stacked.renderer.render(PROMPT, settings)
    # Zero-shot runs first (2 steps, no guidance branch), then the finetuned side.
    assert [active for _, active in seen] == [("speed",)] * 2 + [("speed", "finetune")] * 2
    assert (pair.baseline != pair.finetuned).any()

    # The zero-shot side is exactly the baseline with the speed LoRA alone ...
    speed_only = load(tiny, finetuned=None)
    assert speed_only.renderer.active_adapters("baseline") is None and list(speed_only.models.baseline_transformers[0].peft_config) \
        == ["speed"]
    assert (render_one(speed_only, "baseline", settings) == pair.baseline).all()
    # ... and the speed LoRA changes both sides against the same generator without it.
    finetune_only = load(tiny, speed=None)
    plain = finetune_only.renderer.render(PROMPT, settings)
    assert (plain.baseline != pair.baseline).any() and (plain.finetuned != pair.finetuned).any()


def test_a_full_weight_finetune_gets_the_speed_adapter_too(tiny):
    generator = load(tiny, finetuned="finetuned-transformer")
    baseline, finetuned = generator.models.baseline_transformers[0], generator.models.finetuned_transformers[0]
    assert baseline is not finetuned
    assert list(baseline.peft_config) == ["speed"] and list(finetuned.peft_config) == ["speed"]
    seen = record_active_adapters([baseline, finetuned])
    pair = generator.renderer.render(PROMPT, settings_for(generator))
    assert seen == [(0, ("speed",))] * 2 + [(1, ("speed",))] * 2
    assert (pair.baseline != pair.finetuned).any()


def test_both_a14b_experts_carry_the_speed_adapter(tiny_models):
    tiny = tiny_models("wan-a14b", "finetuned-lora-a14b", "speed-lora-a14b")
    config = StudioConfig(baseline=str(tiny["wan-a14b"]), finetuned=str(tiny["finetuned-lora-a14b"]),
                          speed_adapter=str(tiny["speed-lora-a14b"]), device="cpu")
    generator = load_generator(config, "t2v-a14b")
    assert len(generator.models.baseline_transformers) == 2
    assert all(set(t.peft_config) == {"finetune", "speed"} for t in generator.models.baseline_transformers)
    preset = get_preset("t2v-a14b", tiny=True)
    settings = GenerationSettings.from_user(preset, frames=5, seed=2, steps=4,
                                            adapter_defaults=generator.models.speed_adapter.defaults())
    assert settings.guidance == settings.guidance_2 == 1.0  # no guidance on either expert unless the sidecar says
    seen = record_active_adapters(generator.models.baseline_transformers)
    generator.renderer.render(PROMPT, settings)
    assert {expert for expert, _ in seen} == {0, 1}  # both experts ran, on both sides
    assert {active for _, active in seen} == {("speed",), ("speed", "finetune")}
    by_side = [active for _, active in seen]
    assert set(by_side[:4]) == {("speed",)} and set(by_side[4:]) == {("speed", "finetune")}


def test_the_sidecar_sits_between_explicit_values_and_the_profile(tiny, tmp_path):
    preset = get_preset("ti2v-5b")
    adapter = describe_speed_adapter(str(tiny["speed-lora"]))
    draft = GenerationSettings.from_user(preset, profile="draft", seed=1, adapter_defaults=adapter.defaults())
    assert (draft.steps, draft.guidance, draft.shift, draft.width) == (2, 1.0, 3.0, 864)  # the profile's size
    mine = GenerationSettings.from_user(preset, profile="draft", seed=1, steps=6, guidance=2.5, shift=7,
                                        adapter_defaults=adapter.defaults())
    assert (mine.steps, mine.guidance, mine.shift) == (6, 2.5, 7.0)
    # A LoRA without a sidecar gets Lightning's 4 steps without guidance; the preset's shift stays.
    bare = tmp_path / "bare.safetensors"
    shutil.copy(tiny["speed-lora"] / "pytorch_lora_weights.safetensors", bare)
    plain = describe_speed_adapter(str(bare))
    assert plain.sidecar is None and plain.defaults() == {"steps": 4, "guidance": 1.0}
    # A loose file's sidecar is named after it.
    (tmp_path / f"bare.{SIDECAR_NAME}").write_text('{"steps": 8, "guidance_scale": 1.5}')
    assert describe_speed_adapter(str(bare)).defaults() == {"steps": 8, "guidance": 1.5}


def test_run_json_records_the_adapter_and_from_run_renders_it_again(tiny, tmp_path):
    command = [sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--baseline", str(tiny["wan-ti2v"]),
               "--finetuned", str(tiny["finetuned-lora"]), "--speed-adapter", str(tiny["speed-lora"]),
               "--device", "cpu", "--frames", "5", "--seed", "7", "--profile", "draft", "--out", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stderr
    run_dir = Path(first.stdout.strip().splitlines()[-1])
    record = json.loads((run_dir / "run.json").read_text())
    speed = record["speed_adapter"]
    assert speed["location"] == str(tiny["speed-lora"]) and speed["adapter_name"] == "speed"
    assert speed["sha256"] == content_hash(tiny["speed-lora"] / "pytorch_lora_weights.safetensors")
    assert speed["sidecar"] == str(tiny["speed-lora"] / SIDECAR_NAME)
    assert speed["defaults"] == {"steps": 2, "guidance": 1.0, "shift": 3.0}
    assert speed["used"] == {"steps": 2, "guidance": 1.0, "guidance_2": None, "shift": 3.0}
    assert record["settings"]["steps"] == 2 and record["settings"]["profile"] == "draft"

    # The shell's own speed adapter setting does not leak into a reproduction: the record's is used.
    env = {**os.environ, "CHAI_STUDIO_SPEED_ADAPTER": str(tiny["finetuned-lora"])}
    again = subprocess.run([sys.executable, "-m", "studio", "generate", "--from-run", str(run_dir), "--out",
                            str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert "finetuned identical" in again.stderr and "baseline identical" in again.stderr, again.stderr
    reproduced = json.loads((Path(again.stdout.strip().splitlines()[-1]) / "run.json").read_text())
    assert reproduced["speed_adapter"]["location"] == speed["location"]
    assert reproduced["settings"] == record["settings"]


@pytest.mark.parametrize("make, message", [
    (lambda tiny, tmp: str(tmp / "missing.safetensors"), "missing.safetensors does not exist"),
    (lambda tiny, tmp: str(tiny["finetuned-transformer"]), "is a diffusers model folder, not a LoRA"),
    (lambda tiny, tmp: _write(tmp / "notes.txt", "hello"), "is not a .safetensors file"),
    (lambda tiny, tmp: _write(tmp / "fake.safetensors", "not tensors"), "is not a readable safetensors file"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"steps": 0}'), "steps must be a whole number from 1 to 200"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"steps": 2.5}'), "steps must be a whole number"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"steps": 4, "cfg": 1}'), "unknown key 'cfg'"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"guidance_scale": 1}'), "names no steps"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"steps": 4,'), "is not readable JSON"),
    (lambda tiny, tmp: _with_sidecar(tiny, tmp, '{"steps": 4, "flow_shift": 99}'), "flow_shift must be a number"),
])
def test_bad_speed_adapters_are_refused_by_name_before_loading(tiny, tmp_path, make, message):
    location = make(tiny, tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        GenerateRequest.from_user(Limits.from_config(StudioConfig()), PROMPT, "ti2v-5b",
                                  locations=model_locations(StudioConfig(tiny=True)), speed_adapter=location)
    assert caught.value.field == "speed_adapter"


def test_a_bad_speed_adapter_flag_is_one_error_line_and_nothing_loads(tmp_path):
    done = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--tiny", "--tiny-dir",
                           str(tmp_path / "never"), "--speed-adapter", str(tmp_path / "gone")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: speed_adapter: {tmp_path / 'gone'} does not exist"]
    assert not (tmp_path / "never").exists()


def test_a_speed_lora_for_another_model_does_not_fit_the_baseline(tiny, tiny_models):
    other = tiny_models("speed-lora-a14b")
    config = StudioConfig(baseline=str(tiny["wan-ti2v"]), speed_adapter=str(other["speed-lora-a14b"]), device="cpu")
    with pytest.raises(InputError, match="does not fit baseline .*input size 24 in the baseline but 32") as caught:
        load_generator(config, "ti2v-5b")
    assert caught.value.field == "speed_adapter"


def test_the_models_folder_offers_speed_adapters_apart_from_finetunes(tiny, tmp_path):
    folder = tmp_path / "models"  # a models folder with one finetune and one speed LoRA
    for name in ("finetuned-lora", "speed-lora"):
        shutil.copytree(tiny[name], folder / name)
    config = StudioConfig(models_dir=folder, tiny=True)
    choices = speed_adapter_choices(config)
    assert [value for _, value in choices] == ["", "none", "speed-lora"]
    assert "2 steps, guidance 1, shift 3" in choices[2][0]
    assert "speed-lora" not in {Path(c.location).name for c in list_finetunes(config.models_dir)}
    assert speed_adapter_location(config, "speed-lora") == str(folder / "speed-lora")
    assert speed_adapter_location(config, "none") == "" and speed_adapter_location(config, "") == ""
    assert speed_adapter_defaults(config, "speed-lora") == {"steps": 2, "guidance": 1.0, "shift": 3.0}
    assert speed_adapter_defaults(config, "none") == {}
    for planted in ("finetuned-lora", "../speed-lora", "/etc"):
        with pytest.raises(InputError, match="not one of the speed adapters") as caught:
            speed_adapter_location(config, planted)
        assert caught.value.field == "speed_adapter"
    assert StudioConfig.from_env({"CHAI_STUDIO_SPEED_ADAPTER": "org/lightning"}).speed_adapter == "org/lightning"


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _with_sidecar(tiny, tmp_path: Path, sidecar: str) -> str:
    folder = tmp_path / "speed"
    shutil.copytree(tiny["speed-lora"], folder)
    (folder / SIDECAR_NAME).write_text(sidecar)
    return str(folder)
