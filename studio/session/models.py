"""The models behind a session, loaded on first use and shared by every visitor of one server.

The page must serve before any model is touched (fast start-up, and editing and composing still
work when a model cannot load), so nothing here imports torch, transformers or diffusers at import
time. A model that fails to load becomes a `ModelLoadError` whose message says what to set; the
original exception stays its cause, for the log.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..config import StudioConfig
from ..errors import ModelLoadError, StudioError

if TYPE_CHECKING:
    from ..captioner import Captioner
    from ..generation.generator import SideBySideGenerator

log = logging.getLogger("studio.session")

# Below this much GPU memory the 8B captioner and the Wan2.2 generator take turns on the card: loading
# one unloads the other, which reloads on its next use (~17.5 GB of captioner weights plus ~22 GB
# for TI2V-5B's text encoder and two transformers in bf16, with activations on top).
SHARED_GPU_MIN_GIB = 70.0


def models_take_turns(device: str, total_gpu_gib: float | None) -> bool:
    """Whether the captioner and the generator must not sit on the GPU together."""
    return device == "cuda" and total_gpu_gib is not None and total_gpu_gib < SHARED_GPU_MIN_GIB


class SharedModels:
    """The captioner, the optional second captioner (for the captioner A/B view), the generators and
    the tokenizer of one server process."""

    def __init__(self, config: StudioConfig, load_tokenizer: bool = True) -> None:
        """`load_tokenizer=False` counts tokens only with a tokenizer some generator already holds
        (else estimates): `python -m studio compose` must stay instant and never import torch."""
        self.config = config
        self.load_tokenizer = load_tokenizer
        self._compare: Captioner | None = None
        self._tokenizer: Any = None
        self._tokenizer_failed = False
        self._lock = threading.Lock()

    # -- captioners --------------------------------------------------------------------------------
    def captioner_loaded(self) -> bool:
        from ..captioner import loaded_captioner

        return loaded_captioner() is not None

    def captioner(self) -> Captioner:
        from .. import captioner as module

        if module.loaded_captioner() is None and self._take_turns():
            self._unload_generators()
        location = str(self.config.tiny_dir) if self.config.tiny else self.config.captioner
        return _loading(lambda: module.get_captioner(self.config), "the captioner", location,
                        "--captioner / CHAI_STUDIO_CAPTIONER")

    @property
    def has_compare_captioner(self) -> bool:
        return bool(self.config.compare_captioner.strip())

    def compare_captioner(self) -> Captioner:
        """The second captioner of the A/B view (`--compare-captioner`), loaded once."""
        from ..captioner import Captioner

        if not self.has_compare_captioner:
            raise ModelLoadError("no second captioner is set; start with --compare-captioner ID_OR_FOLDER "
                                 "(for example the zero-shot Qwen3-VL) to compare captioners")
        with self._lock:
            if self._compare is None or not self._compare.loaded:
                location = self.config.compare_captioner
                self._compare = _loading(
                    lambda: Captioner.from_pretrained(location, device=self.config.resolved_device(),
                                                      dtype=self.config.resolved_dtype()),
                    "the second captioner", location, "--compare-captioner / CHAI_STUDIO_COMPARE_CAPTIONER")
            return self._compare

    # -- generation --------------------------------------------------------------------------------
    def generator(self, preset: str, finetuned: str | None = None,
                  speed_adapter: str | None = None) -> SideBySideGenerator:
        """The generator for `preset` with `finetuned` in the finetuned slot and `speed_adapter` under
        both sides (None: the configured ones; a speed adapter of "" is none)."""
        from .. import captioner, generation

        if self._take_turns():
            captioner.unload_captioner()
        config = self.config.replace(finetuned=finetuned) if finetuned else self.config
        if speed_adapter is not None:
            config = config.replace(speed_adapter=speed_adapter)
        location = str(config.tiny_dir) if config.tiny else config.baseline
        # Not kept here: `get_generator` holds the one loaded generator and frees it (GPU memory
        # included) before loading another, which a second reference here would prevent.
        return _loading(lambda: generation.get_generator(config, preset), f"the {preset} generator", location,
                        "--baseline / CHAI_STUDIO_BASELINE and --finetuned / CHAI_STUDIO_FINETUNED")

    def _unload_generators(self) -> None:
        from .. import generation

        generation.unload_generator()

    def _take_turns(self) -> bool:
        import torch

        if self.config.resolved_device() != "cuda" or not torch.cuda.is_available():
            return False
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return models_take_turns("cuda", total)

    # -- tokenizer ---------------------------------------------------------------------------------
    def loaded_tokenizer(self) -> Any:
        """The umT5 tokenizer if one is loaded (alone or in a generator), else None; never loads."""
        # Looked up, not imported: the loading module brings torch, which counting tokens for
        # `python -m studio compose` must never import.
        loading = sys.modules.get("studio.generation.loading")
        generator = loading.loaded_generator() if loading is not None else None
        if generator is not None and generator.models.tokenizer is not None:
            return generator.models.tokenizer
        return self._tokenizer

    def tokenizer(self) -> Any:
        """The baseline's tokenizer for exact token counts, loaded once; None when it cannot be loaded
        (the meter then estimates). A failure is not retried: an offline hub id would otherwise stall
        every compose."""
        loaded = self.loaded_tokenizer()
        if loaded is not None or self._tokenizer_failed or not self.load_tokenizer:
            return loaded
        from ..generation import load_tokenizer

        try:
            self._tokenizer = load_tokenizer(self.config)
        except StudioError as exc:
            log.warning("token counts are estimated: %s", exc)
            self._tokenizer_failed = True
        return self._tokenizer


def _loading(load: Callable[[], Any], what: str, location: str, settings: str) -> Any:
    """Run a loader; a failure the loader did not explain becomes a ModelLoadError naming the settings."""
    try:
        return load()
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure must reach the user as one message
        text = str(exc)
        hint = ""
        if "huggingface.co" in text or "offline" in text.lower() or isinstance(exc, (OSError, ConnectionError)):
            hint = " If this machine is offline, point the setting at a local folder."
        if "cuda" in text.lower():
            hint += " Without a GPU, set --device cpu (slow) or use --tiny for a wiring check."
        raise ModelLoadError(f"could not load {what} from {location!r} ({type(exc).__name__}: {text[:300]}). "
                             f"Set {settings}.{hint}") from exc
