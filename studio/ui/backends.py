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
from pathlib import Path
from typing import Any

from ..config import StudioConfig
from ..errors import ModelLoadError, StudioError

# Folder names written by `studio.tiny.build_tiny_models` (see studio/tiny BUILDERS).
TINY_CAPTIONER = "captioner"
TINY_GENERATORS = {"ti2v-5b": "wan-ti2v", "t2v-a14b": "wan-a14b"}
TINY_FINETUNED = {"ti2v-5b": "finetuned-transformer", "t2v-a14b": "finetuned-lora-a14b"}


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
    """Point captioner, baseline and finetuned at the tiny checkpoints (built on first use)."""
    root = Path(config.tiny_dir)
    return config.replace(
        tiny=True,
        captioner=str(root / TINY_CAPTIONER),
        baseline=str(root / TINY_GENERATORS["ti2v-5b"]),
        finetuned=str(root / TINY_FINETUNED["ti2v-5b"]),
    )


@dataclass
class Backends:
    """Lazily loaded models for one server process (all sessions share them)."""

    config: StudioConfig
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tiny_built: bool = False
    _generators: dict[str, Any] = field(default_factory=dict, repr=False)
    _vocabulary: Any = None

    # -- tiny mode ------------------------------------------------------------------------------
    def ensure_tiny_models(self) -> None:
        """In --tiny mode, write the tiny checkpoints the first time a model is needed."""
        if not self.config.tiny or self._tiny_built:
            return
        with self._lock:
            if not self._tiny_built:
                from ..tiny import build_tiny_models

                build_tiny_models(self.config.tiny_dir)
                self._tiny_built = True

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
        self.ensure_tiny_models()
        return module.get_captioner(self.config)

    # -- generator ------------------------------------------------------------------------------
    def generation_module(self) -> Any:
        return import_backend("studio.generation", "Generation",
                              ("get_generator", "GenerationSettings"))

    def generator_config(self, preset: str) -> StudioConfig:
        """The config a preset runs with; in tiny mode each preset has its own tiny pipeline."""
        if self.config.tiny and preset in TINY_GENERATORS:
            root = Path(self.config.tiny_dir)
            return self.config.replace(baseline=str(root / TINY_GENERATORS[preset]),
                                       finetuned=str(root / TINY_FINETUNED[preset]))
        return self.config

    def generator(self, preset: str) -> Any:
        module = self.generation_module()
        self.ensure_tiny_models()
        return module.get_generator(self.generator_config(preset), preset)

    def loaded_tokenizer(self) -> Any:
        """The umT5 tokenizer of a generator that is already loaded, else None (never loads one)."""
        for generator in list(self._generators.values()):
            tokenizer = getattr(generator, "tokenizer", None)
            if tokenizer is not None:
                return tokenizer
        return None

    def remember_generator(self, preset: str, generator: Any) -> None:
        self._generators[preset] = generator
