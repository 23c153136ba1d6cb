"""A loud warning when `--device auto` falls back to the CPU on a machine that has an NVIDIA GPU.

The usual cause is a driver older than the CUDA runtime inside the torch wheel (PyPI's torch
carries its own CUDA; the driver must be at least as new). torch then reports no GPU and every
model silently runs on the CPU, hundreds of times slower. This module notices the hardware
without importing torch (device nodes, the kernel module's version file, `nvidia-smi` on PATH),
and only then asks torch whether it can use it.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger("studio")

DEVICE_NODES = (Path("/dev/nvidia0"), Path("/dev/nvidiactl"))
DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")


def nvidia_evidence(nodes=DEVICE_NODES, version_file: Path = DRIVER_VERSION_FILE, which=shutil.which) -> str | None:
    """What shows an NVIDIA GPU on this machine (a device node, the driver, nvidia-smi), or None."""
    for node in nodes:
        if Path(node).exists():
            return str(node)
    if Path(version_file).exists():
        return str(version_file)
    smi = which("nvidia-smi")
    return smi or None


def driver_version(version_file: Path = DRIVER_VERSION_FILE) -> str | None:
    """The loaded kernel driver's version ("570.124.06"), read from the kernel module's file."""
    try:
        text = Path(version_file).read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def unusable_gpu_message(evidence: str | None, cuda_available: bool, torch_version: str, torch_cuda: str | None,
                         driver: str | None) -> str | None:
    """The warning to show, or None when there is no GPU or torch can use it."""
    if evidence is None or cuda_available:
        return None
    if torch_cuda is None:
        cause = (f"this torch {torch_version} is a CPU-only build; install a CUDA build of torch and torchvision "
                 "(see the README's Hardware section)")
    else:
        found = f"driver {driver}" if driver else "the installed driver"
        cause = (f"torch {torch_version} is built for CUDA {torch_cuda} and {found} may be too old for it; update "
                 "the NVIDIA driver, or install a torch and torchvision built for an older CUDA (see the README's "
                 "Hardware section)")
    return (f"An NVIDIA GPU is present ({evidence}) but PyTorch cannot use it, so --device auto runs every model "
            f"on the CPU, which is very slow: {cause}. Set --device cpu to silence this warning.")


@functools.lru_cache(maxsize=1)
def auto_device_warning() -> str | None:
    """The warning for this machine (checked once per process); imports torch only if a GPU is visible."""
    evidence = nvidia_evidence()
    if evidence is None:
        return None
    import torch

    return unusable_gpu_message(evidence, torch.cuda.is_available(), torch.__version__.split("+")[0],
                                torch.version.cuda, driver_version())


@functools.lru_cache(maxsize=1)
def warn_if_gpu_unusable() -> str | None:
    """Log the warning once per process (on stderr for the CLI, in the server log for the page)."""
    message = auto_device_warning()
    if message:
        log.warning(message)
    return message
