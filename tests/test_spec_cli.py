"""`python -m studio spec`: the vocabulary printed as text, Markdown or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.caption import load_vocabulary
from studio.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", "spec", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_text_lists_every_aspect_and_primitive():
    result = _run()
    assert result.returncode == 0, result.stderr
    vocab = load_vocabulary()
    for aspect in vocab.aspects:
        assert f"{aspect.name.upper()} — {aspect.description}" in result.stdout
        for sub in aspect.sub_aspects:
            assert f"  {sub.id} ({sub.name}): " in result.stdout
    for group in vocab.groups:
        assert f"[{group.id}] {group.name}" in result.stdout
        for prim in group.primitives:
            assert prim.qualified_id in result.stdout and prim.definition in result.stdout


def test_subprocess_bad_aspect_exits_2_without_traceback():
    result = _run("--aspect", "Lighting")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown aspect 'Lighting'" in result.stderr and "Subject, Scene, Motion, Spatial, Camera" in result.stderr
    assert result.stdout == ""


def test_spec_does_not_import_torch():
    code = ("import sys; from studio.cli import main; main(['spec', '--json']); "
            "sys.stderr.write('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("NO-TORCH")


def test_in_process_json_matches_the_vocabulary(capsys):
    assert main(["spec", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    vocab = load_vocabulary()
    assert [a["name"] for a in data["aspects"]] == ["Subject", "Scene", "Motion", "Spatial", "Camera"]
    assert sum(len(a["sub_aspects"]) for a in data["aspects"]) == 41
    assert sum(len(g["primitives"]) for g in data["groups"]) == sum(len(g.primitives) for g in vocab.groups)
    dolly = next(g for g in data["groups"] if g["id"] == "dolly_zoom")
    assert {p["qualified_id"] for p in dolly["primitives"]} == {"dolly_zoom.dolly_in_zoom_out", "dolly_zoom.dolly_out_zoom_in"}


@pytest.mark.parametrize("flag", [[], ["--json"], ["--markdown"]])
def test_in_process_aspect_filter(capsys, flag):
    assert main(["spec", "--aspect", "camera", *flag]) == 0
    out = capsys.readouterr().out
    assert "rack_focus" in out.replace("Rack focus", "rack_focus")
    assert "shot_size.extreme_wide" not in out and "Extreme wide shot" not in out
    if flag == ["--json"]:
        data = json.loads(out)
        assert [a["name"] for a in data["aspects"]] == ["Camera"]


def test_in_process_bad_aspect(capsys):
    assert main(["spec", "--aspect", "colour", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: aspect: unknown aspect 'colour'")
