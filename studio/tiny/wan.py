"""Tiny random-weight Wan2.2 checkpoints: the real classes, configs and file layout, tiny sizes.

* `wan-ti2v`: a TI2V-5B-style `WanPipeline` folder (expand_timesteps, 48-channel latents, a
  z-48 residual `AutoencoderKLWan` with 16x spatial compression, a tiny `UMT5EncoderModel` and an
  umT5-compatible Unigram tokenizer built offline with the `tokenizers` library).
* `wan-a14b`: a T2V-A14B-style folder: two experts (`transformer`, `transformer_2`),
  `boundary_ratio` 0.875, a z-16 VAE with 8x spatial compression.
* `finetuned-transformer`: a diffusers folder holding only `transformer/`, shaped like the tiny
  TI2V transformer, with different weights (so its videos differ from the baseline's).
* `finetuned-lora`: a LoRA `.safetensors` for the tiny TI2V transformer, made with peft and
  written with the pipeline's `save_lora_weights` (adapter config in the header, as `studio train` writes it).
* `finetuned-lora-a14b`: the same for the tiny A14B experts (loaded into both).
* `speed-lora`, `speed-lora-a14b`: random "step-distilled" speed LoRAs over the same transformers,
  reaching the feed-forward layers too, each with a `speed_adapter.json` sidecar (2 steps, no guidance).

Every folder is written with `save_pretrained` and read back through the same `from_pretrained`
path as the real checkpoints. Outputs are noise; shapes, files and wiring are real.
"""

from __future__ import annotations

from pathlib import Path

# Sizes: small enough that a 2-step, 9-frame, 64x64 generation takes well under a second on CPU.
TEXT_DIM = 32
TI2V_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 12, "in_channels": 48, "out_channels": 48,
    "text_dim": TEXT_DIM, "freq_dim": 32, "ffn_dim": 48, "num_layers": 2, "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32,
}
# The A14B experts get another width, so a LoRA for one family cannot load into the other.
A14B_TRANSFORMER = {
    "patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 16, "in_channels": 16, "out_channels": 16,
    "text_dim": TEXT_DIM, "freq_dim": 32, "ffn_dim": 48, "num_layers": 2, "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32,
}
# The random tiny VAEs put out latents with a standard deviation of about 0.12 on ordinary footage;
# normalising by it gives unit-variance latents, as the real VAEs' latents_std does, so training
# losses on the tiny models have realistic proportions (data term vs noise term).
TINY_LATENTS_STD = 0.12
TI2V_VAE = {
    "base_dim": 4, "z_dim": 48, "in_channels": 12, "out_channels": 12, "is_residual": True, "patch_size": 2,
    "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1, "temperal_downsample": [False, True, True],
    "latents_mean": [0.0] * 48, "latents_std": [TINY_LATENTS_STD] * 48, "scale_factor_spatial": 16, "scale_factor_temporal": 4,
}
A14B_VAE = {
    "base_dim": 4, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1, "temperal_downsample": [False, True, True],
    "latents_mean": [0.0] * 16, "latents_std": [TINY_LATENTS_STD] * 16, "scale_factor_spatial": 8, "scale_factor_temporal": 4,
}
# Which transformer and VAE shapes each preset's tiny checkpoint is built from (its size limits follow).
TINY_SHAPES = {"ti2v-5b": (TI2V_TRANSFORMER, TI2V_VAE), "t2v-a14b": (A14B_TRANSFORMER, A14B_VAE)}
SCHEDULER = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "num_train_timesteps": 1000, "flow_shift": 5.0}
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]

# The tokenizer's word list: generic English for shot descriptions, written for this project.
_WORDS = ["a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "from", "with", "by", "for", "over", "under", "into", "onto", "across", "through", "toward", "away", "behind", "beside", "between", "above", "below", "near", "far", "left", "right", "up", "down", "front", "back", "center", "middle", "is", "are", "was", "were", "be", "being", "has", "have", "its", "their", "his", "her", "this", "that", "these", "those", "it", "they", "he", "she", "we", "man", "woman", "child", "person", "people", "dog", "cat", "bird", "horse", "car", "street", "road", "city", "room", "house", "window", "door", "table", "chair", "tree", "forest", "river", "sea", "ocean", "beach", "sky", "cloud", "sun", "moon", "night", "day", "light", "dark", "shadow", "red", "blue", "green", "yellow", "white", "black", "gray", "brown", "orange", "purple", "bright", "dim", "warm", "cold", "soft", "hard", "walks", "runs", "stands", "sits", "turns", "looks", "holds", "opens", "moves", "slowly", "quickly", "gently", "camera", "shot", "close", "wide", "medium", "long", "view", "angle", "frame", "scene", "subject", "motion", "spatial", "pan", "tilt", "zoom", "dolly", "track", "static", "handheld", "push", "pull", "low", "high", "eye", "level", "overhead", "aerial", "focus", "blur", "background", "foreground", "rain", "snow", "wind", "fire", "water", "smoke", "glass", "metal", "wood", "stone", "grass", "flower", "hair", "face", "hand", "eyes", "smile", "one", "two", "three", "first", "then", "while", "as", "during", "after", "before", "again", "still", "only", "very", "small", "large", "tall"]


def _tiny_tokenizer():
    """An umT5-compatible (T5 Unigram, `</s>` appended, `<pad>` id 0) tokenizer, built offline."""
    from transformers import T5Tokenizer

    pieces = ["\u2581" + w for w in _WORDS]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)] + list(".,;:!?'\"-()")
    pieces += ["\u2581" + ch for ch in letters] + letters + ["\u2581"]
    # Unigram scores: whole words beat spelling them out letter by letter.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(p, -2.0 if len(p) > 2 else -8.0) for p in pieces]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


