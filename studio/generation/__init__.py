"""Side-by-side generation: the CHAI-finetuned Wan2.2 beside the zero-shot Wan2.2.

Same prompt, seed and settings through both models; shared text encoder, tokenizer, VAE and
scheduler config; outputs in a new run directory.

Importing the package is cheap: the names below load their module on first use, so the page and
the command line can read presets, settings and run records without importing torch, which comes
in with `loading` (`load_generator`) and what a generator is composed of: the
`LoadedModels` (loaded), a `SideBySideRenderer` (rendering) and a `RunWriter` (run_writing).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Cancelled": "rendering",
    "LoadedModels": "loaded",
    "RenderedPair": "rendering",
    "RunResult": "run_writing",
    "RunWriter": "run_writing",
    "SideBySideGenerator": "generator",
    "SideBySideRenderer": "rendering",
    "load_generator": "loading",
    "library_versions": "provenance",
    "load_tokenizer": "loading",
    "module_bytes": "placement",
    "RunSummary": "run_records",
    "list_runs": "run_records",
    "load_run": "run_records",
    "load_run_by_id": "run_records",
    "load_run_file": "run_records",
    "load_run_from_video": "run_records",
    "run_dir_for": "run_records",
    "DEFAULT_NEGATIVE_PROMPT": "presets",
    "DEFAULT_PRESET": "presets",
    "PRESETS": "presets",
    "Preset": "presets",
    "get_preset": "presets",
    "GenerationSettings": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
