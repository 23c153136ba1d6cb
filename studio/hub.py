"""Where a model comes from: a local folder, the local Hugging Face cache, or the hub.

Why this exists: asked for a hub id on a machine that cannot reach the hub, the hub client retries
every file five times with back-off, so a load fails only after minutes. Resolving the location
first turns that into an immediate message naming the setting to change, and loads a model that
is already in the cache without touching the network at all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from .errors import InputError, ModelLoadError

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CONNECT_TIMEOUT_S = 3.0


def resolve_model_location(name: str, setting: str) -> str:
    """A local folder or file as given; a cached hub snapshot's folder; or the hub id when the hub
    is reachable. Raises `ModelLoadError` naming `setting` when the model cannot be had."""
    path = Path(name).expanduser()
    if path.exists() or not REPO_ID_RE.match(name):
        return str(path) if path.exists() else name  # not a hub id: the loader explains what is wrong
    cached = _cached_snapshot(name)
    if cached is not None:
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise ModelLoadError(f"{name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                             f"download it first, or set {setting} to a local folder")
    endpoint = hub_endpoint()
    if not _reachable(endpoint):
        raise ModelLoadError(f"cannot reach the Hugging Face hub ({endpoint}) to download {name!r}; connect this "
                             f"machine, or set {setting} to a local folder (--tiny runs every step offline on random-weight checkpoints)")
    return name


def check_local_location(name: str, setting: str) -> None:
    """Refuse, before any model loads, a model setting naming a local path that is not there. A
    hub id (org/name) is left to `resolve_model_location`, which needs the hub or its cache."""
    if not name or not name.strip():
        return
    if Path(name).expanduser().exists() or REPO_ID_RE.match(name):
        return
    raise InputError(f"{name} does not exist; give a local folder or weights file, or a hub id such as org/name",
                     setting)


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def _cached_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss (not cached, partial, bad cache) means "not usable offline"
        return None


def _reachable(endpoint: str) -> bool:
    """Whether the hub answers at all (any HTTP status counts), asked through huggingface_hub's own
    HTTP session, so HTTPS_PROXY / HTTP_PROXY / NO_PROXY and a custom client factory apply exactly as
    they will for the download."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=CONNECT_TIMEOUT_S, follow_redirects=False)
        return True
    except Exception:  # noqa: BLE001 - refused, timed out, proxy down or TLS failed: no download can work
        return False


def download_models(locations: Iterable[str]) -> list[str]:
    """Fetch the hub ids among `locations` into the local cache now (what a ZeroGPU Space does at
    start-up, so no download happens inside a GPU call's time limit). Local paths and empty entries
    are left alone; returns the hub ids fetched."""
    from huggingface_hub import snapshot_download

    fetched = []
    for name in dict.fromkeys(locations):
        if name and REPO_ID_RE.match(name) and not Path(name).expanduser().exists():
            snapshot_download(name)
            fetched.append(name)
    return fetched
