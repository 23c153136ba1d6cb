"""The models behind the page, loaded on first use and shared by every visitor.

The page must serve before any model is touched (fast start-up, and a page that still works for
editing and composing when a model cannot be loaded). So nothing here imports torch, transformers
or diffusers at import time: the captioner and generator packages are imported inside the methods
that need them. A backend package that is missing from this checkout, or a model that fails to
load, becomes a `StudioError` whose message says what to set; the UI shows it in place.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from ..config import StudioConfig
from ..errors import ModelLoadError, StudioError



class BackendUnavailable(StudioError):
    """A step whose code is not part of this installation (yet)."""


def import_backend(module: str, step: str, needs: tuple[str, ...] = ()) -> Any:
    """Import a backend package, turning its absence into a message the page can show."""
    try:
        loaded = importlib.import_module(module)
        missing = [name for name in needs if not hasattr(loaded, name)]
        if missing:
            raise BackendUnavailable(
                f"{step} is not available yet in this installation ({module} has no {', '.join(missing)})."
            )
        return loaded
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".") or exc.name.startswith(module)):
            raise BackendUnavailable(
                f"{step} is not available yet in this installation (module {module} is missing)."
            ) from None
        raise ModelLoadError(
            f"{step} needs the Python package {exc.name!r}; install the studio's requirements.txt."
        ) from None


def tiny_config(config: StudioConfig) -> StudioConfig:
    """Tiny mode: every backend reads `config.tiny` and loads its tiny checkpoint from `tiny_dir`
    (built there on first use with `studio.tiny.build_tiny_models`), so only the flag is set here.
    The generator falls back to the tiny LoRA when no finetuned weights are given."""
    return config if config.tiny else config.replace(tiny=True)


@dataclass
class Backends:
    """Lazily loaded models for one server process (all sessions share them)."""

    config: StudioConfig
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _generators: dict[str, Any] = field(default_factory=dict, repr=False)
    _vocabulary: Any = None
    _tokenizer: Any = None
    _tokenizer_failed: bool = False

    # -- vocabulary and presets (no model) -------------------------------------------------------
    def vocabulary(self) -> Any:
        if self._vocabulary is None:
            self._vocabulary = self.vocabulary_module().load_vocabulary()
        return self._vocabulary

    def vocabulary_module(self) -> Any:
        return import_backend("studio.caption.vocabulary", "The primitive vocabulary",
                              ("load_vocabulary", "apply_primitive"))

    def presets(self) -> Any:
        return import_backend("studio.presets", "The shot library", ("list_presets", "load_preset"))

    # -- video ----------------------------------------------------------------------------------
    def video(self) -> Any:
        return import_backend("studio.video", "Reading reference clips",
                              ("probe", "detect_shots", "sample_clip", "first_frame"))

    # -- captioner ------------------------------------------------------------------------------
    def captioner_module(self) -> Any:
        return import_backend("studio.captioner", "Captioning", ("get_captioner",))

    def captioner(self) -> Any:
        module = self.captioner_module()
        return _loading(lambda: module.get_captioner(self.config), "the captioner", self.config.captioner,
                        "--captioner / CHAI_STUDIO_CAPTIONER")

    # -- generator ------------------------------------------------------------------------------
    def generation_module(self) -> Any:
        return import_backend("studio.generation", "Generation",
                              ("get_generator", "GenerationSettings"))

    def generator(self, preset: str) -> Any:
        module = self.generation_module()
        return _loading(lambda: module.get_generator(self.config, preset), f"the {preset} generator",
                        self.config.baseline, "--baseline / CHAI_STUDIO_BASELINE and --finetuned / CHAI_STUDIO_FINETUNED")

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
            module = import_backend("studio.generation", "Token counting", ("load_tokenizer",))
            self._tokenizer = module.load_tokenizer(self.config)
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
