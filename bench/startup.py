"""Cold start to first HTTP 200: the studio page against a bare `gr.Blocks` app, side by side.

The studio must serve its page without loading a model or importing torch/transformers/diffusers,
so its start-up should cost little more than Gradio's own. Each round starts both servers from a
fresh Python process (alternating which goes first), polls `/` until it answers 200, and kills it.
Prints each time, the medians and the ratio studio / bare (target: at most 1.5).

    python bench/startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5

BARE_APP = """
import sys
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("bare")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_200(command: list[str], port: int, timeout: float = 120.0) -> float:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONDONTWRITEBYTECODE="1")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}: {process.stderr.read().decode()[-800:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{command} did not answer within {timeout} s")
    finally:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_script = Path(tmp) / "bare_app.py"
        bare_script.write_text(BARE_APP)
        commands = {
            "bare gr.Blocks": lambda port: [sys.executable, str(bare_script), str(port)],
            "studio app.py --tiny": lambda port: [sys.executable, "app.py", "--tiny", "--port", str(port),
                                                  "--output-dir", str(Path(tmp) / "outputs"),
                                                  "--tiny-dir", str(Path(tmp) / "tiny")],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        # One warm-up of each (file-system caches), not counted.
        for name, make in commands.items():
            port = free_port()
            time_to_200(make(port), port)
        for round_index in range(args.rounds):
            order = list(commands) if round_index % 2 == 0 else list(reversed(commands))
            for name in order:
                port = free_port()
                times[name].append(time_to_200(commands[name](port), port))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:22s} " + "  ".join(f"{v:.2f}s" for v in values) + f"   median {medians[name]:.2f}s")
    ratio = medians["studio app.py --tiny"] / medians["bare gr.Blocks"]
    verdict = "OK" if ratio <= TARGET_RATIO else "TOO SLOW"
    print(f"ratio studio/bare: {ratio:.2f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
