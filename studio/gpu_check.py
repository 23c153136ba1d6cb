"""What `--device auto` will run on, said before any real model loads.

On a machine with no GPU at all, one line names the models that would run on the CPU, what that
costs, and `--tiny`. On a machine with an NVIDIA GPU that torch cannot use, a loud warning.

The usual cause is a driver older than the CUDA runtime inside the torch wheel (PyPI's torch
carries its own CUDA; the driver must be at least as new). torch then reports no GPU and every
model silently runs on the CPU, hundreds of times slower. This module notices the hardware
without importing torch (device nodes, the kernel module's version file, `nvidia-smi` on PATH),
and only then asks torch whether it can use it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import shutil
from pathlib import Path
from typing import Iterator

from .tiny.locations import model_locations

log = logging.getLogger("studio")

DEVICE_NODES = (Path("/dev/nvidia0"), Path("/dev/nvidiactl"))
DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
# ROCm builds of torch answer `torch.cuda.is_available()` for AMD GPUs, which show up as this node.
ROCM_NODE = Path("/dev/kfd")

# What each kind of model costs on a CPU in float32 (the dtype `auto` picks there). RAM is the
# parameter count times 4 bytes (Qwen3-VL-8B: 8.8 B; TI2V-5B: 5 B transformer + 5.7 B umT5 + VAE).
# Time is arithmetic, not a measurement: a 1280x704, 121-frame TI2V-5B run is about 109k tokens,
# roughly 1e16 FLOPs per guided step, so 50 steps per side at about 1 TFLOP/s take days; a caption
# decodes a few hundred tokens, each reading all 35 GB of weights.
CPU_COSTS = {
    "captioner": "the CHAI captioner (Qwen3-VL-8B: about 35 GB of RAM, tens of minutes per caption)",
    "generator": "Wan2.2 (TI2V-5B with its text encoder: about 45 GB of RAM, days per full-size video)",
    "encoders": "Wan2.2's text encoder and VAE for the latent cache (about 25 GB of RAM, minutes per shot)",
    "trainer": "LoRA training on the Wan2.2 transformer (20 GB of RAM and more, hours per step at full size)",
}


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

PAGE_MODELS = ("captioner", "generator")  # what the page's steps load on first use


def cpu_only_message(models: tuple[str, ...]) -> str:
    """The line for a machine without a GPU: which of `models` would run on the CPU, and `--tiny`."""
    names = [CPU_COSTS[m] for m in models]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (f"No CUDA GPU found, so --device auto runs {listed} on the CPU in float32. Add --tiny for the "
            "offline check on tiny random-weight models, or run on a machine with an NVIDIA GPU.")


def has_gpu_hardware(nodes=DEVICE_NODES, version_file: Path = DRIVER_VERSION_FILE, which=shutil.which,
                     rocm_node: Path = ROCM_NODE) -> bool:
    """Whether this machine shows any GPU torch might use (checked without importing torch)."""
    return nvidia_evidence(nodes, version_file, which) is not None or Path(rocm_node).exists()


def models_on_cpu_message(config, models: tuple[str, ...]) -> str | None:
    """What to say before loading `models` for `config`: None in tiny mode, with an explicit
    `--device`, or when torch can use a GPU here. Without any GPU hardware torch is not imported."""
    if not model_locations(config).full_size or config.device != "auto" or not models:
        return None
    unusable = auto_device_warning()
    if unusable is not None:
        return unusable
    if not has_gpu_hardware():
        return cpu_only_message(models)
    import torch

    return None if torch.cuda.is_available() else cpu_only_message(models)


def warn_if_models_run_on_cpu(config, models: tuple[str, ...]) -> str | None:
    """Log `models_on_cpu_message` (stderr for the CLI, the server log for the page)."""
    message = models_on_cpu_message(config, models)
    if message is not None and message == auto_device_warning():
        warn_if_gpu_unusable()  # the same warning `resolved_device` gives later: logged once per process
    elif message:
        log.warning(message)
    return message


# The CLI names a command's models as it starts, but the line is said when the first of them loads:
# a command refused for bad input (a missing jobs file, a wrong shot number) prints only its error.
_held: tuple | None = None


@contextlib.contextmanager
def said_when_models_load(config, models: tuple[str, ...]) -> Iterator[None]:
    """Within the block, the first `before_a_model_loads` says the line for `models` (once)."""
    global _held
    _held = (config, models) if models else None
    try:
        yield
    finally:
        _held = None


def before_a_model_loads() -> None:
    """Every real model load calls this first; it says the held line, if any, once."""
    global _held
    held, _held = _held, None
    if held is not None:
        warn_if_models_run_on_cpu(*held)
