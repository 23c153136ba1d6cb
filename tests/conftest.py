"""Shared fixtures: a small two-shot reference clip, and `app.py --tiny` served on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT = 90  # seconds to the first HTTP 200


def write_two_shot_clip(path: Path, seconds_per_shot: float = 1.0, size: int = 64, fps: int = 24) -> Path:
    """An H.264 mp4 with a hard cut: a red shot then a blue one, each with a moving bar."""
    import av
    import numpy as np

    frames_per_shot = int(seconds_per_shot * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(2 * frames_per_shot):
            image = np.zeros((size, size, 3), np.uint8)
            image[..., 0 if i < frames_per_shot else 2] = 200
            image[:, (i * 2) % size] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


TINY_FOR_UI = ["captioner", "wan-ti2v", "finetuned-lora"]


class TinyModels:
    """The tiny random-weight checkpoints of one test process, in one folder: `tiny_models("wan-ti2v")`
    builds a checkpoint on its first request and hands back the same folder after that."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *names: str) -> dict[str, Path]:
        from studio.tiny import build_tiny_models

        return build_tiny_models(self.root, only=list(names))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    """Every test's tiny checkpoints (one folder per xdist worker). Tests that damage a checkpoint
    build their own copy under tmp_path instead."""
    return TinyModels(tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="session")
def ui_tiny_dir(tiny_models) -> Path:
    """The folder `--tiny` reads, with the TI2V-5B checkpoints the page and the server use."""
    tiny_models(*TINY_FOR_UI)
    return tiny_models.root


@pytest.fixture(scope="session")
def reference_clip(tmp_path_factory) -> Path:
    return write_two_shot_clip(tmp_path_factory.mktemp("clips") / "two_shots.mp4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioServer:
    def __init__(self, url: str, output_dir: Path, log: Path, pid: int | None = None):
        self.url, self.output_dir, self.log, self.pid = url, output_dir, log, pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def serve_tiny_studio(work: Path, tiny_dir: Path, *extra: str):
    """`python app.py --tiny ...` in a subprocess on a free port, until the block ends."""
    port = _free_port()
    log = work / "server.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", CHAI_STUDIO_DEVICE="cpu", PYTHONFAULTHANDLER="1")
    command = [sys.executable, "app.py", "--tiny", "--port", str(port), "--tiny-dir", str(tiny_dir),
               "--output-dir", str(work / "outputs"), *extra]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py --tiny exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py --tiny did not answer within {SERVER_START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield StudioServer(url, work / "outputs", log, process.pid)
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory, ui_tiny_dir):
    """`python app.py --tiny --mcp-server` in a subprocess (the script API and the same endpoints
    as MCP tools); killed when the session ends."""
    with serve_tiny_studio(tmp_path_factory.mktemp("studio-server"), ui_tiny_dir, "--mcp-server") as server:
        yield server
