"""The models behind a session, loaded on first use and shared by every visitor of one server.

The page must serve before any model is touched (fast start-up, and editing and composing still
work when a model cannot load), so nothing here imports torch, transformers or diffusers at import
time. A model that fails to load becomes a `ModelLoadError` whose message says what to set; the
original exception stays its cause, for the log.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import StudioConfig
from ..errors import ModelLoadError, StudioError
from ..generation.presets import DEFAULT_PRESET
from ..gpu_check import before_a_model_loads
from ..tiny.locations import model_locations

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


class _Loaded:
    """What is loaded in this process, one model per role, each with the key it was loaded for.

    One instance per process (`_LOADED`), whatever number of `SharedModels` views exist: GPU
    memory is the process's, so a page, a batch and a judge in one process must share one captioner
    rather than each hold an 8B copy."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.captioner: Captioner | None = None
        self.captioner_key: tuple | None = None
        self.compare: Captioner | None = None
        self.compare_key: tuple | None = None
        self.generator: SideBySideGenerator | None = None
        self.generator_key: tuple | None = None
        self.tokenizer: Any = None
        self.tokenizer_key: tuple | None = None
        self.tokenizer_failed: dict[tuple, StudioError] = {}


_LOADED = _Loaded()


def _free(model: Any) -> None:
    """Drop a model's weights and give its memory back, GPU cache included, before another loads."""
    unload = getattr(model, "unload", None)
    if unload is not None:
        unload()
    del model
    _give_memory_back()


