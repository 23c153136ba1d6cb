"""The published Wan2.2 transformer configurations (the diffusers `transformer/config.json` of each
checkpoint, as diffusers' `scripts/convert_wan_to_diffusers.py` writes them) and VAE geometry, for benchmarks and memory plans that build the full-size models with random weights
or on the meta device. The studio never needs them to run: real checkpoints carry their own."""

from __future__ import annotations

# Wan-AI/Wan2.2-TI2V-5B-Diffusers: one 5 B transformer on the z-48 VAE (16x spatial compression).
TI2V_5B_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 24, "attention_head_dim": 128, "in_channels": 48,
    "out_channels": 48, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 14336, "num_layers": 30,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024,
}
# Wan-AI/Wan2.2-T2V-A14B-Diffusers: two experts of this shape (high and low noise) on the z-16 VAE
# (8x spatial compression).
A14B_EXPERT_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
    "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024,
}
TRANSFORMERS = {"ti2v-5b": TI2V_5B_TRANSFORMER, "t2v-a14b": A14B_EXPERT_TRANSFORMER}
# The latent geometry of each checkpoint's `vae/config.json`: Wan2.2's own z-48 VAE for TI2V-5B
# (16x spatial, 4x temporal) and the Wan2.1 z-16 VAE that A14B keeps (8x spatial, 4x temporal).
VAES = {"ti2v-5b": {"z_dim": 48, "scale_factor_spatial": 16, "scale_factor_temporal": 4},
        "t2v-a14b": {"z_dim": 16, "scale_factor_spatial": 8, "scale_factor_temporal": 4}}
VAE_SPATIAL = {name: vae["scale_factor_spatial"] for name, vae in VAES.items()}


def latent_shape(preset_name: str, height: int, width: int, frames: int) -> tuple[int, int, int, int]:
    """(channels, latent frames, latent height, latent width) of a video, as the VAE encodes it:
    the first frame alone, then one latent frame per `scale_factor_temporal` frames."""
    vae = VAES[preset_name]
    spatial, temporal = vae["scale_factor_spatial"], vae["scale_factor_temporal"]
    return vae["z_dim"], (frames - 1) // temporal + 1, height // spatial, width // spatial


def meta_transformer(preset_name: str):
    """The published transformer (one expert for A14B) on PyTorch's meta device: every module and
    parameter shape, no memory and no weights."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights():
        return WanTransformer3DModel(**TRANSFORMERS[preset_name])
