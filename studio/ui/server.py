"""Serving: the launch settings that make the page safe to expose (queue, upload limit, host)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from ..config import StudioConfig
from ..errors import InputError
from .admission import is_public

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def build(config: StudioConfig, public: bool = False) -> Any:
    """The page's Gradio Blocks (every model is found through `model_locations(config)`: under --tiny,
    the tiny checkpoints)."""
    from .page import build_page

    return build_page(config, public=public).blocks


def _inside(path: Path, folder: str) -> bool:
    return path.is_relative_to(Path(folder).resolve())


def serving_paths(output_dir: Path) -> list[str]:
    """Gradio copies the videos it shows into its cache; it needs `allowed_paths` only for an
    outputs folder outside the working and temporary folders. Leaving it out otherwise keeps
    Gradio's file route from serving run folders to anyone who guesses a path. The shipped
    samples folder is always allowed, for the page's example clip."""
    from ..resources import samples_dir

    # The sample clip's folder is public data; inside an installed package it is outside both.
    shipped = [str(samples_dir())]
    resolved = output_dir.resolve()
    if _inside(resolved, os.getcwd()) or _inside(resolved, tempfile.gettempdir()):
        return shipped
    return [*shipped, str(resolved)]


def read_auth(values: list[str] | None) -> list[tuple[str, str]] | None:
    """`--auth` values -> Gradio's (user, password) pairs. Each value is `user:password` or a file
    holding one such pair per line (blank lines and `#` comments skipped)."""
    if not values:
        return None
    pairs = []
    for value in values:
        try:
            lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else [value]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {value} ({type(exc).__name__})", "--auth") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, password = line.partition(":")
            if not sep or not user.strip() or not password:
                raise InputError("expected USER:PASSWORD (or a file of such lines) with both parts non-empty", "--auth")
            pairs.append((user.strip(), password))
    return pairs


def check_mcp_extra(config: StudioConfig) -> None:
    """`mcp_server` needs Gradio's MCP extra (the `mcp` package); without it Gradio would fail
    deep inside launch, so it is refused here in one line."""
    if config.mcp_server and importlib.util.find_spec("mcp") is None:
        raise InputError('needs Gradio\'s MCP extra, which is not installed: pip install "gradio[mcp]" (or start '
                         "without --mcp-server)", "mcp_server")


def launch(config: StudioConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, share: bool = False,
           **kwargs: Any) -> Any:
    """Check the MCP extra, the finetuned weights' path and the outputs folder (a StudioError,
    before anything is served or loaded), clear what a killed run left there, say whether the
    models would run on the CPU, then serve."""
    from ..generation import outputs
    from ..generation.precision import check_precision
    from ..gpu_check import PAGE_MODELS, warn_if_models_run_on_cpu
    from ..hub import check_local_location
    from ..logging_setup import log_as_server
    from .zerogpu import on_zerogpu

    check_mcp_extra(config)
    check_local_location(config.finetuned, "finetuned")
    check_precision(config.precision)
    log_as_server()
    if on_zerogpu():  # downloads happen now, not inside a GPU call's time limit
        from ..hub import download_models
        from ..tiny.locations import model_locations

        download_models(model_locations(config).to_download())
    outputs.check_writable(config.output_dir)
    outputs.clean_leftovers(config.output_dir)
    warn_if_models_run_on_cpu(config, PAGE_MODELS)
    page = build(config, public=is_public(host, share))
    return page.launch(
        server_name=host, server_port=port, share=share,
        max_file_size=f"{config.max_upload_mb}mb",
        allowed_paths=serving_paths(config.output_dir),
        head=page.studio_head, css=page.studio_css, show_error=True, mcp_server=config.mcp_server, **kwargs,
    )
