"""pyproject.toml: the wheel holds every package and the data files (the shot library and the sample
clip too), and its `studio` command runs from outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_and_the_entry_point_resolves():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "studio").rglob("__init__.py")}
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to pyproject.toml's packages"
    # A folder of modules without an __init__.py imports from a checkout but is left out of a wheel.
    with_code = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "studio").rglob("*.py")
                 if "__pycache__" not in p.parts}
    assert with_code <= on_disk, f"add an __init__.py to {sorted(with_code - on_disk)}"
    module, _, name = project["project"]["scripts"]["studio"].partition(":")
    import importlib

    from studio.cli import main

    assert getattr(importlib.import_module(module), name) is main


def test_the_license_file_pyproject_and_readme_agree_on_apache_2():
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "released under the Apache License 2.0 (`LICENSE`" in (ROOT / "README.md").read_text()


def test_wheel_installs_a_working_studio_command_with_its_data(tmp_path):
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for name in ("studio", "prompts", "samples"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300,
                           check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"studio/data/vocabulary.json", "studio/prompts/captioner/default/reward.txt",
            "studio/prompts/captioner/default/pack.json", "studio/prompts/captioner/tiny/pack.json",
            "studio/prompts/shots/dolly_zoom.json", "studio/samples/plaza_two_shots.mp4",
            "studio/research/batch.py", "studio/commands/batch.py"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "studio = studio.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and any(n.endswith("licenses/LICENSE") for n in names)

    # A bare virtual environment (no torch): the torch-free commands run from the installed copy.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                                "--no-deps", "--no-index", "-q", str(wheel)], capture_output=True, text=True,
                               timeout=300, check=False)
    assert installed.returncode == 0, installed.stderr[-2000:]
    spec = subprocess.run([str(venv / "bin" / "studio"), "spec"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    assert spec.returncode == 0 and "SUBJECT" in spec.stdout and "dolly" in spec.stdout.lower(), spec.stderr
    probe = ("import studio, studio.captioner.packs as p, studio.shot_library as s; "
             "print(studio.__file__); print(p.PACKS_DIR); print(len(p.PromptPack.load().texts)); "
             "print(len(p.PromptPack.load(p.TINY_PACK).texts)); print(len(s.list_presets())); "
             "from studio.resources import sample_clip; print(sample_clip()); print(sample_clip().stat().st_size)")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                           timeout=120, check=False)
    package, templates, count, tiny_count, presets, clip, clip_size = where.stdout.split()
    assert str(venv) in package and templates.startswith(str(venv)) and templates.endswith("studio/prompts/captioner")
    assert int(count) == int(tiny_count) == 11 and int(presets) == len(list((ROOT / "prompts" / "shots").glob("*.json")))
    assert clip.startswith(str(venv)) and clip.endswith("studio/samples/plaza_two_shots.mp4")
    assert int(clip_size) == (ROOT / "samples" / "plaza_two_shots.mp4").stat().st_size

    # With the dependencies (this interpreter's, so nothing is downloaded): the shot library by name
    # and the page's command, run from outside any checkout.
    target = tmp_path / "target"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                                str(target), str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")} | {"PYTHONPATH": str(target)}
    composed = subprocess.run([str(target / "bin" / "studio"), "compose", "dolly_zoom"], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    assert composed.returncode == 0 and "dolly zoom" in composed.stdout.lower(), composed.stderr[-2000:]
    served = subprocess.run([str(target / "bin" / "studio"), "serve", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120, check=False)
    assert served.returncode == 0 and served.stdout.startswith("usage: studio serve"), served.stderr[-2000:]
    assert all(flag in served.stdout for flag in ("--host", "--port", "--share", "--auth", "--tiny", "--finetuned"))
