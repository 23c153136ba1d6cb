"""Speed profiles and step caches on the tiny Wan2.2 checkpoints: the work a cache skips is counted
by forward hooks on the blocks' attention (not read from a config), every profile runs end to end,
and a kept draft renders again at the final profile with its seed and prompt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import SideBySideGenerator
from studio.generation.presets import get_preset
from studio.generation.profiles import PROFILES, get_profile
from studio.generation.settings import GenerationSettings
from studio.generation.step_caches import StepCache, canonical
from studio.session import GenerateRequest, Limits, Session
from studio.session.events import Done
from studio.tiny import build_tiny_models

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "A slow dolly forward along a row of columns at dusk."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-speed", only=["wan-ti2v", "finetuned-lora"])


@pytest.fixture(scope="module")
def generator(tiny):
    return SideBySideGenerator.from_config(
        StudioConfig(baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu"), "ti2v-5b")


def test_profiles_scale_the_preset_and_final_is_wan22s_own():
    real = get_preset("ti2v-5b")
    final = GenerationSettings.from_user(real, profile="final", seed=1)
    assert (final.width, final.height, final.num_frames, final.steps, final.step_cache) == (1280, 704, 121, 50, "")
    draft = GenerationSettings.from_user(real, profile="draft", seed=1)
    assert (draft.width, draft.height, draft.num_frames, draft.steps) == (864, 480, 81, 10)
    assert draft.profile == "draft" and draft.step_cache == "taylorseer:interval=3,order=1,warmup=2"
    # Transformer work ~ steps x tokens: the draft is well under a tenth of the final before its cache.
    tokens = lambda s: ((s.num_frames - 1) // 4 + 1) * (s.width // 32) * (s.height // 32)  # noqa: E731
    assert draft.steps * tokens(draft) / (final.steps * tokens(final)) < 0.1
    preview = GenerationSettings.from_user(real, profile="preview", seed=1)
    assert (preview.width, preview.num_frames, preview.steps, preview.step_cache) == (
        1280, 121, 25, "first-block:threshold=0.05")
    a14b = GenerationSettings.from_user(get_preset("t2v-a14b"), profile="draft", seed=1)
    assert (a14b.width, a14b.height) == (848, 480) and a14b.width % 16 == 0
    # Every explicit value wins over the profile's.
    mine = GenerationSettings.from_user(real, profile="draft", steps=4, width=640, height=352, frames=33,
                                        step_cache="none", seed=1)
    assert (mine.steps, mine.width, mine.height, mine.num_frames, mine.step_cache) == (4, 640, 352, 33, "")
    assert set(PROFILES) == {"draft", "preview", "final"} and get_profile(None).name == "final"


@pytest.mark.parametrize("spec, message", [
    ("lightspeed", "unknown step cache 'lightspeed'"),
    ("magcache", "MagCache needs magnitude ratios calibrated"),
    ("first-block:threshold=2", "first-block threshold must be between 0 and 1"),
    ("first-block:speed=1", "first-block takes threshold="),
    ("taylorseer:interval=x", "taylorseer interval must be a number"),
    ("taylorseer:interval=2.5", "taylorseer interval must be a number"),
])
def test_a_bad_step_cache_is_refused_in_one_line(spec, message):
    with pytest.raises(InputError, match=message) as caught:
        StepCache.parse(spec)
    assert caught.value.field == "step_cache"


def test_step_cache_spellings_are_canonical():
    assert canonical("First-Block") == "first-block:threshold=0.08"
    assert canonical("taylorseer:warmup=3") == "taylorseer:interval=3,order=1,warmup=3"
    assert canonical("none") == canonical("") == canonical(None) == ""


def test_bad_profile_and_cache_flags_stop_before_anything_loads(tmp_path):
    for flags, line in ((["--profile", "turbo"], "invalid choice: 'turbo'"),
                        (["--step-cache", "magcache"], "error: step_cache: MagCache needs")):
        done = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--tiny", "--tiny-dir",
                               str(tmp_path / "never"), *flags], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and line in done.stderr, done.stderr
        assert not (tmp_path / "never").exists()


def attention_calls(generator) -> list[int]:
    """A counter of attention evaluations: a skipped (cached) block never reaches its attention."""
    count = [0]
    for transformer in generator.baseline_transformers:
        for block in transformer.blocks:
            block.attn1.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    return count


def test_step_caches_really_skip_block_evaluations(generator):
    count = attention_calls(generator)
    preset = get_preset("ti2v-5b", tiny=True)
    evaluated, frames = {}, {}
    for spec in ("", "first-block:threshold=1", "taylorseer:interval=3,warmup=2"):
        count[0] = 0
        settings = GenerationSettings.from_user(preset, frames=9, steps=10, seed=3, step_cache=spec)
        frames[spec] = generator.render(PROMPT, settings).finetuned
        evaluated[spec] = count[0]
    blocks, sides, guidance = len(generator.baseline_transformers[0].blocks), 2, 2
    assert evaluated[""] == 10 * blocks * sides * guidance  # every step, block, side and guidance branch
    assert evaluated["first-block:threshold=1"] <= 0.6 * evaluated[""]
    assert evaluated["taylorseer:interval=3,warmup=2"] <= 0.6 * evaluated[""]
    assert all((frames[spec] != frames[""]).any() for spec in evaluated if spec)  # and they change the output
    # A cache is on for one loop only: the next plain run computes everything again.
    count[0] = 0
    generator.render(PROMPT, GenerationSettings.from_user(preset, frames=9, steps=10, seed=3))
    assert count[0] == evaluated[""]


def test_every_profile_runs_end_to_end_and_a_kept_draft_renders_final(tiny, tmp_path):
    config = StudioConfig(tiny=True, tiny_dir=Path(tiny["wan-ti2v"]).parent, device="cpu", output_dir=tmp_path)
    session, limits = Session(config), Limits.from_config(config)
    runs = {}
    for name in PROFILES:
        request = GenerateRequest.from_user(limits, PROMPT, "ti2v-5b", tiny=True, seed=5, profile=name)
        runs[name] = next(e for e in session.generate(request) if isinstance(e, Done)).result
        record = json.loads(runs[name].run_json.read_text())
        assert record["settings"]["profile"] == name
        assert record["settings"]["step_cache"] == canonical(PROFILES[name].step_cache)
    draft = runs["draft"]
    command = [sys.executable, "-m", "studio", "generate", "--from-run", str(draft.run_dir), "--out", str(tmp_path)]
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0 and "identical" in again.stderr and "DIFFERENT" not in again.stderr, again.stderr
    final = subprocess.run(command + ["--profile", "final"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert final.returncode == 0, final.stderr
    record = json.loads((Path(final.stdout.strip().splitlines()[-1]) / "run.json").read_text())
    assert record["from_run"] == draft.run_dir.name and record["seed"] == draft.seed
    assert record["prompt"] == PROMPT and record["settings"]["profile"] == "final"
    final_preset = get_preset("ti2v-5b", tiny=True)
    assert (record["settings"]["steps"], record["settings"]["width"]) == (final_preset.steps, final_preset.width)


def test_the_speed_bench_prints_its_measured_ratios():
    done = subprocess.run([sys.executable, "bench/speed.py", "--steps", "10"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    final = next(line for line in lines if line.startswith("final    none"))
    assert " 1.000 " in final
    assert any(line.startswith("goal draft <= 0.1 x final's transformer work: 0.") for line in lines)


def test_compile_is_applied_once_per_loaded_model_and_recorded(tiny):
    """`--compile`: diffusers' regional compilation of the repeated Wan blocks, done when the model is
    loaded (the generator cache key includes it), not per run. Compiled inference is not run here."""
    config = StudioConfig(baseline=str(tiny["wan-ti2v"]), finetuned=str(tiny["finetuned-lora"]), device="cpu",
                          compile=True)
    compiled = SideBySideGenerator.from_config(config, "ti2v-5b")
    transformer = compiled.baseline_transformers[0]
    assert compiled.compiled and all(block._compiled_call_impl is not None for block in transformer.blocks)
    plain = SideBySideGenerator.from_config(config.replace(compile=False), "ti2v-5b")
    assert not plain.compiled and plain.baseline_transformers[0].blocks[0]._compiled_call_impl is None
    assert plain.attention_backend == "native" == compiled.attention_backend  # auto on a CPU
    assert StudioConfig.from_env({"CHAI_STUDIO_COMPILE": "1"}).compile is True
