"""The published Wan2.2 transformer configurations (the diffusers `transformer/config.json` of each
checkpoint), for benchmarks and memory plans that build the full-size models with random weights
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
VAE_SPATIAL = {"ti2v-5b": 16, "t2v-a14b": 8}
TRANSFORMERS = {"ti2v-5b": TI2V_5B_TRANSFORMER, "t2v-a14b": A14B_EXPERT_TRANSFORMER}
