"""Putting the loaded modules where `hardware.plan_placement` decided, and keeping them there.

`hardware` decides from numbers (free memory, module sizes) and imports no torch, so its choices
are tested without a GPU; this module applies a decision to real modules: moves them to devices,
installs offload hooks around each phase, and says which device a model computes on. Every
function takes the placement and the modules it acts on; none keeps state.
"""

from __future__ import annotations

import contextlib

import torch

from . import hardware
from .comparison import FINETUNED_MODEL


def module_bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(stored_bytes(t) for t in list(module.parameters()) + list(module.buffers()))


def stored_bytes(tensor: torch.Tensor) -> int:
    # A torchao quantized weight (a tensor subclass) reports its outer dtype; the parts it stores
    # (`tensor_data_names`: the float8 `qdata` and its `scale`) are what takes the memory.
    names = getattr(tensor, "tensor_data_names", None)
    if names:
        return sum(stored_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def place_modules(placement: hardware.Placement, text_encoder: torch.nn.Module, vae: torch.nn.Module,
                  baseline_transformers: list, finetuned_transformers: list, shares_base: bool) -> None:
    """Move (or hook) the loaded modules as `placement` decided, once after loading."""
    mode = placement.mode
    if mode == "gpu":
        for module in [text_encoder, vae] + baseline_transformers:
            module.to(placement.shared_device)
        for transformer in finetuned_transformers:
            transformer.to(placement.finetuned_device)
    elif mode == "group_offload":
        from diffusers.hooks import apply_group_offloading

        # Stream each layer's weights in just before it runs, overlapping copy and compute.
        for module in [text_encoder] + baseline_transformers + ([] if shares_base else finetuned_transformers):
            apply_group_offloading(module, onload_device=torch.device(placement.shared_device),
                                   offload_device=torch.device("cpu"), offload_type="leaf_level", use_stream=True)
        vae.to(placement.shared_device)
    # "cpu": nothing to move. "model_offload": hooks are installed around each phase (offload_hooks).


@contextlib.contextmanager
def offload_hooks(placement: hardware.Placement, pipe):
    """Model CPU offload for one phase: each module moves to the GPU when called."""
    if placement.mode != "model_offload":
        yield
        return
    pipe.enable_model_cpu_offload(device=placement.shared_device)
    try:
        yield
    finally:
        pipe.maybe_free_model_hooks()
        pipe.remove_all_hooks()


@contextlib.contextmanager
def vae_placed(placement: hardware.Placement, vae: torch.nn.Module):
    """The VAE on the shared device for one decode; back on the CPU after it under model offload."""
    offload = placement.mode == "model_offload"
    if offload:
        vae.to(placement.shared_device)
    try:
        yield
    finally:
        if offload:
            vae.to("cpu")


def device_for(placement: hardware.Placement, which: str) -> torch.device:
    """The device model `which` (baseline or finetuned) computes on."""
    if placement.mode == "cpu":
        return torch.device("cpu")
    return torch.device(placement.finetuned_device if which == FINETUNED_MODEL else placement.shared_device)
