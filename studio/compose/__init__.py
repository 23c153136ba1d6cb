"""StructuredCaption -> one generation prompt.

`compose(caption, options, tokenizer=None) -> ComposeResult` with `.prompt` and `.report`.
The default mode is deterministic and extractive: it only reuses the user's own sentences and
clauses. This package must not import torch (the CLI's compose path stays fast).
"""

from .composer import ComposeOptions, ComposeReport, ComposeResult, compose

__all__ = ["ComposeOptions", "ComposeReport", "ComposeResult", "compose"]
