"""`studio dataset` and `studio train` on the tiny checkpoints: real captioner, VAE, text encoder,
transformer, peft and accelerate code paths; outputs are noise, the files and numbers are real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from clipmaker import write_clip
from studio.cli import main
from studio.config import StudioConfig
from studio.training.dataset import DatasetSpec
from studio.training.stages import build_dataset
from studio.training.folder import read_manifest
from studio.training.flow import flow_batch, flow_loss, shift_sigmas, unshift_sigma

ROOT = Path(__file__).resolve().parents[1]
USER_CAPTION = {"Subject": "A flat red card.", "Scene": "A bare studio wall.", "Motion": "A white bar slides right.",
                "Spatial": "The bar crosses the frame from left to right.",
                "Camera": "The camera holds still at eye level in a medium shot."}
# Wide enough LoRA and a high rate so that a tiny model visibly fits one shot within seconds.
FAST_LORA = ["--rank", "8", "--learning-rate", "1e-2", "--render-every", "0",
             "--target-modules", "to_q,to_k,to_v,to_out.0,ffn.net.0.proj,ffn.net.2,proj_out"]


@pytest.fixture(scope="module")
def tiny(tiny_models) -> Path:
    tiny_models("captioner", "wan-ti2v", "wan-a14b")
    return tiny_models.root


def settings(tiny: Path) -> list[str]:
    return ["--tiny", "--tiny-dir", str(tiny), "--device", "cpu"]


def studio(capsys, *argv) -> tuple[int, str, str]:
    """The CLI in this process (the models' imports are paid once per test session)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "cut.mp4", seconds=2.0, cut_at=1.0)  # two shots
    write_clip(folder / "short.mp4", seconds=1.0)
    write_clip(folder / "handwritten.mp4", seconds=1.25)
    (folder / "twin.mp4").write_bytes((folder / "short.mp4").read_bytes())  # same content: one row only
    (folder / "handwritten.caption.json").write_text(json.dumps(USER_CAPTION))
    (folder / "broken.mp4").write_bytes(b"this is not a video file" * 40)
    (folder / "empty.mp4").write_bytes(b"")  # the clip check's code, "empty-file", is the skip's reason
    return folder


@pytest.fixture(scope="module")
def dataset(tiny, clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset") / "ds"
    code = main(["dataset", str(clips), "--out", str(out), "--max-new-tokens", "8", *settings(tiny)])
    assert code == 0
    return out


def one_shot_dataset(tiny: Path, folder: Path, preset: str = "ti2v-5b") -> Path:
    """One hand-captioned shot (no captioner run): a CSV list with a range and a caption column."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = write_clip(folder / "one.mp4", seconds=1.0)
    (folder / "one.caption.json").write_text(json.dumps(USER_CAPTION))
    (folder / "list.csv").write_text("path,start,end,caption\none.mp4,0,0.9,one.caption.json\n")
    assert main(["dataset", str(folder / "list.csv"), "--out", str(folder / "ds"), "--preset", preset,
                 *settings(tiny)]) == 0
    assert clip.is_file()
    return folder / "ds"


@pytest.fixture(scope="module")
def overfit(tiny, tmp_path_factory) -> Path:
    """A LoRA trained on one shot until it fits it (validation then uses that shot too)."""
    ds = one_shot_dataset(tiny, tmp_path_factory.mktemp("one-shot"))
    out = ds.parent / "lora"
    assert main(["train", str(ds), "--out", str(out), "--steps", "80", "--validate-every", "20",
                 *FAST_LORA, *settings(tiny)]) == 0
    return out


# -- the dataset ---------------------------------------------------------------------------------------

def test_dataset_has_a_row_per_shot_and_a_reason_per_skip(dataset, clips):
    rows = read_manifest(dataset)
    by_clip = {}
    for row in rows:
        by_clip.setdefault(Path(row["clip"]).name, []).append(row)
    assert sorted(by_clip) == ["cut.mp4", "handwritten.mp4", "short.mp4"]
    assert [r["shot"] for r in by_clip["cut.mp4"]] == [0, 1]  # the hard cut splits it
    assert by_clip["cut.mp4"][1]["shot_start"] == pytest.approx(1.0, abs=0.05)
    header = json.loads((dataset / "dataset.json").read_text())
    assert (header["preset"], header["height"], header["width"], header["frames"]) == ("ti2v-5b", 64, 64, 9)
    for row in rows:
        assert {"clip", "start", "end", "caption", "prompt", "rewards", "latents", "clip_sha256"} <= set(row)
        assert row["end"] - row["start"] == pytest.approx(9 / 24, abs=1e-3) and row["prompt"].strip()
        with safe_open(str(dataset / row["latents"]["shard"]), framework="pt") as shard:
            latents = shard.get_tensor(row["latents"]["key"])
            embeds = shard.get_tensor(row["embeddings"]["key"])
        assert list(latents.shape) == row["latents"]["shape"] == [48, 3, 4, 4]  # 9 frames, 64 px, z-48 VAE
        assert embeds.shape == (row["embeddings"]["tokens"], 32) and torch.isfinite(latents.float()).all()
    machine = [r for r in rows if r["caption_source"] == "captioner"]
    assert len(machine) == 3 and all(0 <= v <= 1 for r in machine for v in r["rewards"].values())
    skipped = [json.loads(line) for line in (dataset / "skipped.jsonl").read_text().splitlines()]
    assert [(Path(s["clip"]).name, s["reason"]) for s in skipped] == [("broken.mp4", "unreadable"),
                                                                       ("empty.mp4", "empty-file"),
                                                                       ("twin.mp4", "duplicate")]
    assert "not a readable video" in skipped[0]["detail"]


def test_a_handwritten_caption_wins_over_the_model(dataset):
    row = next(r for r in read_manifest(dataset) if Path(r["clip"]).name == "handwritten.mp4")
    assert row["caption_source"] == "user" and set(row["rewards"].values()) == {None}
    assert {a: v["text"] for a, v in row["caption"]["aspects"].items()} == USER_CAPTION
    assert "white bar slides right" in row["prompt"]


def test_a_second_run_writes_nothing_and_loads_no_model(dataset, clips, tiny):
    manifest = (dataset / "manifest.jsonl").read_bytes()
    shards = {p.name: p.stat().st_mtime_ns for p in (dataset / "shards").iterdir()}
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu")
    spec = DatasetSpec.from_user(config, "ti2v-5b", max_new_tokens=8)
    summary = build_dataset(config, clips, dataset, spec)
    assert (summary.new, summary.kept, summary.loaded_captioner, summary.loaded_encoders) == (0, 4, False, False)
    assert (dataset / "manifest.jsonl").read_bytes() == manifest
    assert {p.name: p.stat().st_mtime_ns for p in (dataset / "shards").iterdir()} == shards


def test_an_interrupted_run_resumes_without_recaptioning(dataset, clips, tiny):
    """A run killed after captioning a shot but before writing its row redoes only the encoding."""
    lines = (dataset / "manifest.jsonl").read_text().splitlines(keepends=True)
    lost = json.loads(lines[-1])
    (dataset / "manifest.jsonl").write_text("".join(lines[:-1]) + lines[-1][:40])  # a half-written line
    (dataset / lost["latents"]["shard"]).unlink()
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu")
    summary = build_dataset(config, clips, dataset, DatasetSpec.from_user(config, "ti2v-5b", max_new_tokens=8))
    assert (summary.new, summary.loaded_captioner, summary.loaded_encoders) == (1, False, True)
    rows = read_manifest(dataset)
    assert [r["key"] for r in rows].count(lost["key"]) == 1 and len(rows) == 4


def test_ray_stages_write_the_same_manifest(dataset, clips, tiny, tmp_path, capsys):
    """Two local Ray actors per stage on the CPU: same rows (bar creation times) and same tensors."""
    out = tmp_path / "ray"
    code, _, err = studio(capsys, "dataset", clips, "--out", out, "--max-new-tokens", 8, "--ray", "--workers", 2,
                          *settings(tiny))
    assert code == 0, err
    import ray

    ray.shutdown()

    def comparable(root: Path) -> list[dict]:
        rows = read_manifest(root)
        for row in rows:
            row["caption"]["provenance"].pop("created")
        return rows

    assert comparable(out) == comparable(dataset)
    for row in read_manifest(out):
        ours, theirs = load_file(out / row["latents"]["shard"]), load_file(dataset / row["latents"]["shard"])
        assert all(torch.equal(ours[k], theirs[k]) for k in ("latents", "prompt_embeds"))
    assert (out / "skipped.jsonl").read_text() == (dataset / "skipped.jsonl").read_text()


def test_best_of_keeps_the_highest_reward(tiny, tmp_path, capsys):
    write_clip(tmp_path / "clip.mp4", seconds=1.0)
    (tmp_path / "list.jsonl").write_text(json.dumps({"path": "clip.mp4", "start": 0, "end": 0.9}) + "\n")
    code, _, err = studio(capsys, "dataset", tmp_path / "list.jsonl", "--out", tmp_path / "ds", "--best-of", 3,
                          "--max-new-tokens", 6, *settings(tiny))
    assert code == 0, err
    [row] = read_manifest(tmp_path / "ds")
    from studio.captioner import Captioner
    from studio.video import sample_clip

    captioner = Captioner.from_pretrained(tiny / "captioner", device="cpu")
    clip = sample_clip(tmp_path / "clip.mp4", row["start"], row["end"], fps=2.0, check_cuts=False)
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu")
    spec = DatasetSpec.from_user(config, "ti2v-5b", best_of=3, max_new_tokens=6)
    seed = int(spec.caption_key(row["clip_sha256"], row["start"], row["end"])[:8], 16)  # as the stage seeds it
    ranked = captioner.best_of_n(clip, "Camera", n=3, seed=seed, max_new_tokens=6)
    assert row["caption"]["aspects"]["Camera"]["text"] == ranked[0][0].strip()
    assert row["rewards"]["Camera"] == pytest.approx(max(r for _, r in ranked))


# -- training -------------------------------------------------------------------------------------------

def test_training_overfits_one_shot_and_writes_a_loadable_lora(overfit):
    rows = [json.loads(line) for line in (overfit / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in rows if r.get("val_loss") is not None]
    assert len(vals) == 5 and vals[-1] <= 0.7 * vals[0], vals
    assert [r["step"] for r in rows if r.get("loss") is not None] == list(range(10, 81, 10))
    assert (overfit / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (overfit / "README.md").read_text()
    assert "base_model:" in card and "Final losses" in card and f"{vals[-1]:.4f}" in card
    summary = json.loads((overfit / "training.json").read_text())
    assert summary["options"]["rank"] == 8 and summary["dataset"]["train_rows"] == 1
    lora = load_file(overfit / "pytorch_lora_weights.safetensors")
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in lora.items())
    from diffusers import WanPipeline

    state = WanPipeline.lora_state_dict(str(overfit / "pytorch_lora_weights.safetensors"))
    assert any(k.startswith("transformer.blocks.0.attn1.to_q.lora_A") for k in state)


def test_the_lora_loads_in_generate_and_changes_the_video(overfit, tiny, tmp_path, capsys):
    code, out, err = studio(capsys, "generate", "--prompt", "A white bar slides right across a red card.",
                            "--finetuned", overfit, "--frames", 9, "--height", 64, "--width", 64, "--steps", 2,
                            "--seed", 3, "--out", tmp_path, *settings(tiny))
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1])

    def frames(name: str) -> np.ndarray:
        with av.open(str(run / name)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])

    assert json.loads((run / "run.json").read_text())["models"]["finetuned"]["kind"] == "lora"
    assert np.abs(frames("finetuned.mp4").astype(int) - frames("baseline.mp4").astype(int)).max() > 0


def video_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)


@pytest.fixture(scope="module")
def alpha_half(tiny, tmp_path_factory) -> tuple[Path, list[str]]:
    """A LoRA trained with alpha 4 at rank 8 (a scale of 0.5) and a validation render at its last
    step, with the order of the main-process work and the barriers recorded as it ran."""
    from accelerate import Accelerator

    from studio.training import artifacts, trainer

    ds = one_shot_dataset(tiny, tmp_path_factory.mktemp("alpha-half"))
    out = ds.parent / "lora"
    events: list[str] = []

    def recorded(name: str, function):
        def wrapper(*args, **kwargs):
            events.append(name)
            return function(*args, **kwargs)
        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.LoraTrainer, "train_step", recorded("step", trainer.LoraTrainer.train_step))
        patch.setattr(trainer.LoraTrainer, "validation_loss", recorded("validate", trainer.LoraTrainer.validation_loss))
        patch.setattr(trainer, "render_validation", recorded("render", trainer.render_validation))
        patch.setattr(artifacts, "write_model_card", recorded("card", artifacts.write_model_card))
        patch.setattr(Accelerator, "wait_for_everyone", recorded("barrier", Accelerator.wait_for_everyone))
        assert main(["train", str(ds), "--out", str(out), "--steps", "3", "--rank", "8", "--alpha", "4",
                     "--learning-rate", "2e-2", "--validate-every", "2", "--render-every", "3", "--render-steps", "2",
                     "--validation-prompts", "1", "--checkpoint-every", "100", *settings(tiny)]) == 0
    return out, events


def test_the_lora_file_holds_its_adapter_config(alpha_half):
    from studio.training.options import DEFAULT_TARGETS

    out, _ = alpha_half
    with safe_open(str(out / "pytorch_lora_weights.safetensors"), framework="pt") as handle:
        header = json.loads(handle.metadata()["lora_adapter_metadata"])
    # diffusers keys each component's config by its name: "transformer." + the LoraConfig field.
    assert (header["transformer.r"], header["transformer.lora_alpha"]) == (8, 4)
    assert sorted(header["transformer.target_modules"]) == sorted(DEFAULT_TARGETS)
    card = (out / "README.md").read_text()
    assert "rank 8, alpha 4 (updates scaled by 0.5)" in card
    assert ", ".join(f"`{t}`" for t in DEFAULT_TARGETS) + " in every transformer block" in card


def test_a_reloaded_lora_renders_what_training_rendered(alpha_half, tiny, tmp_path):
    """Reloaded through the studio's loader, the LoRA keeps alpha / rank = 0.5 and renders the
    validation prompt as the training run did; at the scale a header-less reload would use (1.0)
    the render is visibly another."""
    from studio.generation.finetune import ADAPTER_NAME
    from studio.generation.loading import load_generator
    from studio.generation.presets import get_preset
    from studio.training.folder import read_header
    from studio.training.options import DEFAULT_TARGETS, TrainOptions
    from studio.training.validation_renders import validation_settings

    out, _ = alpha_half
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu", finetuned=str(out))
    generator = load_generator(config, "ti2v-5b")
    transformer = generator.models.finetuned_transformers[0]
    adapter = transformer.peft_config[ADAPTER_NAME]
    assert (adapter.r, adapter.lora_alpha, adapter.target_modules) == (8, 4, set(DEFAULT_TARGETS))
    layers = [m for n, m in transformer.named_modules() if n.endswith(("attn2.to_q", "ffn.net.2"))]
    assert len(layers) == 4 and {m.scaling[ADAPTER_NAME] for m in layers} == {0.5}

    header = read_header(out.parent / "ds")
    options = TrainOptions.from_user(rank=8, alpha=4, render_steps=2)
    settings_0 = validation_settings(get_preset("ti2v-5b", tiny=True), header, options, 0)
    prompt = read_manifest(out.parent / "ds")[0]["prompt"]
    [trained_run] = (out / "validation" / "step-000003").iterdir()
    trained = {side: video_frames(trained_run / f"{side}.mp4") for side in ("baseline", "finetuned")}

    reloaded = generator.generate(prompt, settings_0, out_dir=tmp_path / "again")
    again = {side: video_frames(reloaded.run_dir / f"{side}.mp4") for side in ("baseline", "finetuned")}
    # Same weights, seed and code in float32 on the CPU. The training model's peft layers and the
    # reloaded ones sum in other orders, and a random tiny network amplifies that rounding in a few
    # pixels (measured: up to 15 levels in 5% of them, depending on the threads earlier tests left),
    # so the check is on the whole video: far nearer the trained render than the LoRA's own effect.
    lora_effect = np.abs(trained["finetuned"] - trained["baseline"]).mean()
    assert lora_effect > 1, lora_effect
    assert np.array_equal(again["baseline"], trained["baseline"])  # no adapter: bit-identical
    assert np.abs(again["finetuned"] - trained["finetuned"]).mean() < 0.1 * lora_effect

    generator.models.set_lora_scale(2.0)  # 2 x 0.5: the update a reload that ignored alpha would apply
    doubled = video_frames(generator.generate(prompt, settings_0, out_dir=tmp_path / "doubled").run_dir / "finetuned.mp4")
    assert np.abs(doubled - trained["finetuned"]).mean() > 0.5 * lora_effect


def test_every_rank_meets_at_a_barrier_after_main_process_work(alpha_half):
    """Validation, renders and the model card run on the main process only; a barrier follows each
    before the next training step (or the end), so other ranks never wait inside a gradient all-reduce."""
    _, events = alpha_half
    main_only = {"validate", "render", "card"}
    assert events.count("step") == 3 and {"validate", "render", "card"} <= set(events)
    for index, event in enumerate(events):
        if event in main_only:
            following = events[index + 1:]
            until_next_step = following[: following.index("step")] if "step" in following else following
            assert "barrier" in until_next_step, (index, events)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(dataset, tiny, tmp_path, capsys):
    common = ["--steps", 6, "--checkpoint-every", 2, "--log-every", 1, "--rank", 4, "--render-every", 0,
              "--lr-schedule", "cosine", "--warmup-steps", 1, *settings(tiny)]
    assert studio(capsys, "train", dataset, "--out", tmp_path / "whole", *common)[0] == 0
    code, _, err = studio(capsys, "train", dataset, "--out", tmp_path / "split", "--stop-after", 3, *common)
    assert code == 0 and "stopped at step 3 of 6" in err
    assert not (tmp_path / "split" / "pytorch_lora_weights.safetensors").exists()
    assert studio(capsys, "train", dataset, "--out", tmp_path / "split", "--resume", *common)[0] == 0
    whole = load_file(tmp_path / "whole" / "pytorch_lora_weights.safetensors")
    split = load_file(tmp_path / "split" / "pytorch_lora_weights.safetensors")
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    assert (tmp_path / "whole" / "metrics.jsonl").read_text().count("\n") == 7
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
              for run in ("whole", "split")]
    assert losses[0] == losses[1]


def test_an_a14b_lora_trains_both_experts_and_is_refused_on_the_5b(tiny, tmp_path, capsys):
    ds = one_shot_dataset(tiny, tmp_path / "a14b", preset="t2v-a14b")
    out = tmp_path / "lora-a14b"
    code, _, err = studio(capsys, "train", ds, "--out", out, "--steps", 6, "--rank", 4, "--alpha", 2,
                          "--render-every", 0, "--log-every", 1, *settings(tiny))
    assert code == 0, err
    experts = {json.loads(line).get("expert") for line in (out / "metrics.jsonl").read_text().splitlines()}
    assert experts == {None, "transformer", "transformer_2"}  # step 0 has none; both experts trained
    for name in ("pytorch_lora_weights.safetensors", "pytorch_lora_weights_transformer_2.safetensors"):
        with safe_open(str(out / name), framework="pt") as handle:
            header = json.loads(handle.metadata()["lora_adapter_metadata"])
        assert (header["transformer.r"], header["transformer.lora_alpha"]) == (4, 2), name
    from studio.generation.finetune import ADAPTER_NAME
    from studio.generation.loading import load_generator

    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu", finetuned=str(out))
    generator = load_generator(config, "t2v-a14b")
    assert len(generator.models.finetuned_transformers) == 2
    for expert in generator.models.finetuned_transformers:  # each expert's own file, each at alpha / rank
        assert expert.peft_config[ADAPTER_NAME].lora_alpha == 2
        assert {m.scaling[ADAPTER_NAME] for m in expert.modules() if hasattr(m, "scaling")} == {0.5}
    base = ["--prompt", "A red card.", "--finetuned", out, "--frames", 9, "--height", 64, "--width", 64, "--steps",
            2, "--out", tmp_path / "runs", *settings(tiny)]
    code, _, err = studio(capsys, "generate", *base)
    assert code == 2 and "does not fit baseline" in err and "Traceback" not in err
    code, _, err = studio(capsys, "generate", "--preset", "t2v-a14b", *base)
    assert code == 0, err


def test_two_process_data_parallel_keeps_replicas_identical(dataset, tiny, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): the ranks' LoRA weights agree after every step."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    accelerate = Path(sys.executable).with_name("accelerate")
    result = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "studio", "train", str(dataset),
         "--out", str(tmp_path / "ddp"), "--steps", "4", "--log-every", "1", "--rank", "4", "--render-every", "0",
         *settings(tiny)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()][1:]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert len(row["replica_digests"]) == 2 and row["replica_digests"][0] == row["replica_digests"][1]
    assert len({r["replica_digests"][0] for r in rows}) == 4  # the weights do change each step
    summary = json.loads((tmp_path / "ddp" / "training.json").read_text())
    assert summary["world_size"] == 2


# -- bad input: a clear error before any model loads ------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--rank", "0"], "rank: must be from 1 to 1024"),
    (["--learning-rate", "-1"], "learning_rate: must be more than 0"),
    (["--steps", "many"], "steps: expected a number"),
    (["--batch-size", "9"], "batch_size: is 9 but the dataset has"),
    (["--warmup-steps", "50", "--steps", "10"], "warmup_steps: must be from 0 to the number of steps"),
    (["--target-modules", "to_q,to_nowhere"], "to_nowhere name no Linear layer"),
    (["--preset", "t2v-a14b"], "was built for preset ti2v-5b, not t2v-a14b"),
    (["--val-fraction", "1.5"], "val_fraction: must be between 0 and 1"),
])
def test_bad_training_options_fail_before_loading(dataset, tiny, tmp_path, capsys, args, fragment):
    assert_refused(capsys, tiny, "train", dataset, tmp_path / "lora", args, fragment)


def assert_refused(capsys, tiny: Path, command: str, source: Path, out: Path, args: list, fragment: str) -> None:
    """One `error:` line naming the problem, exit code 2, and no output folder made."""
    code, _, err = studio(capsys, command, source, "--out", out, *args, *settings(tiny))
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert not out.exists()


def test_bad_datasets_are_refused_by_name(dataset, tiny, tmp_path, capsys):
    def refused(folder, fragment):
        code, _, err = studio(capsys, "train", folder, "--out", tmp_path / "lora", *settings(tiny))
        assert code == 2 and fragment in err, err

    refused(tmp_path / "nowhere", "is not a dataset folder")
    (tmp_path / "no-header").mkdir()
    refused(tmp_path / "no-header", "has no dataset.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "dataset.json").write_text((dataset / "dataset.json").read_text())
    refused(empty, "has no manifest.jsonl")
    (empty / "manifest.jsonl").write_text("")
    refused(empty, "has no training shots")
    other = tmp_path / "other-size"
    shutil.copytree(dataset / "shards", other / "shards")
    (other / "dataset.json").write_text((dataset / "dataset.json").read_text())
    rows = read_manifest(dataset)
    rows[1]["height"] = 128
    (other / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(other, "was encoded as ti2v-5b 64x128")
    assert not (tmp_path / "lora").exists()
    # Latents of the TI2V VAE against the A14B transformer: refused from its config, no weights loaded.
    code, _, err = studio(capsys, "train", dataset, "--out", tmp_path / "lora", "--baseline", tiny / "wan-a14b",
                          "--device", "cpu")
    assert code == 2 and "holds 48-channel latents and 32-wide text embeddings, but the baseline transformer " \
        "takes 16 channels" in err, err
    assert not (tmp_path / "lora").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--best-of", "0"], "best_of: must be from 1 to 16"),
    (["--frames", "500"], "frames: must be between 1 and 121"),
    (["--min-shot-seconds", "0.1"], "min_shot_seconds: must be at least the training window"),
    (["--max-new-tokens", "-1"], "max_new_tokens: must be from 1 to 4096"),
])
def test_bad_dataset_options_fail_before_reading_clips(clips, tiny, tmp_path, capsys, args, fragment):
    assert_refused(capsys, tiny, "dataset", clips, tmp_path / "ds", args, fragment)


def test_bad_clip_sources_are_refused(tiny, tmp_path, capsys):
    code, _, err = studio(capsys, "dataset", tmp_path / "missing", "--out", tmp_path / "ds", *settings(tiny))
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = studio(capsys, "dataset", tmp_path / "empty", "--out", tmp_path / "ds", *settings(tiny))
    assert code == 2 and "holds no video files" in err
    (tmp_path / "list.jsonl").write_text('{"path": "a.mp4", "start": 3, "end": 1}\n')
    code, _, err = studio(capsys, "dataset", tmp_path / "list.jsonl", "--out", tmp_path / "ds", *settings(tiny))
    assert code == 2 and "end (1 s) must be after start (3 s)" in err


def test_a_dataset_folder_keeps_its_settings(dataset, clips, tiny, capsys):
    code, _, err = studio(capsys, "dataset", clips, "--out", dataset, "--frames", 13, *settings(tiny))
    assert code == 2 and "was built with other settings (frames 9 here vs 13 now" in err


# -- the objective ------------------------------------------------------------------------------------------

def test_flow_batch_keeps_the_first_frame_clean_for_image_starts():
    latents, noise = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    sigmas = torch.tensor([0.5, 0.8])
    batch = flow_batch(latents, noise, sigmas, torch.tensor([True, False]), per_token=True, patch=(2, 2),
                       num_train_timesteps=1000)
    assert torch.equal(batch.noisy[0, :, 0], latents[0, :, 0])  # clean image latent
    assert torch.allclose(batch.noisy[1, :, 0], 0.2 * latents[1, :, 0] + 0.8 * noise[1, :, 0])
    assert torch.allclose(batch.target, noise - latents)
    assert batch.timestep.shape == (2, 3 * 2 * 2)  # one per token: frames x (4/2) x (4/2)
    assert batch.timestep[0, :4].eq(0).all() and batch.timestep[0, 4:].eq(500).all()
    assert batch.timestep[1].eq(800).all()
    assert flow_loss(batch.target, batch) == 0
    assert batch.weight[0, :, 0].eq(0).all() and batch.weight[1].eq(1).all()


def test_sigma_shift_matches_the_scheduler_and_inverts():
    from diffusers import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    scheduler.set_timesteps(10)
    plain = torch.linspace(1, 0, 11)[:-1]  # the unshifted sigmas the scheduler starts from
    # The scheduler ends its grid at sigma_min = 1/1000 rather than 0, hence the tolerance.
    assert torch.allclose(shift_sigmas(plain, 5.0), scheduler.sigmas[:-1].float(), atol=5e-3)
    assert unshift_sigma(float(shift_sigmas(torch.tensor(0.3), 12.0)), 12.0) == pytest.approx(0.3)


def test_the_models_folder_lists_trained_loras(overfit, tmp_path):
    from studio.generation.finetune import list_finetunes

    models = tmp_path / "models"
    shutil.copytree(overfit, models / "dolly-zoom-lora")
    (models / "notes").mkdir()  # neither a LoRA nor a model: left out
    (models / "broken.safetensors").write_bytes(b"not safetensors")
    choices = list_finetunes(models)
    assert [c.label for c in choices] == ["dolly-zoom-lora (LoRA for Wan2.2 TI2V-5B, 80 steps)"]
    assert choices[0].location == str(models / "dolly-zoom-lora")
    assert list_finetunes(tmp_path / "nowhere") == []


def test_the_page_never_imports_ray(tiny):
    """Ray is for the command line's --ray paths; the page and the Space must not pay for it."""
    code = ("import sys; from studio.config import StudioConfig; from studio.ui.page import build_page; "
            f"build_page(StudioConfig.from_env({{}}, tiny=True, tiny_dir={str(tiny)!r}, device='cpu')); "
            "import studio.training.dataset, studio.training.trainer; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_page_offers_the_models_folder_and_refuses_other_paths(overfit, tiny, tmp_path):
    from studio.errors import InputError
    from studio.session.finetunes import finetune_choices, finetune_location

    models = tmp_path / "models"
    shutil.copytree(overfit, models / "mine")
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(tiny), device="cpu", models_dir=str(models))
    choices = finetune_choices(config)
    assert choices[0] == ("As started (the tiny LoRA)", "") and choices[1][1] == "mine"
    assert finetune_location(config, "mine") == str(models / "mine")
    assert finetune_location(config, "") == "" and finetune_location(config, None) == ""
    for hostile in (str(overfit), str(models / "mine"), "/etc", "../models/mine", 7):
        with pytest.raises(InputError, match="not one of the models in the models folder"):
            finetune_location(config, hostile)


def test_a_lora_picked_on_the_page_is_the_one_generated_with(overfit, tiny, tmp_path):
    from gradio_client import Client

    from conftest import serve_tiny_studio

    models = tmp_path / "models"
    shutil.copytree(overfit, models / "mine")
    with serve_tiny_studio(tmp_path, tiny, "--models-dir", str(models)) as server:
        client = Client(server.url, verbose=False)
        menu = json.dumps(client.predict(api_name="/list_finetunes"))
        assert '"mine"' in menu and str(tmp_path) not in menu  # names, never server paths
        with pytest.raises(Exception, match="not in the list of choices|not one of the models"):
            client.predict("/etc", api_name="/pick_finetune")
        assert "mine" in client.predict("mine", api_name="/pick_finetune")
        settings = {"seconds": 0.3, "resolution": "64x64", "steps": 2, "seed": 42}
        _, files = client.predict("A white bar slides right across a red card.", settings, None, None,
                                  api_name="/generate")
        run_json = next(Path(p) for p in files if str(p).endswith("run.json"))
        record = json.loads(run_json.read_text())
        assert record["models"]["finetuned"]["location"] == str(models / "mine")


def test_a_skip_reason_comes_from_the_errors_code_not_its_wording():
    from studio.errors import InputError
    from studio.training.dataset import _reason_code

    assert _reason_code(InputError("the file ends early", "reference", "truncated")) == "truncated"
    # The old wording without its code is not a truncated clip, whatever it says.
    assert _reason_code(InputError("clip.mp4 is truncated: its index points past the end", "reference")) == "unreadable"
    assert _reason_code(InputError("2.5", "shot", "not-whole")) == "unreadable"  # a code, but no clip check's
