"""Placement decisions: memory mode, attention backend, which GPU runs which model.

Plain functions of numbers and names, so the choices are tested without a GPU; the generator
applies them to the loaded modules.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from ..errors import InputError

MEMORY_MODES = ("auto", "gpu", "model_offload", "group_offload")
ATTENTION_BACKENDS = ("auto", "sdpa", "flash", "flash3", "sage", "xformers")
GIB = 1024**3
# Room left for activations, the VAE decode and the CUDA context when everything stays resident.
RESIDENT_HEADROOM = 0.20
ACTIVATION_BYTES = 6 * GIB


@dataclass(frozen=True)
class Placement:
    """Where things run: `mode` is the memory mode; devices are torch device strings."""

    mode: str  # "cpu", "gpu", "model_offload" or "group_offload"
    shared_device: str  # text encoder, VAE, the baseline transformer(s)
    finetuned_device: str  # the finetuned transformer(s); another GPU when two are usable
    concurrent: bool  # run the two denoising loops at the same time (one per GPU)


def choose_memory_mode(
    free_bytes: int | None, resident_bytes: int, largest_module_bytes: int, override: str = "auto"
) -> str:
    """All on GPU when everything fits with headroom; model offload when the largest module
    fits; otherwise group offload (layer by layer, overlapping transfers with compute).

    `free_bytes` None means no GPU: the answer is "cpu" whatever was asked, except an explicit
    GPU mode, which is an error.
    """
    if override not in MEMORY_MODES:
        raise InputError(f"must be one of {', '.join(MEMORY_MODES)}, got {override!r}", "memory_mode")
    if free_bytes is None:
        if override != "auto":
            raise InputError(f"{override!r} needs a CUDA GPU and none is available; use auto", "memory_mode")
        return "cpu"
    if override != "auto":
        return override
    if resident_bytes * (1 + RESIDENT_HEADROOM) + ACTIVATION_BYTES <= free_bytes:
        return "gpu"
    if largest_module_bytes * (1 + RESIDENT_HEADROOM) + ACTIVATION_BYTES <= free_bytes:
        return "model_offload"
    return "group_offload"


def plan_placement(
    gpu_free_bytes: list[int], resident_bytes: int, finetuned_bytes: int, largest_module_bytes: int,
    override: str = "auto", shares_base: bool = False,
) -> Placement:
    """Pick the memory mode and devices from the free memory of each visible GPU.

    With two or more GPUs, a full finetune whose transformers fit on the second GPU runs there,
    concurrently with the baseline on the first. A LoRA finetune shares the base weights with
    the baseline (adapter on/off per run), so its two runs stay on one GPU, one after the other.
    """
    if not gpu_free_bytes:
        return Placement(choose_memory_mode(None, resident_bytes, largest_module_bytes, override), "cpu", "cpu", False)
    first = gpu_free_bytes[0]
    if (
        len(gpu_free_bytes) >= 2 and not shares_base and override in ("auto", "gpu")
        and finetuned_bytes * (1 + RESIDENT_HEADROOM) + ACTIVATION_BYTES <= gpu_free_bytes[1]
        and (resident_bytes - finetuned_bytes) * (1 + RESIDENT_HEADROOM) + ACTIVATION_BYTES <= first
    ):
        return Placement("gpu", "cuda:0", "cuda:1", True)
    mode = choose_memory_mode(first, resident_bytes, largest_module_bytes, override)
    return Placement(mode, "cuda:0", "cuda:0", False)


def check_parallel(name: str, gpu_count: int) -> None:
    """Refuse a parallelism the machine or the studio cannot run, before anything loads."""
    if name == "off":
        return
    if name != "sequence":
        raise InputError(f"must be off or sequence, got {name!r}", "parallel")
    if gpu_count < 2:
        raise InputError(f"sequence parallelism splits one side over two CUDA GPUs; this machine has {gpu_count}",
                         "parallel")
    # diffusers' context parallelism (`enable_parallelism(ContextParallelConfig(...))`) needs an
    # initialised torch.distributed group, one process per GPU; the studio runs in one process.
    raise InputError("sequence parallelism needs one process per GPU (torchrun), which the studio does not start "
                     "yet; use off (two GPUs already run the two sides at once for a full finetune)", "parallel")


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_attention_backend(name: str, cuda: bool) -> str:
    """Map the studio's names to diffusers' `set_attention_backend` names, checking availability.

    `auto` picks per machine: on a CUDA GPU the flash-attn package when installed, else
    SageAttention when installed, else PyTorch's SDPA (which picks its own flash kernel where the
    GPU has one); on a CPU, SDPA. The backend chosen is recorded in run.json.
    """
    if name not in ATTENTION_BACKENDS:
        raise InputError(f"must be one of {', '.join(ATTENTION_BACKENDS)}, got {name!r}", "attention")
    installed = {package: importlib.util.find_spec(package) is not None
                 for package in ("flash_attn", "sageattention", "kernels", "xformers")}
    if name == "auto":
        if not cuda:
            return "native"
        return "flash" if installed["flash_attn"] else "sage" if installed["sageattention"] else "native"
    if name == "sdpa":
        return "native"
    if not cuda:
        raise InputError(f"{name!r} attention needs a CUDA GPU; use sdpa or auto on CPU", "attention")
    if name == "flash":
        # The flash-attn package when installed, else PyTorch's own flash kernel behind SDPA.
        return "flash" if installed["flash_attn"] else "_native_flash"
    needs = {"flash3": ("kernels", "_flash_3_hub", "FlashAttention 3 kernels from the hub need `pip install kernels` "
                                                   "(Hopper GPUs)"),
             "sage": ("sageattention", "sage", "SageAttention needs `pip install sageattention`"),
             "xformers": ("xformers", "xformers", "xformers is not installed (pip install xformers)")}
    package, backend, advice = needs[name]
    if not installed[package]:
        raise InputError(f"{advice}; use auto, sdpa or flash", "attention")
    return backend


def cuda_free_bytes() -> list[int]:
    """Free memory of each visible CUDA device; empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
