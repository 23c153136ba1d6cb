"""Cheap latent previews: a linear map from latent channels to RGB, fitted to the VAE itself.

Decoding every few steps would cost as much as the run; one matrix product per latent pixel costs
nothing. Instead of shipping per-model colour factors, the map is fitted once by least squares
from a handful of smooth colour images encoded with the pipeline's own VAE, so it is correct for
any Wan VAE (z-16 or z-48, real or tiny).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

FIT_IMAGES = 12
FIT_SIZE = 64


class LatentPreviewer:
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self.weight = weight  # (z_dim, 3)
        self.bias = bias  # (3,)

    @classmethod
    @torch.no_grad()
    def fit(cls, vae, seed: int = 0) -> LatentPreviewer:
        """Least-squares fit of normalised latents -> the pixels they came from (downsampled)."""
        generator = torch.Generator().manual_seed(seed)
        size = max(FIT_SIZE, vae.config.scale_factor_spatial * 4)
        corners = torch.rand(FIT_IMAGES, 3, 2, 2, generator=generator) * 2 - 1
        images = torch.nn.functional.interpolate(corners, size=(size, size), mode="bilinear", align_corners=True)
        device = next(vae.parameters()).device
        dtype = next(vae.parameters()).dtype
        latents = vae.encode(images.unsqueeze(2).to(device, dtype)).latent_dist.mode().float().cpu()
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
        latents = (latents - mean) / std  # what the transformer denoises
        z = latents[:, :, 0].permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        target = torch.nn.functional.interpolate(images, size=latents.shape[-2:], mode="area")
        rgb = target.permute(0, 2, 3, 1).reshape(-1, 3)
        design = torch.cat([z, torch.ones(len(z), 1)], dim=1)
        solution = torch.linalg.lstsq(design, rgb).solution
        return cls(solution[:-1], solution[-1])

    def __call__(self, latents: torch.Tensor, frame: int = 0) -> Image.Image:
        """An RGB image of one latent frame ((B, C, F, h, w) latents, first batch item)."""
        z = latents[0, :, frame].float().cpu().permute(1, 2, 0)
        rgb = (z @ self.weight + self.bias).clamp(-1, 1)
        pixels = ((rgb + 1) * 127.5).round().to(torch.uint8).numpy()
        image = Image.fromarray(np.ascontiguousarray(pixels))
        # Upscale small latent grids so the preview is visible in the page.
        scale = max(1, 256 // max(image.size))
        return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image
