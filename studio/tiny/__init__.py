"""Tiny random-weight checkpoints for tests, benchmarks and the UI's offline mode.

Each builder writes a folder with the same classes and file layout as the real model, so that
the studio loads it through exactly the same `from_pretrained` path. Outputs are noise; the
wiring, shapes, files and errors are real. Builders are registered below as
`folder name -> "module:function"`; each function takes the target folder and returns nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path

BUILDERS: dict[str, str] = {
    "captioner": "studio.tiny.captioner:build_tiny_captioner",
    "wan-ti2v": "studio.tiny.wan:build_tiny_wan_ti2v",
    "wan-a14b": "studio.tiny.wan:build_tiny_wan_a14b",
    "finetuned-transformer": "studio.tiny.wan:build_tiny_finetuned_transformer",
    "finetuned-lora": "studio.tiny.wan:build_tiny_finetuned_lora",
    "finetuned-lora-a14b": "studio.tiny.wan:build_tiny_finetuned_lora_a14b",
}


def build_tiny_models(root: str | Path, only: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    """Write every registered tiny checkpoint under `root`; existing complete folders are kept."""
    root = Path(root)
    built = {}
    for name, target in BUILDERS.items():
        if only and name not in only:
            continue
        folder = root / name
        marker = folder / ".complete"
        if force or not marker.exists():
            module_name, function_name = target.split(":")
            builder = getattr(importlib.import_module(module_name), function_name)
            folder.mkdir(parents=True, exist_ok=True)
            builder(folder)
            marker.write_text("ok\n")
        built[name] = folder
    return built
