"""The finetuned slot as a visitor picks it: names inside the models folder, never server paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import StudioConfig
from ..errors import InputError
from ..tiny.locations import model_locations


def finetune_choices(config: StudioConfig) -> list[tuple[str, str]]:
    """(label, value) pairs: the weights the server started with (value ""), then every LoRA,
    diffusers folder and transformer file in the models folder (`--models-dir`)."""
    from ..generation.finetune import list_finetunes

    started = model_locations(config).finetune_label()
    return [(f"As started ({started})", "")] + [(choice.label, Path(choice.location).name)
                                               for choice in list_finetunes(config.models_dir)]


def finetune_location(config: StudioConfig, choice: Any) -> str:
    """Where the picked weights are ("" keeps the server's own). Only names on the models folder's
    current list are accepted, so a client can never point the server at a path of its own."""
    if choice in (None, ""):
        return ""
    if not isinstance(choice, str) or choice not in {value for _, value in finetune_choices(config)[1:]}:
        raise InputError("is not one of the models in the models folder; refresh the list and pick again",
                         "finetuned")
    return str(Path(config.models_dir) / choice)

