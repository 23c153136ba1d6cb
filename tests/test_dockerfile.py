"""The Dockerfile's rules, read from the file (no Docker daemon here to build it).

* The base is a plain Python image: PyPI's torch wheels bring their own CUDA, so a CUDA base
  only adds an unused second copy; the host's driver comes in through the NVIDIA toolkit.
* Its Python is the Space's `python_version`.
* Every folder the app writes is owned by the non-root user that runs it (the old image created
  /app as root, so `--tiny` could not write its checkpoints there).
* pip installs with the tested constraints; OpenCV's system libraries are present.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from studio.gpu_check import driver_version, nvidia_evidence, unusable_gpu_message

ROOT = Path(__file__).resolve().parents[1]
APP_USER = "studio"
# Settings and variables that name a folder the running app writes to.
WRITTEN_FOLDERS = ("HF_HOME", "CHAI_STUDIO_OUTPUT_DIR", "CHAI_STUDIO_TINY_DIR", "GRADIO_TEMP_DIR")


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def env_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                values[name] = re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), value)
    return values


def expand(text: str) -> str:
    env = env_values()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), text)


def test_base_is_plain_python_matching_the_space():
    base = next(rest for keyword, rest in instructions() if keyword == "FROM")
    assert "nvidia/cuda" not in base and "cudnn" not in base, "torch's wheels bring their own CUDA"
    match = re.fullmatch(r"python:(\d+\.\d+)-slim(-\w+)?", base)
    assert match, base
    space = yaml.safe_load((ROOT / "README.md").read_text().split("---\n", 2)[1])
    assert match.group(1) == space["python_version"]


def test_every_written_folder_belongs_to_the_app_user():
    steps = instructions()
    user_at = next(i for i, (keyword, rest) in enumerate(steps) if keyword == "USER")
    assert steps[user_at][1] == APP_USER
    owned = []
    for keyword, rest in steps[:user_at]:
        if keyword == "RUN":
            for command in expand(rest).split("&&"):
                words = command.split()
                if words[:1] == ["chown"] and f"{APP_USER}:{APP_USER}" in words:
                    owned += [w.rstrip("/") for w in words if w.startswith("/")]
    env = env_values()
    workdir = next(rest for keyword, rest in steps if keyword == "WORKDIR")
    folders = [workdir] + [env[name] for name in WRITTEN_FOLDERS]
    for folder in folders:
        assert any(folder == o or folder.startswith(o + "/") for o in owned), f"{folder} is not owned by {APP_USER}"
    # A WORKDIR before USER would create the folder as root; it must come after the chown.
    assert [i for i, (k, _) in enumerate(steps) if k == "WORKDIR"][0] > user_at


def test_pip_uses_the_tested_constraints_and_opencv_has_its_libraries():
    runs = [expand(rest) for keyword, rest in instructions() if keyword == "RUN"]
    pip = next(r for r in runs if "pip install" in r)
    assert "-r requirements.txt" in pip and "-c constraints.txt" in pip
    copied = " ".join(rest for keyword, rest in instructions() if keyword == "COPY")
    assert "constraints.txt" in copied
    requirements = (ROOT / "requirements.txt").read_text()
    assert "opencv-python-headless" not in requirements and re.search(r"^opencv-python\b", requirements, re.M)
    apt = next(r for r in runs if "apt-get install" in r)
    assert "libgl1" in apt.split() and "libglib2.0-0" in apt.split()


def test_constraints_pin_every_requirement():
    names = [re.split(r"[<>=\s#]", line, maxsplit=1)[0].lower() for line in
             (ROOT / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    pins = {line.split("==")[0].lower() for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    assert set(names) <= pins, set(names) - pins


def test_gpu_warning_names_the_driver_when_torch_cannot_use_the_gpu(tmp_path):
    node = tmp_path / "nvidia0"
    version = tmp_path / "version"
    assert nvidia_evidence(nodes=(node,), version_file=version, which=lambda name: None) is None
    node.write_text("")
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.124.06  Thu Mar  6 2025\n")
    evidence = nvidia_evidence(nodes=(node,), version_file=version, which=lambda name: None)
    assert evidence == str(node) and driver_version(version) == "570.124.06"
    message = unusable_gpu_message(evidence, False, "2.14.1", "13.0", "570.124.06")
    assert "driver 570.124.06 may be too old" in message and "CUDA 13.0" in message
    assert "CPU-only build" in unusable_gpu_message(evidence, False, "2.14.1", None, None)
    assert unusable_gpu_message(evidence, True, "2.14.1", "13.0", "580.1") is None  # the GPU works: no warning
    assert unusable_gpu_message(None, False, "2.14.1", "13.0", None) is None  # no GPU at all: nothing to say


def test_the_page_shows_the_gpu_warning_only_for_device_auto(monkeypatch):
    from studio import gpu_check
    from studio.config import StudioConfig
    from studio.ui.page import gpu_warning

    monkeypatch.setattr(gpu_check, "auto_device_warning", lambda: "An NVIDIA GPU is present (/dev/nvidia0) but ...")
    gpu_check.warn_if_gpu_unusable.cache_clear()
    try:
        shown = gpu_warning(StudioConfig())
        assert shown["visible"] and shown["value"].startswith("**Warning:** An NVIDIA GPU is present")
        assert gpu_warning(StudioConfig(device="cpu"))["visible"] is False
    finally:
        gpu_check.warn_if_gpu_unusable.cache_clear()
