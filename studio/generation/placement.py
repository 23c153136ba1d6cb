"""Putting the loaded modules where `hardware.plan_placement` decided, and keeping them there.

`hardware` decides from numbers (free memory, module sizes) and imports no torch, so its choices
are tested without a GPU; this module applies a decision to real modules: moves them to devices,
sets the attention kernel and the first-block cache, installs offload hooks around each phase,
and says which device a model computes on.
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


class PlacementMixin:
    """Device placement for `SideBySideGenerator` (its modules, `placement` and cache settings)."""

    placement: hardware.Placement

    def distinct_modules(self) -> list[torch.nn.Module]:
        modules = [self.text_encoder, self.vae] + self.baseline_transformers
        if not self.shares_base:
            modules += self.finetuned_transformers
        return modules

    def resident_bytes(self) -> int:
        return sum(module_bytes(m) for m in self.distinct_modules())

    def _prepare_modules(self, attention_backend: str, compile_blocks: bool = False) -> None:
        """Apply the placement, attention kernel, cache, compilation and VAE tiling to the loaded modules."""
        self.attention_backend = attention_backend
        distinct = list({id(t): t for t in self.baseline_transformers + self.finetuned_transformers}.values())
        for transformer in distinct:
            if attention_backend != "native":
                transformer.set_attention_backend(attention_backend)
            if compile_blocks:
                # Once per loaded model (the generator is cached per config), never per run: regional
                # compilation compiles one block and reuses it for the other identical blocks.
                transformer.compile_repeated_blocks(fullgraph=True)
        self.compiled = compile_blocks
        if self.first_block_cache > 0:
            from diffusers import FirstBlockCacheConfig

            seen = set()
            for transformer in self.baseline_transformers + self.finetuned_transformers:
                if id(transformer) not in seen:
                    seen.add(id(transformer))
                    transformer.enable_cache(FirstBlockCacheConfig(threshold=self.first_block_cache))
        if self.vae_tiling:
            self.vae.enable_tiling()
        mode = self.placement.mode
        if mode == "gpu":
            for module in [self.text_encoder, self.vae] + self.baseline_transformers:
                module.to(self.placement.shared_device)
            for transformer in self.finetuned_transformers:
                transformer.to(self.placement.finetuned_device)
        elif mode == "group_offload":
            from diffusers.hooks import apply_group_offloading

            # Stream each layer's weights in just before it runs, overlapping copy and compute.
            for module in [self.text_encoder] + self.baseline_transformers + (
                    [] if self.shares_base else self.finetuned_transformers):
                apply_group_offloading(module, onload_device=torch.device(self.placement.shared_device),
                                       offload_device=torch.device("cpu"), offload_type="leaf_level",
                                       use_stream=True)
            self.vae.to(self.placement.shared_device)
        # "cpu": nothing to move. "model_offload": hooks are installed around each phase.

    @contextlib.contextmanager
    def _offload_hooks(self, pipe):
        """Model CPU offload for one phase: each module moves to the GPU when called."""
        if self.placement.mode != "model_offload":
            yield
            return
        pipe.enable_model_cpu_offload(device=self.placement.shared_device)
        try:
            yield
        finally:
            pipe.maybe_free_model_hooks()
            pipe.remove_all_hooks()

    @contextlib.contextmanager
    def _vae_placed(self):
        """The VAE on the shared device for one decode; back on the CPU after it under model offload."""
        offload = self.placement.mode == "model_offload"
        if offload:
            self.vae.to(self.placement.shared_device)
        try:
            yield
        finally:
            if offload:
                self.vae.to("cpu")

    def _device_for(self, which: str) -> torch.device:
        if self.placement.mode == "cpu":
            return torch.device("cpu")
        which_device = self.placement.finetuned_device if which == FINETUNED_MODEL else self.placement.shared_device
        return torch.device(which_device)
