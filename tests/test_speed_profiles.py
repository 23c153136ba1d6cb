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
from studio.generation import load_generator
from studio.generation.presets import get_preset
from studio.generation.profiles import PROFILES, get_profile
from studio.generation.settings import GenerationSettings
from studio.generation.step_caches import StepCache, canonical
from studio.session import GenerateRequest, Limits, Session
from studio.session.events import Done

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "A slow dolly forward along a row of columns at dusk."


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models("wan-ti2v", "finetuned-lora")


@pytest.fixture(scope="module")
def generator(tiny):
    return load_generator(
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
    ("magcache:threshold=-1", "magcache threshold must be between 0 and 1"),
    ("magcache:retention=2", "magcache retention must be between 0 and 1"),
    ("magcache:max_skip=0", "magcache max_skip must be between 1 and 50"),
    ("magcache:ratios=1", "magcache takes threshold=, retention=, max_skip="),
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
                        (["--step-cache", "magcache:speed=2"], "error: step_cache: magcache takes threshold="),
                        (["--step-cache", "magcache"], "error: step_cache: MagCache has no calibration for the "
                                                       "finetuned weights")):
        done = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--tiny", "--tiny-dir",
                               str(tmp_path / "never"), "--settings-dir", str(tmp_path / "settings"), *flags],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and line in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()[-1:]) == 1
        assert not (tmp_path / "never").exists()
    assert "python -m studio calibrate-cache --preset ti2v-5b --tiny" in done.stderr


def attention_calls(generator) -> list[int]:
    """A counter of attention evaluations: a skipped (cached) block never reaches its attention."""
    count = [0]
    for transformer in generator.models.baseline_transformers:
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
        frames[spec] = generator.renderer.render(PROMPT, settings).finetuned
        evaluated[spec] = count[0]
    blocks, sides, guidance = len(generator.models.baseline_transformers[0].blocks), 2, 2
    assert evaluated[""] == 10 * blocks * sides * guidance  # every step, block, side and guidance branch
    assert evaluated["first-block:threshold=1"] <= 0.6 * evaluated[""]
    assert evaluated["taylorseer:interval=3,warmup=2"] <= 0.6 * evaluated[""]
    assert all((frames[spec] != frames[""]).any() for spec in evaluated if spec)  # and they change the output
    # A cache is on for one loop only: the next plain run computes everything again.
    count[0] = 0
    generator.renderer.render(PROMPT, GenerationSettings.from_user(preset, frames=9, steps=10, seed=3))
    assert count[0] == evaluated[""]


