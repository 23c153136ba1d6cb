"""The finetuned slot: what kind of weights it holds, whether they fit the baseline, loading them.

Three kinds are accepted:
* ``diffusers``: a diffusers pipeline folder or hub id (only `transformer/`, and `transformer_2/`
  for A14B, are used) or a bare transformer folder (config.json + weights);
* ``transformer``: one `.safetensors` file with a full transformer state dict (diffusers keys);
* ``lora``: a `.safetensors` LoRA file, or a folder holding `pytorch_lora_weights.safetensors` (and,
  for a two-expert A14B LoRA that `studio train` wrote, `pytorch_lora_weights_transformer_2.safetensors`
  for the low-noise expert; without it the one LoRA goes into both experts).

Compatibility is checked from configs and tensor shapes *before* any weights are loaded or any
generation starts; a mismatch raises an error naming both the finetune and the baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelLoadError
from ..hub import resolve_model_location

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
LORA_WEIGHT_NAME_2 = "pytorch_lora_weights_transformer_2.safetensors"  # A14B low-noise expert
ADAPTER_NAME = "finetune"
# A speed adapter is a LoRA folder or file marked by this sidecar; the finetune menu leaves those out.
SIDECAR_NAME = "speed_adapter.json"  # inside a LoRA folder; a loose NAME.safetensors uses NAME.speed_adapter.json
# Config keys that fix a transformer's parameter shapes.
SHAPE_KEYS = ("patch_size", "num_attention_heads", "attention_head_dim", "in_channels", "out_channels",
              "text_dim", "freq_dim", "ffn_dim", "num_layers", "image_dim", "added_kv_proj_dim")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class FinetuneSource:
    kind: str  # "diffusers", "transformer" or "lora"
    location: str  # path or hub id as given
    weight_file: Path | None = None  # the .safetensors for "transformer" and "lora"
    subfolder: str | None = None  # "transformer" for a pipeline folder, None for a bare transformer folder
    expert_2_file: Path | None = None  # a LoRA of its own for the low-noise expert (A14B)


def classify_finetuned(location: str, field: str = "finetuned") -> FinetuneSource:
    """Work out the finetune's kind from the path alone (no weights read except tensor names).
    `field` is the setting errors name (the speed adapter slot is classified the same way)."""
    if not location or not str(location).strip():
        raise InputError("no finetuned weights configured; pass --finetuned PATH (a diffusers folder or hub id, "
                         "a transformer .safetensors or a LoRA .safetensors)", "finetuned")
    location = str(location).strip()
    path = Path(location).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise InputError(f"{location} is not a .safetensors file, a diffusers folder or a hub id", field)
        return FinetuneSource("lora" if _is_lora_file(path, field) else "transformer", location, weight_file=path)
    if path.is_dir():
        if (path / LORA_WEIGHT_NAME).is_file():
            second = path / LORA_WEIGHT_NAME_2
            return FinetuneSource("lora", location, weight_file=path / LORA_WEIGHT_NAME,
                                  expert_2_file=second if second.is_file() else None)
        if (path / "transformer" / "config.json").is_file():
            return FinetuneSource("diffusers", location, subfolder="transformer")
        if (path / "config.json").is_file():
            return FinetuneSource("diffusers", location, subfolder=None)
        files = sorted(path.glob("*.safetensors"))
        if len(files) == 1:
            return classify_finetuned(str(files[0]), field)
        raise InputError(f"{location} holds no transformer/ folder, config.json or single .safetensors file",
                         field)
    if _looks_local(location):
        raise InputError(f"{location} does not exist", field)
    return FinetuneSource("diffusers", location, subfolder="transformer")


@dataclass(frozen=True)
class FinetuneChoice:
    """Weights found in the models folder that fit the finetuned slot."""

    label: str  # what the page shows: folder name, kind and (for trained LoRAs) base and steps
    location: str


def list_finetunes(models_dir: str | Path) -> list[FinetuneChoice]:
    """LoRAs (`studio train` output folders or loose LoRA files), diffusers folders and transformer files
    one level below `models_dir`, sorted by name. Unreadable entries and speed adapters (LoRAs with a
    speed sidecar) are left out, never raised."""
    import json

    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name.lower()):
        if has_sidecar(entry):
            continue  # a speed adapter: offered in its own menu
        try:
            source = classify_finetuned(str(entry))
        except InputError:
            continue
        detail = source.kind
        summary = entry / "training.json"
        if source.kind == "lora" and summary.is_file():
            try:
                facts = json.loads(summary.read_text())
                detail = f"LoRA for {facts['base_model']['label']}, {facts['steps']} steps"
            except (OSError, ValueError, KeyError, TypeError):
                pass
        found.append(FinetuneChoice(f"{entry.name} ({detail})", str(entry)))
    return found


def _looks_local(location: str) -> bool:
    return (location.startswith(("/", ".", "~")) or location.endswith(".safetensors")
            or not _HUB_ID.match(location) or Path(location).parent.is_dir() and Path(location).parent != Path("."))


def _is_lora_file(path: Path, field: str = "finetuned") -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception as exc:  # a truncated or non-safetensors file  # noqa: BLE001 - any read failure means the file is unusable
        raise InputError(f"{path} is not a readable safetensors file ({exc})", field) from exc
    return any("lora" in key for key in keys)


def _describe(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={config.get(k)}" for k in ("num_layers", "num_attention_heads", "attention_head_dim",
                                                          "in_channels", "ffn_dim"))


def check_transformer_config(finetuned: dict[str, Any], baseline: dict[str, Any], what: str, baseline_name: str) -> None:
    diffs = [k for k in SHAPE_KEYS if _norm(finetuned.get(k)) != _norm(baseline.get(k))]
    if diffs:
        raise InputError(
            f"{what} does not fit baseline {baseline_name}: {', '.join(diffs)} differ "
            f"(finetuned: {_describe(finetuned)}; baseline: {_describe(baseline)})", "finetuned")


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def check_state_dict_shapes(shapes: dict[str, tuple], model, what: str, baseline_name: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensors have other shapes (e.g. {k}: {shapes[k]} vs baseline {expected[k]})")
        if missing:
            parts.append(f"{len(missing)} baseline tensors are missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are unknown to the baseline (e.g. {unexpected[0]})")
        raise InputError(f"{what} does not fit baseline {baseline_name}: " + "; ".join(parts), "finetuned")


def safetensors_shapes(path: Path) -> dict[str, tuple]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118 - safe_open is not iterable


def check_lora_fits(state_dict: dict[str, Any], transformer, what: str, baseline_name: str,
                    field: str = "finetuned") -> None:
    """Every LoRA pair must target an existing Linear whose in/out features match A and B."""
    modules = dict(transformer.named_modules())
    for key, tensor in state_dict.items():
        name = key.removeprefix("transformer.")
        match = re.match(r"(.+)\.lora_([AB])\.weight$", name)
        if not match:
            continue
        module_name, factor = match.groups()
        module = modules.get(module_name)
        if module is None or not hasattr(module, "in_features"):
            raise InputError(f"LoRA {what} targets {module_name}, which baseline {baseline_name} does not have",
                             field)
        size = tensor.shape[1] if factor == "A" else tensor.shape[0]
        expected = module.in_features if factor == "A" else module.out_features
        if size != expected:
            side = "input" if factor == "A" else "output"
            raise InputError(
                f"LoRA {what} does not fit baseline {baseline_name}: {module_name} has {side} size {expected} "
                f"in the baseline but {size} in the LoRA (a LoRA for another Wan2.2 model?)", field)


def load_finetuned_transformers(source: FinetuneSource, baseline_transformers: list, dtype, baseline_name: str) -> list:
    """Full-weight finetune: one transformer per baseline expert, checked against the baseline."""
    from diffusers import WanTransformer3DModel

    names = ["transformer", "transformer_2"][: len(baseline_transformers)]
    if source.kind == "transformer":
        if len(baseline_transformers) > 1:
            raise InputError(
                f"{source.location} is a single transformer file but baseline {baseline_name} has two experts; "
                "pass a diffusers folder with transformer/ and transformer_2/", "finetuned")
        base = baseline_transformers[0]
        check_state_dict_shapes(safetensors_shapes(source.weight_file), base, source.location, baseline_name)
        from safetensors.torch import load_file

        model = WanTransformer3DModel.from_config(base.config)
        model.load_state_dict(load_file(str(source.weight_file)), strict=True)
        return [model.to(dtype).eval()]

    location = resolve_model_location(source.location, "CHAI_STUDIO_FINETUNED or --finetuned")
    loaded = []
    for name, base in zip(names, baseline_transformers):
        subfolder = name if source.subfolder is not None else None
        if subfolder is None and name != "transformer":
            raise InputError(f"{source.location} is a single transformer folder but baseline {baseline_name} has "
                             "two experts; pass a pipeline folder with transformer/ and transformer_2/", "finetuned")
        try:
            config = WanTransformer3DModel.load_config(location, subfolder=subfolder)
        except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all mean the finetune cannot be used
            if Path(source.location).exists():
                raise InputError(f"{source.location} has no {name}/config.json for baseline {baseline_name}'s "
                                 f"{name}", "finetuned") from exc
            raise ModelLoadError(f"could not load finetuned weights {source.location!r} ({exc}); check --finetuned") from exc
        check_transformer_config(config, dict(base.config), f"{source.location} ({name})", baseline_name)
        try:
            model = WanTransformer3DModel.from_pretrained(location, subfolder=subfolder, dtype=dtype)
        except Exception as exc:  # noqa: BLE001 - reported to the user as a load error
            raise ModelLoadError(f"could not load finetuned {name} from {source.location!r}: {exc}") from exc
        loaded.append(model.eval())
    return loaded


def lora_file(source: FinetuneSource, expert: int = 1) -> Path:
    """The LoRA file for expert 1 or 2: the low-noise expert's own file when there is one."""
    return source.expert_2_file if expert == 2 and source.expert_2_file else source.weight_file


def read_lora(source: FinetuneSource, pipeline_class, expert: int = 1, field: str = "finetuned") -> dict:
    """The LoRA state dict in diffusers naming (the loader converts other trainers' formats)."""
    try:
        state_dict = pipeline_class.lora_state_dict(str(lora_file(source, expert)))
    except Exception as exc:  # noqa: BLE001 - the loader raises many kinds for foreign files
        raise InputError(f"{source.location} is not a LoRA the Wan loader understands ({exc})", field) from exc
    if isinstance(state_dict, tuple):
        state_dict = state_dict[0]
    return state_dict

def sidecar_path(local: Path, weight_file: Path) -> Path:
    """Where a LoRA's sidecar lives: in its folder, or beside a loose file under the file's own name
    (so two loose adapters in one folder each keep their own)."""
    if local.is_dir():
        return local / SIDECAR_NAME
    return weight_file.with_name(weight_file.stem + "." + SIDECAR_NAME)


def has_sidecar(entry: Path) -> bool:
    """Whether a models-folder entry is marked as a speed adapter (a sidecar in or beside it)."""
    return (entry.is_dir() or entry.suffix == ".safetensors") and sidecar_path(entry, entry).is_file()
