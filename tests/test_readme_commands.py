"""The README's and docs/*.md's runnable blocks run as written, the way a newcomer would run them.

A block marked `<!-- runnable -->` runs in a fresh copy of the repository's shipped files (no
tiny checkpoints, no outputs), in file order, with `python` being this interpreter. A block
marked `<!-- runnable with: python app.py --tiny -->` runs against a served tiny page, found
through GRADIO_SERVER_PORT as the block says. In docs/*.md, `<!-- runnable with: NAME=VALUE -->`
runs the block with those environment variables set (`CHAI_STUDIO_TINY=1`: the tiny models).
Every block must exit 0 without a traceback or an `error:` line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHIPPED = ("app.py", "studio", "prompts", "samples")  # what the README's commands read
BLOCK_TIMEOUT = 300  # seconds for one block on a slow, shared 2-core runner
DOCS = sorted((ROOT / "docs").glob("*.md"))
ENVIRONMENT_MARKER = re.compile(r"<!-- runnable(?: with: ((?:[A-Z_]+=\S+ ?)+))? -->\n```(\w+)\n(.*?)```", re.S)


def runnable_blocks(marker: str, text: str = README) -> list[tuple[str, str]]:
    """(language, code) of each fenced block right after `<!-- {marker} -->`, in file order."""
    pattern = rf"<!-- {re.escape(marker)} -->\n```(\w+)\n(.*?)```"
    return re.findall(pattern, text, re.S)


def docs_blocks(text: str) -> list[tuple[dict, str, str]]:
    """(environment, language, code) of each runnable block of a docs page, in file order."""
    return [(dict(pair.split("=", 1) for pair in assignments.split()), language, code)
            for assignments, language, code in ENVIRONMENT_MARKER.findall(text)]


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory):
    return fresh_copy(tmp_path_factory.mktemp("readme-newcomer"))


def fresh_copy(work: Path) -> tuple[Path, dict]:
    """A fresh copy of the shipped files, and an environment where `python` is this interpreter."""
    for name in SHIPPED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, work / name)
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python"  # a wrapper, not a symlink: a venv's python must keep its own path
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    return work, env


def run_block(language: str, code: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    command = ["bash", "-e", "-o", "pipefail", "-c", code] if language == "bash" else ["python", "-c", code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT,
                          check=False)


def assert_clean(result: subprocess.CompletedProcess, code: str) -> None:
    report = f"block:\n{code}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    assert "Traceback" not in result.stderr, report
    assert not [line for line in result.stderr.splitlines() if line.startswith("error:")], report


def test_the_readme_marks_its_tour_runnable():
    languages = [language for language, _ in runnable_blocks("runnable")]
    assert languages.count("bash") >= 1 and "python" in languages
    assert len(runnable_blocks("runnable with: python app.py --tiny")) == 1


def test_runnable_blocks_run_as_written(newcomer):
    work, env = newcomer
    for language, code in runnable_blocks("runnable"):
        assert_clean(run_block(language, code, work, env), code)
    # What the command-line tour says it leaves behind.
    assert (work / "shot1.json").is_file() and (work / ".tiny-models" / "captioner").is_dir()
    runs = [p for p in (work / "outputs").iterdir() if (p / "side_by_side.mp4").is_file()]
    assert len(runs) == 3  # the command-line tour, the Python API, and the LoRA made offline
    assert (work / "study" / "runs" / "kite-seed1" / "run.json").is_file()  # the batch example's named run
    assert [p for p in (work / "again").iterdir() if (p / "side_by_side.mp4").is_file()]  # and it again
    assert (work / "datasets" / "sample" / "manifest.jsonl").is_file()
    assert (work / "models" / "sample-lora" / "pytorch_lora_weights.safetensors").is_file()
    lora_runs = [json.loads((p / "run.json").read_text()) for p in runs]
    assert [r["models"]["finetuned"]["location"] for r in lora_runs].count("models/sample-lora") == 1


def test_page_api_block_runs_against_the_tiny_page(newcomer, studio_server):
    work, env = newcomer
    (language, code), = runnable_blocks("runnable with: python app.py --tiny")
    assert 'os.environ.get("GRADIO_SERVER_PORT", "7860")' in code  # the page's own default, or its variable
    port = studio_server.url.rstrip("/").rsplit(":", 1)[1]
    result = run_block(language, code, work, {**env, "GRADIO_SERVER_PORT": port})
    assert_clean(result, code)
    run_id, mode, judged = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert (studio_server.output_dir / run_id / "run.json").is_file(), result.stdout
    assert mode == "finetuned" and "'Camera'" in judged, result.stdout


def test_the_docs_mark_their_runnable_blocks():
    marked = {path.name: docs_blocks(path.read_text(encoding="utf-8")) for path in DOCS}
    (environment, language, code), = marked["generation.md"]  # the Python API
    assert environment == {"CHAI_STUDIO_TINY": "1"} and language == "python" and "StudioConfig.from_env()" in code
    # The README's page-API marker is not an environment, so it is never taken for one.
    assert not [m for m in ENVIRONMENT_MARKER.findall(README) if m[0]]


@pytest.mark.parametrize("page", [p for p in DOCS if docs_blocks(p.read_text(encoding="utf-8"))], ids=lambda p: p.name)
def test_docs_blocks_run_as_written(page, tmp_path):
    work, env = fresh_copy(tmp_path)
    for environment, language, code in docs_blocks(page.read_text(encoding="utf-8")):
        result = run_block(language, code, work, {**env, **environment})
        assert_clean(result, code)
    if page.name == "generation.md":
        (run,) = [p for p in (work / "outputs").iterdir() if (p / "side_by_side.mp4").is_file()]
        assert str((run / "side_by_side.mp4").relative_to(work)) in result.stdout
