"""The studio's configuration: one typed object.

Every setting is a field of `StudioConfig`. Each field maps onto an environment variable
(`CHAI_STUDIO_<NAME>`) and a command-line flag (`--<name-with-dashes>`); precedence is
flag > environment > default. The README's configuration table is generated from the same field
metadata (`python -m studio config --markdown`), so documentation and code cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError

ENV_PREFIX = "CHAI_STUDIO_"

DEFAULT_CAPTIONER = "chancharikm/CHAI_SFT_model_8b"
ZERO_SHOT_CAPTIONER = "Qwen/Qwen3-VL-8B-Instruct"
DEFAULT_BASELINE = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"


def _setting(default: Any, help: str, choices: tuple[str, ...] | None = None, metavar: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar})


@dataclass(frozen=True)
class StudioConfig:
    captioner: str = _setting(
        DEFAULT_CAPTIONER,
        "CHAI captioner: hub id or local folder of a Qwen3-VL checkpoint "
        f"(`{ZERO_SHOT_CAPTIONER}` gives the zero-shot captioner for A/B comparisons).",
    )
    compare_captioner: str = _setting(
        "",
        "A second captioner the page shows beside the CHAI captioner for the same shot (captioner A/B), e.g. "
        f"`{ZERO_SHOT_CAPTIONER}`; empty = no A/B view.",
    )
    caption_prompts: str = _setting(
        "",
        "Prompt pack folder: the captioner's instructions, critique/revise/reward templates, no-change sentence "
        "and video sampling (`python -m studio prompts import POLICY_DIR --out PACK_DIR` builds one from CHAI's "
        "policy folder); empty = the studio's own pack (its tiny variant under --tiny).",
    )
    baseline: str = _setting(
        DEFAULT_BASELINE,
        "Zero-shot Wan2.2 diffusers pipeline: hub id or local folder. It also supplies the text "
        "encoder, tokenizer, VAE and scheduler shared with the finetuned run.",
    )
    finetuned: str = _setting(
        "",
        "CHAI-finetuned Wan2.2 weights (none is public yet; without them generate compares prompts): a diffusers "
        "folder or hub id, a transformer `.safetensors` file, or a LoRA `.safetensors` file/folder.",
    )
    speed_adapter: str = _setting(
        "",
        "Step-distilled speed LoRA (e.g. a Lightning-style Wan2.2 LoRA) loaded under both sides, beneath the "
        "finetune: a LoRA `.safetensors` file/folder or hub id. Its `speed_adapter.json` sidecar sets the steps, "
        "guidance and shift it needs (else 4 steps, guidance 1.0); explicit values still win. Empty = none.",
        metavar="PATH_OR_ID",
    )
    models_dir: Path = _setting(
        Path("models"), "Folder whose LoRAs (`studio train` output), diffusers folders and transformer files the "
        "page offers for the finetuned slot, and whose LoRAs with a speed sidecar it offers as speed adapters.")
    lora_scale: float = _setting(1.0, "Strength of a LoRA finetune (0-2).")
    device: str = _setting("auto", "Where models run.", ("auto", "cuda", "cpu"))
    dtype: str = _setting(
        "auto", "Model precision; auto = bfloat16 on CUDA, float32 on CPU.",
        ("auto", "bfloat16", "float16", "float32"),
    )
    precision: str = _setting(
        "default", "Weight storage of the Wan transformers: default keeps --dtype; fp8 stores their linear weights "
        "as float8 (torchao weight-only, computed in --dtype), about half the memory of bfloat16; needs the `fp8` "
        "extra (`pip install '.[fp8]'`).", ("default", "fp8"))
    parallel: str = _setting(
        "off", "Split one side's denoising over two GPUs when the sides run one after another: sequence = "
        "diffusers' context (sequence) parallelism. Not available yet: refused on fewer than two CUDA GPUs, and "
        "on two because it needs one process per GPU (see docs/performance.md).", ("off", "sequence"))
    output_dir: Path = _setting(Path("outputs"), "Where run directories (videos, run.json) are written.")
    max_clip_seconds: float = _setting(
        60.0, "Longest reference clip accepted, on the page and by every command; longer clips are refused and "
        "must be trimmed first.")
    max_upload_mb: int = _setting(500, "Largest file the web page accepts.")
    max_aspect_chars: int = _setting(6000, "Longest text accepted for one caption aspect.")
    prompt_words: int = _setting(260, "Word budget of the composed prompt (hard cap 320).")
    queue_size: int = _setting(
        16, "Most model jobs (caption, score, critique, revise, generate) waiting at once; more are refused with "
        "a 'queue full' message. Composing and editing never wait in this queue.")
    session_jobs: int = _setting(2, "Most model jobs one visitor session may have queued or running at once.")
    zerogpu_seconds: int = _setting(
        300, "ZeroGPU Spaces: the most GPU seconds one call may ask for (the platform's per-call maximum); a run "
        "that needs more is refused before the GPU is requested, naming the speed profile that fits.")
    history: str = _setting(
        "auto", "Who sees the run history: `session` (each visitor only their own runs), `shared` (everyone sees "
        "every run) or auto (session when the page is public: bound beyond loopback, shared or on a Space).",
        ("auto", "session", "shared"),
    )
    settings_dir: Path = _setting(
        Path(".studio"), "Folder where the studio keeps what it measured for the loaded checkpoints: the MagCache "
        "calibrations `python -m studio calibrate-cache` writes (per preset, weights and step count).")
    mcp_server: bool = _setting(
        False, "Also serve the page's script endpoints as a Model Context Protocol server (Gradio's `mcp_server`, "
        "at /gradio_api/mcp/), so an agent can caption, compose, generate and judge through the same endpoints. "
        "Needs Gradio's MCP extra: `pip install \"gradio[mcp]\"`.")
    tiny: bool = _setting(False, "Use the tiny random-weight checkpoints (offline wiring checks; outputs are noise).")
    tiny_dir: Path = _setting(Path(".tiny-models"), "Where the tiny checkpoints are written and read.")
    memory_mode: str = _setting(
        "auto", "Where generation weights live: auto picks from free VRAM (all on GPU, model CPU offload, "
        "or group offload layer by layer).", ("auto", "gpu", "model_offload", "group_offload"),
    )
    attention: str = _setting(
        "auto", "Attention kernel for the Wan transformers: auto picks per GPU (flash-attn, then SageAttention when "
        "installed, else PyTorch SDPA; SDPA on a CPU) and run.json records the choice.",
        ("auto", "sdpa", "flash", "flash3", "sage", "xformers"))
    compile: bool = _setting(
        False, "Compile the Wan transformers' repeated blocks once per loaded model (diffusers' "
        "compile_repeated_blocks, regional torch.compile): slower first run, faster steps after.")
    first_block_cache: float = _setting(
        0.0, "First-block cache threshold for generation (0 = off; ~0.05 skips near-duplicate steps).")
    vae_tiling: str = _setting("auto", "Decode videos tile by tile (auto = on with CUDA).", ("auto", "on", "off"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "StudioConfig":
        """Defaults, then `CHAI_STUDIO_*` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw, source=ENV_PREFIX + f.name.upper())
        for name, value in overrides.items():
            if value is not None:
                f = next(x for x in fields(cls) if x.name == name)
                values[name] = _convert(f, value, source="--" + name.replace("_", "-"))
        return cls(**values)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
        """Add one flag per setting. Defaults stay None so the environment is not overridden."""
        group = parser.add_argument_group("studio settings (also CHAI_STUDIO_* environment variables)")
        for f in fields(cls):
            if only is not None and f.name not in only:
                continue
            flag = "--" + f.name.replace("_", "-")
            if f.type in (bool, "bool"):
                group.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
            else:
                group.add_argument(flag, default=None, choices=f.metadata["choices"], help=f.metadata["help"],
                                   metavar=f.metadata["metavar"])

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> "StudioConfig":
        overrides = {f.name: getattr(args, f.name, None) for f in fields(cls)}
        return cls.from_env(environ, **overrides)

    def __post_init__(self) -> None:
        if not 0.0 <= self.lora_scale <= 2.0:
            raise InputError(f"must be between 0 and 2, got {self.lora_scale}", "lora_scale")
        if not 20 <= self.prompt_words <= 320:
            raise InputError(f"must be between 20 and 320 words, got {self.prompt_words}", "prompt_words")
        for name in ("max_clip_seconds", "max_upload_mb", "max_aspect_chars", "queue_size", "session_jobs",
                     "zerogpu_seconds"):
            if getattr(self, name) <= 0:
                raise InputError(f"must be positive, got {getattr(self, name)}", name)
        if not 0.0 <= self.first_block_cache <= 1.0:
            raise InputError(f"must be between 0 (off) and 1, got {self.first_block_cache}", "first_block_cache")

    def replace(self, **changes: Any) -> "StudioConfig":
        return dataclasses.replace(self, **changes)

    def resolved_device(self) -> str:
        """'cuda' when asked for or available, else 'cpu'. Imports torch: call only when loading models."""
        if self.device != "auto":
            return self.device
        import torch

        if torch.cuda.is_available():
            return "cuda"
        from .gpu_check import warn_if_gpu_unusable

        warn_if_gpu_unusable()  # a GPU the driver cannot serve: say so instead of running slowly in silence
        return "cpu"

    def resolved_dtype(self):
        """bfloat16 on CUDA and float32 on CPU unless set explicitly. Imports torch."""
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        return torch.bfloat16 if self.resolved_device() == "cuda" else torch.float32

    @classmethod
    def markdown_table(cls) -> str:
        rows = ["| setting | flag | environment variable | default | meaning |", "|---|---|---|---|---|"]
        for f in fields(cls):
            default = f.default if f.default != "" else "(none)"
            choices = f" One of: {', '.join(f.metadata['choices'])}." if f.metadata["choices"] else ""
            rows.append(
                f"| `{f.name}` | `--{f.name.replace('_', '-')}` | `{ENV_PREFIX}{f.name.upper()}` | "
                f"`{default}` | {f.metadata['help']}{choices} |"
            )
        return "\n".join(rows)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(f: dataclasses.Field, raw: Any, source: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError
            return text in _TRUE
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw).expanduser()
    except ValueError as exc:
        expected = {"bool": "true/false (1/0, yes/no, on/off)", "int": "a whole number", "float": "a number"}[kind]
        raise InputError(f"expected {expected}, got {raw!r}", source) from exc
    value = str(raw)
    if f.metadata["choices"] and value not in f.metadata["choices"]:
        raise InputError(f"must be one of {', '.join(f.metadata['choices'])}, got {value!r}", source)
    return value
