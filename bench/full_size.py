"""Full-size figures: one side-by-side denoising step of Wan2.2 TI2V-5B at 1280x704, 121 frames.

    python bench/full_size.py [--steps 3] [--lora] [--cpu-size]

Builds the TI2V-5B transformer from its published configuration with random weights (no download:
timing does not depend on the values), in bfloat16, twice: the baseline and a full finetune (with
`--lora` one transformer serves both sides, as the studio does for a LoRA). One side-by-side step
is what the studio runs per step: each model's conditional and unconditional forward (classifier-
free guidance), four transformer forwards over the same latents, with the per-token timesteps
TI2V-5B uses. Reported: time per step (median after a warm-up step), peak GPU memory, achieved
TFLOP/s from an analytic count of the matmul FLOPs and the share of the GPU's dense bf16 peak.

Without a CUDA GPU the same code runs at a reduced size (a few layers, narrow, a small video) so
that it is exercised and tested; those figures say nothing about the full model and are labelled
as such.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from side_by_side import PEAK_BF16_FLOPS, transformer_flops_per_step

from studio.generation.published import TI2V_5B_TRANSFORMER, latent_shape

TI2V_5B = TI2V_5B_TRANSFORMER  # one place for the published config: studio/generation/published.py
FULL_VIDEO = {"width": 1280, "height": 704, "frames": 121}
# CPU check: same code, a narrow three-layer transformer and a small video.
REDUCED = dict(TI2V_5B, num_attention_heads=4, attention_head_dim=32, ffn_dim=512, num_layers=3, text_dim=256)
REDUCED_VIDEO = {"width": 256, "height": 128, "frames": 17}
TEXT_TOKENS = 512


def build(config: dict, device: str, seed: int):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    with torch.device(device):
        model = WanTransformer3DModel(**config)
    # bfloat16 except the modules diffusers keeps in float32 when loading this model (norms, RoPE,
    # time embedding): the same mix as `from_pretrained(..., torch_dtype=torch.bfloat16)`.
    keep = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, param in model.named_parameters():
        if not any(part in keep for part in name.split(".")):
            param.data = param.data.to(torch.bfloat16)
    return model.eval()


def side_by_side_step(models, latents, timestep, text, negative) -> None:
    """What one studio step costs: each side's conditional and unconditional forward."""
    for model in models:
        for context in (text, negative):
            model(hidden_states=latents, timestep=timestep, encoder_hidden_states=context, return_dict=False)


def measure(config: dict, video: dict, device: str, steps: int, lora: bool) -> dict:
    baseline = build(config, device, seed=0)
    models = [baseline, baseline] if lora else [baseline, build(config, device, seed=1)]
    _, frames, h, w = latent_shape("ti2v-5b", video["height"], video["width"], video["frames"])
    latents = torch.randn(1, config["in_channels"], frames, h, w, device=device, dtype=torch.bfloat16)
    patch = config["patch_size"]
    tokens = frames * (h // patch[1]) * (w // patch[2])
    # TI2V-5B's per-token timesteps (the pipeline's expand_timesteps path): one value per patch.
    timestep = torch.full((1, tokens), 900.0, device=device)
    text = torch.randn(1, TEXT_TOKENS, config["text_dim"], device=device, dtype=torch.bfloat16)
    negative = torch.randn_like(text)
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        for _ in range(steps + 1):  # the first step is warm-up (kernel selection, allocations)
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            side_by_side_step(models, latents, timestep, text, negative)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    flops = 2 * transformer_flops_per_step(config, tokens, TEXT_TOKENS, cfg=True)  # two sides, CFG each
    params = sum(p.numel() for p in baseline.parameters())
    return {"tokens": tokens, "step_s": statistics.median(times[1:]), "steps": len(times) - 1, "flops": flops,
            "params": params, "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "resident_models": 1 if lora else 2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--lora", action="store_true", help="one transformer for both sides (a LoRA finetune)")
    parser.add_argument("--cpu-size", action="store_true", help="the reduced size even when a GPU is present")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available() and not args.cpu_size
    if gpu:
        name = torch.cuda.get_device_name(0)
        config, video, device = TI2V_5B, FULL_VIDEO, "cuda"
        print(f"device: {name} (CUDA {torch.version.cuda}); full size")
    else:
        name = "cpu"
        config, video, device = REDUCED, REDUCED_VIDEO, "cpu"
        why = "--cpu-size" if torch.cuda.is_available() else "no GPU is available on this machine"
        print(f"device: cpu ({why}): REDUCED size ({config['num_layers']} layers, width "
              f"{config['num_attention_heads'] * config['attention_head_dim']}), so these figures only show that "
              "the code runs; they say nothing about the full-size model")
    figures = measure(config, video, device, args.steps, args.lora)
    print(f"transformer: {figures['params'] / 1e9:.3f} B parameters, bfloat16, random weights; "
          f"{figures['resident_models']} resident ({'LoRA: shared' if args.lora else 'full finetune'})")
    print(f"video: {video['width']}x{video['height']}, {video['frames']} frames -> {figures['tokens']} tokens; "
          f"{TEXT_TOKENS} text tokens; CFG on")
    print(f"time per side-by-side step (4 transformer forwards), median of {figures['steps']}: "
          f"{figures['step_s']:.3f} s")
    achieved = figures["flops"] / figures["step_s"]
    print(f"FLOPs per side-by-side step: {figures['flops'] / 1e12:.4g} TFLOP -> {achieved / 1e12:.4g} TFLOP/s")
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None) if gpu else None
    if gpu:
        print(f"share of peak: {achieved / peak:.1%} of {peak / 1e12:.0f} TFLOP/s bf16 dense" if peak else
              "share of peak: unknown peak for this GPU")
        print(f"peak GPU memory: {figures['peak_bytes'] / 2**30:.1f} GiB")
    else:
        print("share of peak and peak GPU memory: not measured (no GPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