def test_calibrate_cache_writes_each_models_ratios_and_magcache_then_skips_blocks(tiny, generator, tmp_path):
    """`calibrate-cache` on the tiny TI2V checkpoints: one file per model (the LoRA finetune has its own
    ratios), then a MagCache run on those weights evaluates fewer blocks and records which file it used."""
    settings_dir = tmp_path / "settings"
    done = subprocess.run([sys.executable, "-m", "studio", "calibrate-cache", "--preset", "ti2v-5b", "--tiny",
                           "--tiny-dir", str(Path(tiny["wan-ti2v"]).parent), "--steps", "10", "--device", "cpu",
                           "--settings-dir", str(settings_dir)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    written = [Path(line) for line in done.stdout.split()]
    assert sorted(p.parent for p in written) == [settings_dir / "magcache"] * 2
    records = {record["model"]: record for record in (json.loads(p.read_text()) for p in written)}
    assert set(records) == {"baseline", "finetuned"}
    for record in records.values():
        assert record["steps"] == 10 and len(record["ratios"]) == 1 and len(record["ratios"][0]) == 10
        assert record["ratios"][0][0] == 1.0 and all(0.5 < r < 2.0 for r in record["ratios"][0])
    assert records["baseline"]["ratios"] != records["finetuned"]["ratios"]  # the adapter changes them

    # The fixture's generator loads the same folders from their own paths: found by location and hash.
    generator.models.settings_dir = settings_dir
    count = attention_calls(generator)
    preset = get_preset("ti2v-5b", tiny=True)
    plain = GenerationSettings.from_user(preset, frames=9, steps=10, seed=3)
    count[0] = 0
    expected = generator.renderer.render(PROMPT, plain).finetuned
    full = count[0]
    cached = plain.replace(step_cache=canonical("magcache:threshold=0.5"))
    count[0] = 0
    result = generator.generate(PROMPT, cached, out_dir=tmp_path / "runs")
    assert count[0] <= 0.6 * full  # skipped steps never reach their blocks
    sides = json.loads(result.run_json.read_text())["comparison"]["sides"]
    by_model = {json.loads(path.read_text())["model"]: path for path in written}
    assert {side["model"]: side["step_cache_calibration"] for side in sides} == {
        model: str(path) for model, path in by_model.items()}
    # A threshold of 0 never skips: the same blocks as the plain run, and the same frames.
    count[0] = 0
    again = generator.renderer.render(PROMPT, plain.replace(step_cache=canonical("magcache:threshold=0"))).finetuned
    assert count[0] == full and (again == expected).all()


def test_a_magcache_calibration_is_found_by_weights_and_nearest_steps(tmp_path):
    from studio.generation.calibration import find_calibration, save_calibration

    weights = tmp_path / "transformer.safetensors"
    weights.write_bytes(b"weights one")
    for steps in (10, 20):
        save_calibration(tmp_path, "ti2v-5b", False, "baseline", str(weights), steps, [[1.0] * steps])
    nearest = {steps: find_calibration(tmp_path, "ti2v-5b", False, "baseline", str(weights), steps).steps
               for steps in (4, 12, 15, 16, 50)}
    assert nearest == {4: 10, 12: 10, 15: 20, 16: 20, 50: 20}  # a tie takes the finer calibration
    with pytest.raises(InputError, match="no calibration for the finetuned weights"):
        find_calibration(tmp_path, "ti2v-5b", False, "finetuned", str(weights), 10)
    with pytest.raises(InputError, match=r"calibrate-cache --preset t2v-a14b` first"):
        find_calibration(tmp_path, "t2v-a14b", False, "baseline", str(weights), 10)
    weights.write_bytes(b"weights two")  # retrained in place: the old ratios no longer describe it
    with pytest.raises(InputError, match="changed since MagCache was calibrated") as caught:
        find_calibration(tmp_path, "ti2v-5b", False, "baseline", str(weights), 10)
    assert caught.value.field == "step_cache"


def test_magcache_calibrates_each_a14b_expert_over_the_steps_it_runs(tmp_path, tiny_models):
    """Two experts: each gets its own ratios, as long as the steps it denoises, and a MagCache run
    gives each its own step count (diffusers interpolates the ratios to it)."""
    from studio.generation.calibration import find_calibration, save_calibration

    folders = tiny_models("wan-a14b")
    a14b = load_generator(StudioConfig(baseline=str(folders["wan-a14b"]), device="cpu",
                                                        settings_dir=tmp_path / "settings"), "t2v-a14b")
    preset = get_preset("t2v-a14b", tiny=True)
    settings = GenerationSettings.from_user(preset, frames=5, steps=8, seed=2)
    high, low = a14b.renderer.expert_steps(settings)
    assert high + low == 8 and high > 0 and low > 0
    ratios = a14b.renderer.calibrate_magcache("baseline", PROMPT, settings)
    assert [len(r) for r in ratios] == [high, low]
    save_calibration(a14b.models.settings_dir, "t2v-a14b", True, "baseline", a14b.models.baseline_location, 8, ratios)
    assert len(find_calibration(a14b.models.settings_dir, "t2v-a14b", True, "baseline", a14b.models.baseline_location, 12).ratios) == 2
    count = [0]
    for transformer in a14b.models.baseline_transformers:
        for block in transformer.blocks:
            block.attn1.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    for spec in ("", "magcache:threshold=0.5,retention=0"):
        count[0] = 0
        a14b.renderer.render_sides(a14b.plan(PROMPT)[1], settings.replace(step_cache=canonical(spec)))
        if not spec:
            full = count[0]
    assert count[0] < full


def test_every_profile_runs_end_to_end_and_a_kept_draft_renders_final(tiny, tmp_path):
    config = StudioConfig(tiny=True, tiny_dir=Path(tiny["wan-ti2v"]).parent, device="cpu", output_dir=tmp_path)
    session, limits = Session(config), Limits.from_config(config)
    runs = {}
    for name in PROFILES:
        request = GenerateRequest.from_user(limits, PROMPT, "ti2v-5b", locations=session.locations, seed=5,
                                            profile=name)
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
    compiled = load_generator(config, "ti2v-5b")
    transformer = compiled.models.baseline_transformers[0]
    assert compiled.models.compiled and all(block._compiled_call_impl is not None for block in transformer.blocks)
    plain = load_generator(config.replace(compile=False), "ti2v-5b")
    assert not plain.models.compiled and plain.models.baseline_transformers[0].blocks[0]._compiled_call_impl is None
    assert plain.models.attention_backend == "native" == compiled.models.attention_backend  # auto on a CPU
    assert StudioConfig.from_env({"CHAI_STUDIO_COMPILE": "1"}).compile is True


def test_fp8_without_torchao_is_one_line_naming_the_extra_before_anything_loads(tmp_path):
    # torchao hidden the way Python hides a module (None in sys.modules): the test means the same
    # whether or not the machine has the extra installed.
    hide = "import sys; sys.modules['torchao'] = None; from studio.cli import main; sys.exit(main(sys.argv[1:]))"
    for command in (["generate", "--prompt", PROMPT], ["calibrate-cache"]):
        done = subprocess.run([sys.executable, "-c", hide, *command, "--tiny", "--tiny-dir", str(tmp_path / "never"),
                               "--precision", "fp8"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: precision: fp8 weights need torchao") and "pip install '.[fp8]'" in last
        assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()
    bad = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--precision", "fp4"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'fp4'" in bad.stderr


def test_the_precision_is_recorded_and_from_run_loads_it_again(generator, tmp_path, monkeypatch):
    from studio.commands.generate import request_from_run
    from studio.generation.precision import check_precision

    result = generator.generate(PROMPT, GenerationSettings.from_user(get_preset("ti2v-5b", tiny=True), seed=4),
                                out_dir=tmp_path)
    record = json.loads(result.run_json.read_text())
    assert record["runtime"]["precision"] == "default" == generator.models.precision
    record["runtime"]["precision"] = "fp8"  # as a run made with --precision fp8 records it
    result.run_json.write_text(json.dumps(record))
    session, _, _ = request_from_run(result.run_dir, StudioConfig(device="cpu", output_dir=tmp_path))
    assert session.config.precision == "fp8"
    monkeypatch.setitem(sys.modules, "torchao", None)
    with pytest.raises(InputError, match=r"install the studio's fp8 extra \(pip install '.\[fp8\]'"):
        check_precision(session.config.precision)


def test_sequence_parallelism_is_refused_in_one_line_before_anything_loads(tmp_path):
    from studio.generation.hardware import check_parallel

    done = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--tiny", "--tiny-dir",
                           str(tmp_path / "never"), "--parallel", "sequence", "--device", "cpu"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: parallel: sequence parallelism splits one side over two CUDA GPUs; this machine has 0")
    assert not (tmp_path / "never").exists()
    check_parallel("off", 0)
    with pytest.raises(InputError, match=r"needs one process per GPU \(torchrun\)") as caught:
        check_parallel("sequence", 2)
    assert caught.value.field == "parallel"
