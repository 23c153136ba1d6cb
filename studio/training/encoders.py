"""What training reads instead of pixels and text: VAE latents and umT5 prompt embeddings.

`TrainingEncoders` loads only the baseline's tokenizer, text encoder and VAE (never a
transformer), so a dataset is built without the 5-14 B denoiser in memory, and training later
needs neither of these. The arithmetic mirrors diffusers' Wan pipelines (diffusers 0.42):
prompts are cleaned and encoded like `WanPipeline._get_t5_prompt_embeds`, latents are the VAE
posterior's mode normalised with the VAE's `latents_mean` / `latents_std`, as
`WanImageToVideoPipeline.prepare_latents` does for its condition frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import StudioConfig
from ..errors import ModelLoadError
from ..gpu_check import before_a_model_loads
from ..generation.loading import baseline_location
from ..generation.presets import Preset
from ..video.framing import cover_crop

MAX_SEQUENCE_LENGTH = 512  # umT5 tokens Wan was trained with


@dataclass
class TrainingEncoders:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    device: torch.device
    location: str

    @classmethod
    def from_config(cls, config: StudioConfig, preset: Preset) -> TrainingEncoders:
        from diffusers import AutoencoderKLWan
        from transformers import AutoTokenizer, UMT5EncoderModel

        location = baseline_location(config, preset)
        device = torch.device(config.resolved_device())
        before_a_model_loads()
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, subfolder="tokenizer")
            text_encoder = UMT5EncoderModel.from_pretrained(location, subfolder="text_encoder",
                                                            dtype=config.resolved_dtype())
            # Wan's VAE stays in float32, as in the generator: bf16 encoding shifts the latents.
            vae = AutoencoderKLWan.from_pretrained(location, subfolder="vae", dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all mean the baseline cannot be used
            raise ModelLoadError(f"could not load the text encoder and VAE of baseline {location!r} "
                                 f"({type(exc).__name__}: {exc}); check --baseline / CHAI_STUDIO_BASELINE") from exc
        return cls(tokenizer, text_encoder.to(device).eval(), vae.to(device).eval(), device, location)

    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """(tokens, dim) embeddings of the prompt's real tokens; training pads them with zeros to 512
        exactly as the pipeline does, so only the real rows are stored."""
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        # Mirrors diffusers 0.42 WanPipeline._get_t5_prompt_embeds: cleaning, padding and truncation.
        inputs = self.tokenizer([prompt_clean(prompt)], padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                                truncation=True, add_special_tokens=True, return_attention_mask=True,
                                return_tensors="pt")
        length = int(inputs.attention_mask.sum())
        hidden = self.text_encoder(inputs.input_ids.to(self.device), inputs.attention_mask.to(self.device))
        return hidden.last_hidden_state[0, :length].to(torch.bfloat16).cpu().contiguous()

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames (F, H, W, 3) -> normalised latents (C, F', H', W') in bfloat16."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, torch.float32)
        video = video.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0  # (1, 3, F, H, W) in [-1, 1]
        latents = self.vae.encode(video).latent_dist.mode()
        config = self.vae.config
        # Mirrors diffusers 0.42 WanImageToVideoPipeline.prepare_latents: its latent normalisation.
        mean = torch.tensor(config.latents_mean, device=self.device).view(1, config.z_dim, 1, 1, 1)
        inv_std = 1.0 / torch.tensor(config.latents_std, device=self.device).view(1, config.z_dim, 1, 1, 1)
        return ((latents - mean) * inv_std)[0].to(torch.bfloat16).cpu().contiguous()


def fit_frames(frames: list[Image.Image], width: int, height: int) -> np.ndarray:
    """Each frame covered and centre-cropped to width x height (no letterboxing, no stretch): framed
    exactly as the generator frames a start image (`studio.video.framing.cover_crop`)."""
    return np.stack([np.asarray(cover_crop(frame, width, height)) for frame in frames])


def write_shard(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors shard atomically: an interrupted run never leaves half a shard behind."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    partial.replace(path)
