"""Where each model of a configuration is found: its settings, or the tiny checkpoints.

Tiny mode changes where the models come from and nothing about how they load, so the choice is
made once, here (`model_locations`), and everything that differs with it (the checkpoints, the
presets' sizes, the prompt pack, what records and the page call the models) is asked of the provider
it returns instead of testing `config.tiny`. A location is asked for with `build=False` when only
its name is needed (a cache key, a calibration look-up, a message): nothing is written then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The tiny checkpoint folders (see `BUILDERS`) standing in for each preset's baseline and finetune.
TINY_FOLDERS = {"ti2v-5b": ("wan-ti2v", "finetuned-lora"), "t2v-a14b": ("wan-a14b", "finetuned-lora-a14b")}
TINY_CAPTIONER = "captioner"


class ModelLocations:
    """The models the settings name: folders, files or hub ids, as given (the loaders resolve hub
    ids through `studio.hub`)."""

    # The full-size models: worth a warning before they would load on a CPU.
    full_size = True
    # What the page says about these models above everything else (None: nothing to say).
    notice: str | None = None
    # The studio's own prompt pack (a folder under prompts/captioner) these checkpoints take when
    # `caption_prompts` names none.
    prompt_pack = "default"
    # What the finetune menu calls the started weights when no finetune was given.
    no_finetune_label = "none set"

    def __init__(self, config: Any) -> None:
        self.config = config

    def preset(self, name: str):
        """The named preset with the sizes and limits these checkpoints take (the tiny variant for the
        tiny checkpoints; an InputError naming the `preset` field when there is no such preset)."""
        from ..generation.presets import get_preset

        return get_preset(name, tiny=not self.full_size)

    def recorded(self, role: str, preset: str = "") -> str:
        """How a dataset or training record names the `role` model ("captioner" or "baseline"): the
        setting as given, so the record means the same on another machine."""
        return self.captioner() if role == "captioner" else self.config.baseline

    def finetune_label(self) -> str:
        """What the finetune menu calls the weights the server started with."""
        return Path(self.config.finetuned).name if self.config.finetuned else self.no_finetune_label

    def captioner(self, build: bool = True) -> str:
        return self.config.captioner

    def baseline(self, preset: str, build: bool = True) -> str:
        return self.config.baseline

    def resolved_baseline(self, preset: str, build: bool = True) -> str:
        """The baseline as a loader opens it: a hub id turned into its cached snapshot, or refused at
        once with the setting to change when the hub cannot be reached."""
        from ..hub import resolve_model_location

        return resolve_model_location(self.baseline(preset, build), "CHAI_STUDIO_BASELINE or --baseline")

    def finetuned(self, preset: str, build: bool = True) -> str:
        """The finetune in the finetuned slot: the configured one, else the provider's own ("" is none)."""
        return self.config.finetuned

    def shown(self, role: str) -> str:
        """What a message names as the source of `role` ("captioner" or "baseline")."""
        return getattr(self.config, role)

    def to_download(self) -> list[str]:
        """The locations a start-up download may fetch (hub ids among them are fetched)."""
        return [self.config.captioner, self.config.baseline, self.config.finetuned]


class TinyLocations(ModelLocations):
    """The tiny random-weight checkpoints under `tiny_dir`, built on first use. A finetune given
    explicitly still goes in the finetuned slot; without one, the preset's tiny LoRA does."""

    full_size = False
    prompt_pack = "tiny"  # the default texts with a small frame budget: a CPU wiring check stays fast
    no_finetune_label = "the tiny LoRA"
    notice = ("**Tiny mode:** every model here is a random-weight wiring check built offline. Captions, "
              "scores, critiques and videos are noise; they show that each step runs end to end, "
              "not what the real models produce.")

    def recorded(self, role: str, preset: str = "") -> str:
        # A tiny folder's path means nothing elsewhere; the tiny checkpoints are rebuilt, not copied.
        return "tiny:captioner" if role == "captioner" else f"tiny:{preset}"

    def _folder(self, name: str, build: bool) -> str:
        if not build:
            return str(Path(self.config.tiny_dir) / name)
        from . import build_tiny_models

        return str(build_tiny_models(self.config.tiny_dir, only=[name])[name])

    def captioner(self, build: bool = True) -> str:
        return self._folder(TINY_CAPTIONER, build)

    def baseline(self, preset: str, build: bool = True) -> str:
        return self._folder(TINY_FOLDERS[preset][0], build)

    def resolved_baseline(self, preset: str, build: bool = True) -> str:
        return self.baseline(preset, build)  # a local folder: nothing to look up

    def finetuned(self, preset: str, build: bool = True) -> str:
        return self.config.finetuned or self._folder(TINY_FOLDERS[preset][1], build)

    def shown(self, role: str) -> str:
        return str(self.config.tiny_dir)

    def to_download(self) -> list[str]:
        return []  # built offline


def model_locations(config: Any) -> ModelLocations:
    """The one place tiny mode is told apart from real models when looking for them."""
    return TinyLocations(config) if getattr(config, "tiny", False) else ModelLocations(config)
