"""LoRA training: measured step time and peak memory on the tiny model, and a memory plan for the
full-size Wan2.2 models at their default training sizes.

    python bench/train.py [--steps 20] [--workdir DIR]

Part 1 (always): builds the tiny checkpoints and a one-shot dataset, then runs the studio's own
trainer (`studio.training`) and prints the median step time and the peak memory (CUDA's peak
allocation on a GPU; on the CPU the growth of the process's peak resident set over the run).

Part 2 (always, no weights): the full-size transformers built on PyTorch's meta device from the
published configs, their parameters and the LoRA's counted, and the GPU memory a LoRA run needs:
frozen bf16 weights, float32 LoRA weights + gradients + AdamW moments, and activations with
gradient checkpointing (each block's input kept for the backward pass, one block's internals
recomputed at a time). These are computed, not measured; the README says which is which.

Part 3 (CUDA only): one real training step of the full-size TI2V-5B transformer with random
weights at a reduced number of frames, timed, with its peak memory. Without a GPU it says so.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from studio.config import StudioConfig
from studio.generation.presets import PRESETS
from studio.generation.published import latent_shape, meta_transformer
from studio.training.options import DEFAULT_TARGETS, TrainOptions
from studio.training.plan import lora_layers

GIB = 2**30
TEXT_TOKENS = 512


def tiny_run(workdir: Path, steps: int) -> None:
    from studio.tiny import build_tiny_models
    from studio.training.dataset import DatasetSpec
    from studio.training.stages import build_dataset

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from clipmaker import write_clip

    build_tiny_models(workdir / "tiny", only=["wan-ti2v"])
    config = StudioConfig.from_env({}, tiny=True, tiny_dir=str(workdir / "tiny"), device="auto")
    clip = write_clip(workdir / "clip.mp4", seconds=1.0)
    (workdir / "clip.caption.json").write_text(json.dumps({"Camera": "A static medium shot at eye level."}))
    spec = DatasetSpec.from_user(config, "ti2v-5b")
    build_dataset(config, clip.parent, workdir / "dataset", spec)
    command = [sys.executable, "-m", "studio", "train", str(workdir / "dataset"), "--out", str(workdir / "lora"),
               "--steps", str(steps), "--rank", "8", "--render-every", "0", "--validate-every", str(steps),
               "--log-every", "1", "--tiny", "--tiny-dir", str(workdir / "tiny")]
    # A child process of its own, so its peak resident memory is the training run's alone.
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    rows = [json.loads(line) for line in (workdir / "lora" / "metrics.jsonl").read_text().splitlines()]
    times = [r["seconds"] for r in rows if r.get("seconds") is not None][1:]  # the first pays for lazy set-up
    memory = [r["peak_memory_gb"] for r in rows if r.get("peak_memory_gb") is not None]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"tiny model ({device}): {steps} steps at 64x64, 9 frames, rank 8, batch 1, gradient checkpointing")
    print(f"  median step: {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}, "
          f"max {max(times) * 1000:.1f})")
    if memory:
        print(f"  peak CUDA memory: {max(memory) * 1024:.1f} MiB")
    print(f"  peak resident memory of the training process: {peak_rss / 2**20:.0f} MiB (torch and libraries "
          "included)")


def lora_parameters(model: torch.nn.Module, targets: tuple[str, ...], rank: int) -> int:
    """A and B of every adapted Linear: rank x (in + out) each."""
    return sum(rank * (layer.in_features + layer.out_features)
               for layers in lora_layers(model, targets).values() for layer in layers)


def memory_plan(preset_name: str, options: TrainOptions, height: int | None = None,
                width: int | None = None, model: torch.nn.Module | None = None) -> dict[str, float]:
    """The plan for one expert-shaped `model` (default: the published one on the meta device);
    every size below is read from the model and its config, none is typed in here."""
    preset = PRESETS[preset_name]
    model = model if model is not None else meta_transformer(preset_name)
    shape = model.config
    height, width = height or preset.height, width or preset.width
    params = sum(p.numel() for p in model.parameters())
    lora = lora_parameters(model, options.target_modules, options.rank)
    experts = 2 if preset.two_experts else 1
    patch = shape["patch_size"]
    _, latent_frames, latent_height, latent_width = latent_shape(preset_name, height, width, preset.frames)
    tokens = (latent_frames // patch[0]) * (latent_height // patch[1]) * (latent_width // patch[2])
    hidden = shape["num_attention_heads"] * shape["attention_head_dim"]
    layers, ffn = shape["num_layers"], shape["ffn_dim"]
    bf16 = 2
    plan = {
        "parameters_b": params / 1e9,
        "lora_parameters_m": lora * experts / 1e6,
        "tokens": tokens,
        # Both experts stay loaded for A14B: each optimizer step trains the one its sigmas fall to.
        "frozen_weights_gib": experts * params * bf16 / GIB,
        # float32 weight, gradient and two AdamW moments per LoRA parameter.
        "lora_state_gib": experts * lora * 4 * 4 / GIB,
        # Gradient checkpointing keeps each block's input (tokens x hidden width, bf16) for the backward pass.
        "checkpointed_inputs_gib": layers * tokens * hidden * bf16 / GIB,
        # One block recomputed during backward: norms, q/k/v, attention output and projections of the self- and
        # cross-attention (about 14 x hidden width per token) and the feed-forward's two hidden activations (2 x ffn).
        "one_block_gib": tokens * (14 * hidden + 2 * ffn) * bf16 / GIB,
        "text_gib": layers * 2 * TEXT_TOKENS * hidden * bf16 / GIB,
    }
    subtotal = sum(v for k, v in plan.items() if k.endswith("_gib"))
    plan["total_gib"] = subtotal * 1.1  # allocator fragmentation and kernel workspaces
    return plan


# The defaults, and a smaller size that brings A14B within one 80 GB GPU.
PLAN_SIZES = [("ti2v-5b", None, None), ("t2v-a14b", None, None), ("t2v-a14b", 480, 832)]


def print_plans(options: TrainOptions) -> None:
    print(f"\nmemory plan for LoRA training (rank {options.rank}, targets {','.join(options.target_modules)}, "
          "batch 1, bf16, gradient checkpointing; computed, not measured):")
    for name, height, width in PLAN_SIZES:
        preset, plan = PRESETS[name], memory_plan(name, options, height, width)
        experts = "2 experts x " if preset.two_experts else ""
        print(f"  {preset.label}: {experts}{plan['parameters_b']:.2f} B parameters, LoRA "
              f"{plan['lora_parameters_m']:.1f} M; {width or preset.width}x{height or preset.height}, "
              f"{preset.frames} frames -> {plan['tokens']:,} tokens")
        print(f"    frozen bf16 weights {plan['frozen_weights_gib']:.1f} GiB + LoRA weights/grads/AdamW "
              f"{plan['lora_state_gib']:.2f} GiB + block inputs {plan['checkpointed_inputs_gib']:.1f} GiB + one "
              f"recomputed block {plan['one_block_gib']:.1f} GiB + text {plan['text_gib']:.2f} GiB "
              f"-> about {plan['total_gib']:.0f} GiB with 10% headroom")


def full_size_step(frames: int) -> None:
    if not torch.cuda.is_available():
        print("\nfull-size TI2V-5B training step: skipped (no CUDA GPU on this machine; no figure is made up)")
        return
    from diffusers import WanTransformer3DModel
    from peft import LoraConfig

    from studio.generation.published import TI2V_5B_TRANSFORMER
    from studio.training.flow import flow_batch, flow_loss

    torch.cuda.reset_peak_memory_stats()
    model = WanTransformer3DModel(**TI2V_5B_TRANSFORMER).to("cuda", torch.bfloat16)
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=32, lora_alpha=32, target_modules=list(DEFAULT_TARGETS)), adapter_name="finetune")
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    model.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    latent_frames = (frames - 1) // 4 + 1
    latents = torch.randn(1, 48, latent_frames, 44, 80, device="cuda")
    embeds = torch.randn(1, TEXT_TOKENS, 4096, device="cuda", dtype=torch.bfloat16)
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        began = time.perf_counter()
        batch = flow_batch(latents, torch.randn_like(latents), torch.tensor([0.6], device="cuda"),
                           torch.tensor([True]), per_token=True, patch=(2, 2), num_train_timesteps=1000)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            prediction = model(hidden_states=batch.noisy.bfloat16(), timestep=batch.timestep,
                               encoder_hidden_states=embeds, return_dict=False)[0]
        flow_loss(prediction, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    print(f"\nfull-size TI2V-5B training step on {torch.cuda.get_device_name()}: 1280x704, {frames} frames, rank 32, "
          f"bf16, checkpointing: {statistics.median(times[1:]):.2f} s/step, peak "
          f"{torch.cuda.max_memory_allocated() / GIB:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--full-size-frames", type=int, default=121)
    args = parser.parse_args()
    from studio.logging_setup import quiet_loaded_libraries

    quiet_loaded_libraries()
    with tempfile.TemporaryDirectory() as scratch:
        tiny_run(args.workdir or Path(scratch), args.steps)
    print_plans(TrainOptions())
    full_size_step(args.full_size_frames)


if __name__ == "__main__":
    main()
