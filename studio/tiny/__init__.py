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
    "speed-lora": "studio.tiny.wan:build_tiny_speed_lora",
    "speed-lora-a14b": "studio.tiny.wan:build_tiny_speed_lora_a14b",
}


def build_tiny_models(root: str | Path, only: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    """Write every registered tiny checkpoint under `root`; existing complete folders are kept.

    A folder that cannot be written (a read-only mount, a root-owned folder in a container) is
    an error about `tiny_dir`, not about the model that was about to be loaded from it.
    """
    root = Path(root)
    try:
        return _build(root, only, force)
    except OSError as exc:  # permission, read-only file system, a file in the way, a full disk
        from ..errors import InputError

        raise InputError(f"cannot write the tiny checkpoints to {root.resolve()} ({exc.strerror or exc}: {exc.filename}); "
                         "set --tiny-dir / CHAI_STUDIO_TINY_DIR to a folder you can write", "tiny_dir") from exc


def _build(root: Path, only: list[str] | None, force: bool) -> dict[str, Path]:
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
