"""Side-by-side generation: the CHAI-finetuned Wan2.2 beside the zero-shot Wan2.2.

Same prompt, seed and settings through both models; shared text encoder, tokenizer, VAE and
scheduler config; outputs in a new run directory. Importing this package imports torch.
"""

from .generator import (
    Cancelled,
    RenderedPair,
    RunResult,
    SideBySideGenerator,
    get_generator,
    library_versions,
    load_tokenizer,
    module_bytes,
    unload_generator,
)
from .outputs import (
    RunSummary,
    list_runs,
    load_run,
    load_run_from_video,
    read_first_frame,
)
from .presets import (
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_PRESET,
    PRESETS,
    Preset,
    get_preset,
)
from .settings import GenerationSettings

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_PRESET",
    "PRESETS",
    "Cancelled",
    "GenerationSettings",
    "Preset",
    "RenderedPair",
    "RunResult",
    "RunSummary",
    "SideBySideGenerator",
    "get_generator",
    "get_preset",
    "library_versions",
    "list_runs",
    "load_run",
    "load_run_from_video",
    "load_tokenizer",
    "module_bytes",
    "read_first_frame",
    "unload_generator",
]
