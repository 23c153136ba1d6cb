"""The rectified-flow objective Wan2.2 samples with, written out for training.

At inference the scheduler walks sigma from 1 (noise) to 0 (data) on shifted sigmas
sigma' = shift * s / (1 + (shift - 1) * s), and the transformer predicts the velocity
noise - x0 at timestep t = sigma * num_train_timesteps. Training draws s uniformly and applies the
same shift, so the timesteps it learns most are the ones sampling visits most:

    x_sigma = (1 - sigma) * x0 + sigma * noise,      target = noise - x0.

TI2V-5B uses per-token timesteps (`expand_timesteps`): when it starts from an image, the first
latent frame is the clean image latent at timestep 0 and only the other frames are noised, which
is how `WanImageToVideoPipeline` conditions it (diffusers 0.42). A share of training samples does
the same (their first frame is left clean and out of the loss), so the LoRA keeps both uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def shift_sigmas(uniform: torch.Tensor, shift: float) -> torch.Tensor:
    """The scheduler's time shift applied to uniform draws in [0, 1]."""
    return shift * uniform / (1 + (shift - 1) * uniform)


def unshift_sigma(sigma: float, shift: float) -> float:
    """Inverse of `shift_sigmas`: the uniform draw that lands on `sigma`."""
    return sigma / (shift - (shift - 1) * sigma)


@dataclass
class FlowBatch:
    """One batch's model inputs and regression target."""

    noisy: torch.Tensor  # (B, C, F, H, W)
    timestep: torch.Tensor  # (B,) or, with per-token timesteps, (B, tokens)
    target: torch.Tensor  # noise - x0
    weight: torch.Tensor  # 1 where the loss counts, broadcastable to the target


def flow_batch(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor, clean_first: torch.Tensor,
               per_token: bool, patch: tuple[int, int], num_train_timesteps: int) -> FlowBatch:
    """Noise `latents` to `sigmas` (one per sample); `clean_first[b]` keeps sample b's first frame clean."""
    sigma = sigmas.view(-1, 1, 1, 1, 1).to(latents.dtype)
    noisy = (1 - sigma) * latents + sigma * noise
    target = noise - latents
    timesteps = sigmas * num_train_timesteps
    if not per_token:
        return FlowBatch(noisy, timesteps, target, torch.ones_like(sigma))
    batch, _, frames, height, width = latents.shape
    mask = torch.ones(batch, 1, frames, height, width, dtype=latents.dtype, device=latents.device)
    mask[clean_first.to(latents.device), :, 0] = 0
    noisy = mask * noisy + (1 - mask) * latents
    # One timestep per transformer token: the mask sampled at the patch grid, as the pipeline does.
    token_mask = mask[:, 0, :, :: patch[0], :: patch[1]].flatten(1)
    return FlowBatch(noisy, token_mask * timesteps.view(-1, 1).to(token_mask.dtype), target, mask)


def flow_loss(prediction: torch.Tensor, batch: FlowBatch) -> torch.Tensor:
    """Mean squared error over the positions that were noised."""
    weight = batch.weight.expand_as(batch.target).float()
    error = (prediction.float() - batch.target.float()) ** 2
    return (error * weight).sum() / weight.sum().clamp_min(1.0)
