"""The models behind the page, loaded on first use and shared by every visitor.

The page must serve before any model is touched (fast start-up, and a page that still works for
editing and composing when a model cannot be loaded). So nothing here imports torch, transformers
or diffusers at import time: the captioner and generator packages are imported inside the methods
that need them. A model that fails to load becomes a `ModelLoadError` whose message says what to
set; the UI shows it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import StudioConfig
from ..errors import ModelLoadError, StudioError

# Below this much GPU memory the 8B captioner and the Wan2.2 generator take turns on the card: loading
# one unloads the other, which reloads on its next use (~17.5 GB of captioner weights plus ~22 GB
# for TI2V-5B's text encoder and two transformers in bf16, with activations on top).
SHARED_GPU_MIN_GIB = 70.0


def models_take_turns(device: str, total_gpu_gib: float | None) -> bool:
    """Whether the captioner and the generator must not sit on the GPU together."""
    return device == "cuda" and total_gpu_gib is not None and total_gpu_gib < SHARED_GPU_MIN_GIB


def tiny_config(config: StudioConfig) -> StudioConfig:
    """Tiny mode: every backend reads `config.tiny` and loads its tiny checkpoint from `tiny_dir`
    (built there on first use with `studio.tiny.build_tiny_models`), so only the flag is set here.
    The generator falls back to the tiny LoRA when no finetuned weights are given."""
    return config if config.tiny else config.replace(tiny=True)


@dataclass
class Backends:
    """Lazily loaded models for one server process (all sessions share them)."""

    config: StudioConfig
    _generators: dict[str, Any] = field(default_factory=dict, repr=False)
    _vocabulary: Any = None
    _tokenizer: Any = None
    _tokenizer_failed: bool = False

    # -- vocabulary, presets and video (no model) ----------------------------------------------
    def vocabulary(self) -> Any:
        if self._vocabulary is None:
            self._vocabulary = self.vocabulary_module().load_vocabulary()
        return self._vocabulary

    def vocabulary_module(self) -> Any:
        from ..caption import vocabulary

        return vocabulary

    def presets(self) -> Any:
        from .. import shot_library as presets

        return presets

    def video(self) -> Any:
        from .. import video

        return video

    # -- models (torch is imported here, on first use, never at start-up) -----------------------
    def captioner_module(self) -> Any:
        from .. import captioner

        return captioner

    def generation_module(self) -> Any:
        from .. import generation

        return generation

    def captioner(self) -> Any:
        module = self.captioner_module()
        if module.loaded_captioner() is None and self._models_take_turns():
            self.generation_module().unload_generator()
            self._generators.clear()
        # Named by what is actually loaded: in tiny mode that is the tiny folder, not the default hub id.
        location = str(self.config.tiny_dir) if self.config.tiny else self.config.captioner
        return _loading(lambda: module.get_captioner(self.config), "the captioner", location,
                        "--captioner / CHAI_STUDIO_CAPTIONER")

    def generator(self, preset: str, finetuned: str | None = None) -> Any:
        """The generator for `preset`, with `finetuned` in the finetuned slot (default: the configured one)."""
        module = self.generation_module()
        if self._models_take_turns():
            self.captioner_module().unload_captioner()
        config = self.config.replace(finetuned=finetuned) if finetuned else self.config
        location = str(config.tiny_dir) if config.tiny else config.baseline
        return _loading(lambda: module.get_generator(config, preset), f"the {preset} generator", location, "--baseline / CHAI_STUDIO_BASELINE and --finetuned / CHAI_STUDIO_FINETUNED")

    def _models_take_turns(self) -> bool:
        import torch

        if self.config.resolved_device() != "cuda" or not torch.cuda.is_available():
            return False
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return models_take_turns("cuda", total)

    def loaded_tokenizer(self) -> Any:
        """The umT5 tokenizer if one is loaded (alone or in a generator), else None; never loads."""
        for generator in list(self._generators.values()):
            tokenizer = getattr(generator, "tokenizer", None)
            if tokenizer is not None:
                return tokenizer
        return self._tokenizer

    def tokenizer(self) -> Any:
        """The baseline's tokenizer for exact token counts, loaded once; None when it cannot be
        loaded (the meter then estimates). A failure is not retried: an offline hub id would
        otherwise stall every compose."""
        loaded = self.loaded_tokenizer()
        if loaded is not None or self._tokenizer_failed:
            return loaded
        try:
            self._tokenizer = self.generation_module().load_tokenizer(self.config)
        except StudioError:
            self._tokenizer_failed = True
        return self._tokenizer

    def remember_generator(self, preset: str, generator: Any) -> None:
        self._generators[preset] = generator


def _loading(load: Any, what: str, location: str, settings: str) -> Any:
    """Run a loader; failures the loader did not explain become a ModelLoadError naming the settings."""
    try:
        return load()
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure must reach the user as one message
        hint = ""
        text = str(exc)
        if "huggingface.co" in text or "offline" in text.lower() or isinstance(exc, (OSError, ConnectionError)):
            hint = " If this machine is offline, point the setting at a local folder."
        if "CUDA" in text or "cuda" in text:
            hint += " Without a GPU, set --device cpu (slow) or use --tiny for a wiring check."
        raise ModelLoadError(
            f"could not load {what} from {location!r} ({type(exc).__name__}: {text[:300]}). Set {settings}.{hint}"
        ) from None
