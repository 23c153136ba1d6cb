"""The speed adapter slot as a visitor picks it: names inside the models folder, never server paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import StudioConfig
from ..errors import InputError

NO_SPEED_ADAPTER = "none"  # the menu's value for "no speed adapter, whatever the server started with"


def speed_adapter_choices(config: StudioConfig) -> list[tuple[str, str]]:
    """(label, value) pairs: the server's own setting (value ""), none, then every LoRA in the models
    folder that carries a speed sidecar."""
    from ..generation.speed_adapter import list_speed_adapters

    started = Path(config.speed_adapter).name if config.speed_adapter else "none set"
    return [(f"As started ({started})", ""), ("None: the models' own sampling", NO_SPEED_ADAPTER)] + [
        (choice.label, Path(choice.location).name) for choice in list_speed_adapters(config.models_dir)]


def speed_adapter_location(config: StudioConfig, choice: Any) -> str:
    """Where the picked adapter is: the server's setting for "", "" (none) for `NO_SPEED_ADAPTER`.
    Only names on the models folder's current list are accepted, so a client never names a path."""
    if choice in (None, ""):
        return config.speed_adapter
    if choice == NO_SPEED_ADAPTER:
        return ""
    if not isinstance(choice, str) or choice not in {value for _, value in speed_adapter_choices(config)[2:]}:
        raise InputError("is not one of the speed adapters in the models folder; refresh the list and pick again",
                         "speed_adapter")
    return str(Path(config.models_dir) / choice)


def speed_adapter_defaults(config: StudioConfig, choice: Any) -> dict[str, Any]:
    """The steps, guidance and shift the picked adapter asks for ({} without an adapter): what the
    page puts in its sliders when the adapter is picked."""
    from ..generation.speed_adapter import describe_speed_adapter

    adapter = describe_speed_adapter(speed_adapter_location(config, choice))
    return adapter.defaults() if adapter else {}
