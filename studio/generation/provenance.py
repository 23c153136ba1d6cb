"""What a run record needs to be reproduced and trusted: code version, content hashes, hardware.

Content hashes are SHA-256 over the bytes of the files (a folder's hash covers every file's
relative path and bytes, in sorted order), so two copies of the same weights hash alike wherever
they sit. Hashing a many-gigabyte folder takes a while, so results are kept per process, keyed by
path, size and modification time. Hub snapshots are not hashed: their revision already names the
content.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
_cache: dict[tuple, str] = {}
_cache_lock = threading.Lock()


def _signature(path: Path) -> tuple:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return (str(path.resolve()), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(path: str | Path) -> str | None:
    """sha256 of a file, or of a folder's files (relative paths and bytes); None when absent."""
    path = Path(path).expanduser()
    if not path.exists():
        return None
    key = _signature(path)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    if path.is_file():
        value = file_sha256(path)
    else:
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode() + b"\0" + file_sha256(file).encode() + b"\n")
        value = digest.hexdigest()
    with _cache_lock:
        _cache[key] = value
    return value


def local_content_hash(location: str | None) -> str | None:
    """The hash of a local file or folder; None for hub ids and hub cache snapshots."""
    if not location or "/snapshots/" in str(location):
        return None
    return content_hash(location) if Path(location).expanduser().exists() else None


def studio_version() -> dict[str, Any]:
    """The package version and, when running from a git checkout, its commit (and whether edited)."""
    from .. import __version__

    root = Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"version": __version__, "git_commit": None}
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            info.update(git_commit=commit or None, git_dirty=bool(dirty))
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def library_versions() -> dict[str, str]:
    """Python's and the model libraries' versions, as a run record keeps them."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "peft", "av", "numpy", "accelerate"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return versions


def ffmpeg_version() -> str | None:
    """The FFmpeg (libavcodec) build PyAV encodes with."""
    try:
        import av

        versions = getattr(av, "ffmpeg_version_info", None)
        if versions:
            return str(versions)
        return ".".join(map(str, av.library_versions["libavcodec"]))
    except Exception:  # noqa: BLE001 - provenance is best effort, never a reason to fail a run
        return None


def gpu_info() -> dict[str, Any] | None:
    """GPU name, driver and CUDA version when a CUDA GPU is in use; None on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    info: dict[str, Any] = {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
                            "cuda": torch.version.cuda, "driver": None}
    try:
        info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=10,
                                        check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return info
