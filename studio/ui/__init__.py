"""The web page. `build_page(config)` returns the Gradio Blocks; `launch(config, ...)` serves it.

Importing this package imports Gradio but no model library; models load on first use.
"""

from __future__ import annotations

from .server import launch

__all__ = ["launch"]
