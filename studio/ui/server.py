"""Serving: the launch settings that make the page safe to expose (queue, upload limit, host)."""

from __future__ import annotations

from typing import Any

from ..config import StudioConfig
from .backends import Backends, tiny_config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def prepare_config(config: StudioConfig) -> StudioConfig:
    """In tiny mode, point every model at the tiny checkpoints (they are built on first use)."""
    return tiny_config(config) if config.tiny else config


def build(config: StudioConfig) -> Any:
    from .page import build_page

    config = prepare_config(config)
    return build_page(config, Backends(config))


def launch(config: StudioConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, share: bool = False,
           **kwargs: Any) -> Any:
    page = build(config)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    return page.launch(
        server_name=host, server_port=port, share=share,
        max_file_size=f"{config.max_upload_mb}mb",
        allowed_paths=[str(config.output_dir.resolve())],
        head=page.studio_head, css=page.studio_css, show_error=True, **kwargs,
    )