TINY_TEXT_ENCODER = {"vocab_size": 320, "d_model": TEXT_DIM, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4,
                         "relative_attention_num_buckets": 8, "relative_attention_max_distance": 32}


def _tiny_text_encoder(seed: int, shape: dict | None = None):
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    config = UMT5Config(**(shape or TINY_TEXT_ENCODER), feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                        pad_token_id=0, eos_token_id=1)
    return UMT5EncoderModel(config).eval()


def _tiny_transformer(shape: dict, seed: int):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    model = WanTransformer3DModel(**shape)
    # Freshly built Wan blocks start close to identity (zero-ish output projections); nudge every
    # weight so different seeds give visibly different videos.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()


def _tiny_vae(shape: dict, seed: int):
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(**shape).eval()


def _check_vocab(tokenizer, text_encoder) -> None:
    if len(tokenizer) > text_encoder.config.vocab_size:
        raise AssertionError(f"tiny tokenizer has {len(tokenizer)} tokens, encoder only {text_encoder.config.vocab_size}")


def build_tiny_wan_ti2v(folder: Path, text_encoder: dict | None = None, transformer: dict | None = None,
                        vae: dict | None = None) -> None:
    """The tiny TI2V folder; the shape arguments let the benchmark build a medium-size one."""
    from diffusers import UniPCMultistepScheduler, WanPipeline

    tokenizer = _tiny_tokenizer()
    encoder = _tiny_text_encoder(seed=0, shape=text_encoder)
    _check_vocab(tokenizer, encoder)
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=encoder, vae=_tiny_vae(vae or TI2V_VAE, seed=1),
        scheduler=UniPCMultistepScheduler(**SCHEDULER),
        transformer=_tiny_transformer(transformer or TI2V_TRANSFORMER, seed=2),
        transformer_2=None, boundary_ratio=None, expand_timesteps=True,
    )
    pipe.save_pretrained(folder)


def build_tiny_wan_a14b(folder: Path) -> None:
    from diffusers import UniPCMultistepScheduler, WanPipeline

    tokenizer = _tiny_tokenizer()
    text_encoder = _tiny_text_encoder(seed=0)
    _check_vocab(tokenizer, text_encoder)
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=_tiny_vae(A14B_VAE, seed=1),
        scheduler=UniPCMultistepScheduler(**{**SCHEDULER, "flow_shift": 12.0}),
        transformer=_tiny_transformer(A14B_TRANSFORMER, seed=3),
        transformer_2=_tiny_transformer(A14B_TRANSFORMER, seed=4),
        boundary_ratio=0.875, expand_timesteps=False,
    )
    pipe.save_pretrained(folder)


def build_tiny_finetuned_transformer(folder: Path, transformer: dict | None = None) -> None:
    """A diffusers folder with only `transformer/` (a full finetune of the tiny TI2V transformer)."""
    _tiny_transformer(transformer or TI2V_TRANSFORMER, seed=12).save_pretrained(Path(folder) / "transformer")


def _save_tiny_lora(folder: Path, shape: dict, seed: int, rank: int = 4, targets: list[str] | None = None) -> None:
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from ..training.artifacts import save_lora

    transformer = _tiny_transformer(shape, seed=seed)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets or LORA_TARGETS,
                                       init_lora_weights=True))
    # peft initialises B to zero (a no-op adapter); give both factors weights so the finetune shows.
    torch.manual_seed(seed + 100)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn_like(param) * 0.5)
    # The same writer as `studio train`: the adapter config goes into the file's header.
    save_lora(Path(folder), [get_peft_model_state_dict(transformer)], [transformer.peft_config["default"].to_dict()])


def build_tiny_finetuned_lora(folder: Path, transformer: dict | None = None, rank: int = 4) -> None:
    _save_tiny_lora(folder, transformer or TI2V_TRANSFORMER, seed=22, rank=rank)


def build_tiny_finetuned_lora_a14b(folder: Path) -> None:
    _save_tiny_lora(folder, A14B_TRANSFORMER, seed=32)


# Lightning-style LoRAs adapt every linear layer; the tiny ones reach the feed-forward layers too,
# so a speed LoRA and a finetune LoRA overlap on attention and differ elsewhere, as the real ones do.
SPEED_LORA_TARGETS = LORA_TARGETS + ["ffn.net.0.proj", "ffn.net.2"]
TINY_SPEED_SIDECAR = {"steps": 2, "guidance_scale": 1.0, "flow_shift": 3.0,
                      "description": "tiny random speed LoRA (the studio's tests): noise, in 2 steps"}


def _save_tiny_speed_lora(folder: Path, shape: dict, seed: int) -> None:
    import json

    from ..generation.finetune import SIDECAR_NAME

    _save_tiny_lora(folder, shape, seed=seed, targets=SPEED_LORA_TARGETS)
    (Path(folder) / SIDECAR_NAME).write_text(json.dumps(TINY_SPEED_SIDECAR, indent=2) + "\n")


def build_tiny_speed_lora(folder: Path) -> None:
    _save_tiny_speed_lora(folder, TI2V_TRANSFORMER, seed=42)


def build_tiny_speed_lora_a14b(folder: Path) -> None:
    _save_tiny_speed_lora(folder, A14B_TRANSFORMER, seed=52)
