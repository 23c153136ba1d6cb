"""The full-size Wan2.2 transformers built on the meta device from their published configs: no
weights and no memory, but every module and shape real. Checks what a LoRA run at full size relies
on without a GPU: the models' sizes, the LoRA targets, the TI2V-5B first-frame mask, the memory plan."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from studio.generation.presets import PRESETS
from studio.generation.published import TRANSFORMERS, VAES, latent_shape, meta_transformer
from studio.training.flow import flow_batch
from studio.training.options import DEFAULT_TARGETS, TrainOptions
from studio.training.plan import EXPERTS, lora_layers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

# Parameter counts of the published checkpoints' transformers (diffusers' WanTransformer3DModel).
PARAMETERS = {"ti2v-5b": 4_999_787_712, "t2v-a14b": 14_288_491_584}


@pytest.fixture(scope="module")
def models() -> dict[str, list[torch.nn.Module]]:
    """TI2V-5B's transformer and A14B's two experts, all on the meta device."""
    built = {name: [meta_transformer(name) for _ in EXPERTS[: 2 if PRESETS[name].two_experts else 1]]
             for name in TRANSFORMERS}
    assert all(p.device.type == "meta" for experts in built.values() for m in experts for p in m.parameters())
    return built


def test_the_published_configs_build_the_published_sizes(models):
    assert len(models["ti2v-5b"]) == 1 and len(models["t2v-a14b"]) == 2
    for name, experts in models.items():
        for model in experts:
            assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]
    assert 4.99e9 < PARAMETERS["ti2v-5b"] < 5.01e9 and 14.2e9 < PARAMETERS["t2v-a14b"] < 14.4e9


def test_every_default_lora_target_resolves_in_every_block(models):
    for name, experts in models.items():
        for model in experts:
            blocks = model.config.num_layers
            found = lora_layers(model, DEFAULT_TARGETS)
            # The attention projections of both attention modules (self and cross), the feed-forward once.
            counts = {target: len(layers) for target, layers in found.items()}
            assert counts == {"to_q": 2 * blocks, "to_k": 2 * blocks, "to_v": 2 * blocks, "to_out.0": 2 * blocks,
                              "ffn.net.0.proj": blocks, "ffn.net.2": blocks}, (name, counts)
            width = model.config.num_attention_heads * model.config.attention_head_dim
            ffn = found["ffn.net.0.proj"][0]
            assert (ffn.in_features, ffn.out_features) == (width, model.config.ffn_dim)


def test_ti2v_first_frame_mask_at_full_size(models):
    """1280x704, 121 frames on the z-48 VAE: 31 latent frames of 44x80; the first latent frame is
    conditioned (kept clean, timestep 0) and each transformer token gets its own timestep."""
    preset, model = PRESETS["ti2v-5b"], models["ti2v-5b"][0]
    assert VAES["ti2v-5b"] == {"z_dim": 48, "scale_factor_spatial": 16, "scale_factor_temporal": 4}
    shape = latent_shape("ti2v-5b", preset.height, preset.width, preset.frames)
    assert (preset.width, preset.height, preset.frames) == (1280, 704, 121) and shape == (48, 31, 44, 80)
    assert model.config.in_channels == shape[0]
    latents = torch.empty(1, *shape, device="meta")
    batch = flow_batch(latents, torch.empty_like(latents), torch.tensor([0.5], device="meta"),
                       torch.tensor([True]), per_token=True, patch=tuple(model.config.patch_size[1:]),
                       num_train_timesteps=1000)
    assert batch.weight.shape == (1, 1, 31, 44, 80)  # the mask: 0 on the conditioned first latent frame
    tokens = (31 // model.config.patch_size[0]) * (44 // model.config.patch_size[1]) * (80 // model.config.patch_size[2])
    assert tokens == 27_280 and batch.timestep.shape == (1, tokens)
    # The same mask, computed on real tensors at the real shape, marks only the first latent frame.
    real = flow_batch(torch.zeros(1, *shape), torch.ones(1, *shape), torch.tensor([0.5]), torch.tensor([True]),
                      per_token=True, patch=(2, 2), num_train_timesteps=1000)
    assert real.weight[0, 0, 0].eq(0).all() and real.weight[0, 0, 1:].eq(1).all()
    assert real.timestep[0, : 22 * 40].eq(0).all() and real.timestep[0, 22 * 40:].eq(500).all()


def test_the_training_memory_plan_is_read_off_the_meta_models(models):
    from train import lora_parameters, memory_plan

    options = TrainOptions()
    for name, experts in models.items():
        preset, model = PRESETS[name], experts[0]
        plan = memory_plan(name, options)
        lora = lora_parameters(model, options.target_modules, options.rank)
        assert plan["parameters_b"] == PARAMETERS[name] / 1e9
        assert plan["lora_parameters_m"] == pytest.approx(len(experts) * lora / 1e6)
        assert plan["frozen_weights_gib"] == pytest.approx(len(experts) * PARAMETERS[name] * 2 / 2**30)
        _, frames, height, width = latent_shape(name, preset.height, preset.width, preset.frames)
        assert plan["tokens"] == frames * (height // 2) * (width // 2)
    assert memory_plan("ti2v-5b", options)["tokens"] == 27_280 and memory_plan("t2v-a14b", options)["tokens"] == 75_600
    # The plan follows the model it is given: half the layers, half the block inputs to keep.
    half = meta_transformer("ti2v-5b")
    half.blocks = half.blocks[: half.config.num_layers // 2]
    half.register_to_config(num_layers=half.config.num_layers // 2)
    full, halved = memory_plan("ti2v-5b", options), memory_plan("ti2v-5b", options, model=half)
    assert halved["checkpointed_inputs_gib"] == pytest.approx(full["checkpointed_inputs_gib"] / 2)
    assert halved["parameters_b"] < full["parameters_b"] and halved["lora_parameters_m"] < full["lora_parameters_m"]