def _give_memory_back() -> None:
    """Collect what no longer has a reference and return the GPU's cached blocks to the driver."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported just to free: no torch means no GPU memory held
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _captioner_key(config: StudioConfig) -> tuple:
    from ..captioner import captioner_path

    return (captioner_path(config), config.resolved_device(), str(config.resolved_dtype()))


def loaded_captioner() -> Captioner | None:
    """The captioner loaded now in this process, if any (never loads)."""
    current = _LOADED.captioner
    return current if current is not None and current.loaded else None


def loaded_generator() -> SideBySideGenerator | None:
    """The generator loaded now in this process, if any (never loads)."""
    return _LOADED.generator


def unload_generator() -> bool:
    """Free the loaded generator (text encoder, VAE and both sides). False when none was loaded."""
    with _LOADED.lock:
        was_loaded = _LOADED.generator is not None
        _LOADED.generator = _LOADED.generator_key = None  # the registry held the only reference
    if was_loaded:
        _give_memory_back()
    return was_loaded


def _generator_key(config: StudioConfig, preset: str) -> tuple:
    """What a loaded generator depends on; the LoRA scale and settings folder are not in it (they
    are applied to the loaded one). The models are keyed by where they come from (and which
    provider's presets size them), as named without building anything."""
    locations = model_locations(config)
    return (type(locations).__name__, locations.baseline(preset, build=False), locations.finetuned(preset, build=False),
            config.speed_adapter, config.device,
            config.dtype, config.memory_mode, config.attention, config.first_block_cache, config.vae_tiling,
            config.compile, config.precision, config.parallel, preset)


def unload_captioner() -> bool:
    """Free the loaded captioner (e.g. to make room for generation). False when none was loaded."""
    with _LOADED.lock:
        current, _LOADED.captioner, _LOADED.captioner_key = _LOADED.captioner, None, None
    if current is None:
        return False
    _free(current)
    return True


class SharedModels:
    """The one way to a model: the captioner, the optional second captioner (for the captioner A/B
    view), the generator and the tokenizer, for one configuration.

    Every caller (the page, the CLI, a batch, the judge, a dataset build, explore) asks here. The
    models themselves are held once per process: asking with another key (location, device,
    dtype; preset or finetune for the generator) frees the model held before, GPU memory included,
    and then loads the new one."""

    def __init__(self, config: StudioConfig, load_tokenizer: bool = True) -> None:
        """`load_tokenizer=False` counts tokens only with a tokenizer some generator already holds
        (else estimates): `python -m studio compose` must stay instant and never import torch."""
        self.config = config
        self.load_tokenizer = load_tokenizer

    # -- captioners --------------------------------------------------------------------------------
    def captioner_loaded(self) -> bool:
        return loaded_captioner() is not None

    def captioner(self) -> Captioner:
        """The captioner of this configuration, loaded on first use and kept warm. A different prompt
        pack needs no reload: the loaded model is prompted with the config's pack from then on."""
        location = model_locations(self.config).shown("captioner")
        return _loading(self._captioner, "the captioner", location, "--captioner / CHAI_STUDIO_CAPTIONER")

    def _captioner(self) -> Captioner:
        from ..captioner import Captioner, PromptPack

        pack = PromptPack.for_config(self.config)
        with _LOADED.lock:
            key = _captioner_key(self.config)
            current = loaded_captioner()
            if current is not None and _LOADED.captioner_key == key:
                current.pack = pack
                return current
            unload_captioner()
            if self._take_turns():
                self._unload_generators()
            _LOADED.captioner = Captioner.from_pretrained(key[0], device=key[1], dtype=self.config.resolved_dtype(),
                                                          pack=pack)
            _LOADED.captioner_key = key
            return _LOADED.captioner

    @property
    def has_compare_captioner(self) -> bool:
        return bool(self.config.compare_captioner.strip())

    def loaded_compare_captioner(self) -> Captioner | None:
        """The second captioner if it is loaded now (never loads)."""
        current = _LOADED.compare
        return current if current is not None and current.loaded else None

    def compare_captioner(self) -> Captioner:
        """The second captioner of the A/B view (`--compare-captioner`), loaded once."""
        from ..captioner import Captioner

        if not self.has_compare_captioner:
            raise ModelLoadError("no second captioner is set; start with --compare-captioner ID_OR_FOLDER "
                                 "(for example the zero-shot Qwen3-VL) to compare captioners")
        location = self.config.compare_captioner
        with _LOADED.lock:
            key = (location, self.config.resolved_device(), str(self.config.resolved_dtype()))
            current = self.loaded_compare_captioner()
            if current is not None and _LOADED.compare_key == key:
                return current
            old, _LOADED.compare, _LOADED.compare_key = _LOADED.compare, None, None
            if old is not None:
                _free(old)
            del old
            _LOADED.compare = _loading(
                lambda: Captioner.from_pretrained(location, device=key[1], dtype=self.config.resolved_dtype()),
                "the second captioner", location, "--compare-captioner / CHAI_STUDIO_COMPARE_CAPTIONER")
            _LOADED.compare_key = key
            return _LOADED.compare

    # -- generation --------------------------------------------------------------------------------
    def generator(self, preset: str, finetuned: str | None = None,
                  speed_adapter: str | None = None) -> SideBySideGenerator:
        """The generator for `preset` with `finetuned` in the finetuned slot and `speed_adapter` under
        both sides (None: the configured ones; a speed adapter of "" is none)."""
        if self._take_turns():
            unload_captioner()
        config = self.config.replace(finetuned=finetuned) if finetuned else self.config
        if speed_adapter is not None:
            config = config.replace(speed_adapter=speed_adapter)
        location = model_locations(config).shown("baseline")
        return _loading(lambda: self._generator(config, preset or DEFAULT_PRESET), f"the {preset} generator",
                        location, "--baseline / CHAI_STUDIO_BASELINE and --finetuned / CHAI_STUDIO_FINETUNED")

    @staticmethod
    def _generator(config: StudioConfig, preset: str) -> SideBySideGenerator:
        from ..generation.loading import load_generator

        with _LOADED.lock:
            key = _generator_key(config, preset)
            if _LOADED.generator_key != key:
                unload_generator()  # the old pair is freed before the next one loads
                _LOADED.generator = load_generator(config, preset)
                _LOADED.generator_key = key
            generator = _LOADED.generator
            generator.models.set_lora_scale(config.lora_scale)  # applied in place, no reload
            generator.models.settings_dir = Path(config.settings_dir)  # read per run
            return generator

    def _unload_generators(self) -> None:
        unload_generator()

    def _take_turns(self) -> bool:
        import torch

        if self.config.resolved_device() != "cuda" or not torch.cuda.is_available():
            return False
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return models_take_turns("cuda", total)

    # -- tokenizer ---------------------------------------------------------------------------------
    def _tokenizer_key(self, preset: str | None) -> tuple:
        return (model_locations(self.config).baseline(preset or DEFAULT_PRESET, build=False), preset)

    def loaded_tokenizer(self, preset: str | None = None) -> Any:
        """The umT5 tokenizer if one is loaded (alone or in a generator), else None; never loads."""
        generator = loaded_generator()
        if generator is not None and generator.models.tokenizer is not None:
            return generator.models.tokenizer
        return _LOADED.tokenizer if _LOADED.tokenizer_key == self._tokenizer_key(preset) else None

    def tokenizer(self, preset: str | None = None, required: bool = False) -> Any:
        """The baseline's tokenizer (of `preset`, else the default one) for exact token counts, loaded
        once; None when it cannot be loaded (the meter then estimates), or, when `required`, the
        loader's error. A failure is not retried: an offline hub id would otherwise stall every compose."""
        loaded = self.loaded_tokenizer(preset)
        key = self._tokenizer_key(preset)
        failure = _LOADED.tokenizer_failed.get(key)
        if loaded is None and failure is None and self.load_tokenizer:
            from ..generation import load_tokenizer

            with _LOADED.lock:
                try:
                    loaded = load_tokenizer(self.config, preset)
                    _LOADED.tokenizer, _LOADED.tokenizer_key = loaded, key
                except StudioError as exc:
                    log.warning("token counts are estimated: %s", exc)
                    _LOADED.tokenizer_failed[key] = failure = exc
        if loaded is None and required and failure is not None:
            raise failure
        return loaded


def _loading(load: Callable[[], Any], what: str, location: str, settings: str) -> Any:
    """Run a loader; a failure the loader did not explain becomes a ModelLoadError naming the settings."""
    before_a_model_loads()
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
