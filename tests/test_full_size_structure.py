"""The real Wan2.2 transformers' structure, checked without a GPU or their weights: built on the meta
device from their published configurations (studio/generation/published.py, the diffusers
`transformer/config.json` of each checkpoint, as diffusers' Wan conversion script writes them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from studio.generation.presets import PRESETS
from studio.generation.published import TRANSFORMERS, VAE_SPATIAL
from studio.training.options import DEFAULT_TARGETS, TrainOptions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def on_meta(preset: str) -> torch.nn.Module:
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights():
        return WanTransformer3DModel(**TRANSFORMERS[preset])


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {name: on_meta(name) for name in TRANSFORMERS}


@pytest.mark.parametrize("preset, low, high", [("ti2v-5b", 4.95e9, 5.05e9), ("t2v-a14b", 14.2e9, 14.4e9)])
def test_parameter_counts_are_the_published_models(models, preset, low, high):
    params = sum(p.numel() for p in models[preset].parameters())
    assert low < params < high, params  # TI2V-5B about 5.0 B; each A14B expert about 14.3 B
    assert all(p.device.type == "meta" for p in models[preset].parameters())  # no memory was used


@pytest.mark.parametrize("preset", list(TRANSFORMERS))
def test_every_default_lora_target_resolves_in_every_block(models, preset):
    model = models[preset]
    layers = TRANSFORMERS[preset]["num_layers"]
    for target in DEFAULT_TARGETS:
        found = [name for name, module in model.named_modules()
                 if isinstance(module, torch.nn.Linear) and name.endswith("." + target)]
        # The attention projections are in both attentions of a block, the feed-forward layers once.
        per_block = 2 if target.startswith("to_") else 1
        assert len(found) == per_block * layers, (target, len(found))
        assert {name.split(".")[1] for name in found} == {str(i) for i in range(layers)}


def test_the_5b_first_frame_mask_at_1280x704x121():
    """TI2V-5B conditions on its first latent frame through per-token timesteps: the training
    objective's mask has the latent shape of a 1280x704, 121-frame video, one timestep per token."""
    from studio.training.flow import flow_batch

    preset, shape = PRESETS["ti2v-5b"], TRANSFORMERS["ti2v-5b"]
    latent = (1, shape["in_channels"], (preset.frames - 1) // 4 + 1, preset.height // VAE_SPATIAL["ti2v-5b"],
              preset.width // VAE_SPATIAL["ti2v-5b"])
    assert latent == (1, 48, 31, 44, 80)
    latents = torch.zeros(latent)
    batch = flow_batch(latents, torch.ones(latent), torch.tensor([0.5]), torch.tensor([True]), per_token=True,
                       patch=shape["patch_size"][1:], num_train_timesteps=1000)
    assert batch.weight.shape == (1, 1, 31, 44, 80)
    assert batch.weight[:, :, 0].sum() == 0 and bool((batch.weight[:, :, 1:] == 1).all())
    tokens = 31 * (44 // 2) * (80 // 2)
    assert batch.timestep.shape == (1, tokens) and batch.timestep[0, : 22 * 40].sum() == 0
    assert bool((batch.timestep[0, 22 * 40:] == 500).all())


def test_the_training_memory_plan_is_computed_from_the_real_shapes(models):
    from train import lora_parameters, memory_plan

    options = TrainOptions.from_user()
    plan = memory_plan("ti2v-5b", options)
    assert plan["parameters_b"] == pytest.approx(sum(p.numel() for p in models["ti2v-5b"].parameters()) / 1e9)
    assert plan["tokens"] == 31 * 22 * 40
    assert plan["lora_parameters_m"] == pytest.approx(lora_parameters(models["ti2v-5b"], DEFAULT_TARGETS,
                                                                      options.rank) / 1e6)
    a14b = memory_plan("t2v-a14b", options)
    assert a14b["tokens"] == 21 * 45 * 80 and a14b["frozen_weights_gib"] > 2 * plan["frozen_weights_gib"] * 2
