"""The page builds without loading models or heavy libraries, and every event is callable by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_page_builds_without_torch_and_names_every_event(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from studio.config import StudioConfig
        from studio.ui.server import build
        page = build(StudioConfig(tiny=True, tiny_dir={str(tmp_path / 'tiny')!r}, output_dir={str(tmp_path)!r}))
        heavy = [m for m in ("torch", "transformers", "diffusers") if m in sys.modules]
        assert not heavy, heavy
        names = [fn.api_name for fn in page.fns.values()]
        assert all(names), "an event without api_name"
        for needed in ("caption", "score", "critique", "revise", "compose", "generate", "cancel", "history"):
            assert needed in names, needed
        assert len(names) == len(set(names)), "duplicate api names"
        print("ok", len(names))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")
    # Building the page must not build the tiny checkpoints (they are built on first use).
    assert not (tmp_path / "tiny").exists()


def test_app_help_lists_serving_and_studio_flags():
    done = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for flag in ("--host", "--port", "--share", "--tiny", "--captioner", "--finetuned", "--max-upload-mb"):
        assert flag in done.stdout
    bad = subprocess.run([sys.executable, "app.py", "--max-upload-mb", "lots"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "max-upload-mb" in bad.stderr and "Traceback" not in bad.stderr


def test_page_says_when_finetuned_weights_are_missing():
    from studio.config import StudioConfig
    from studio.ui.server import build

    def notices(config):
        page = build(config)
        return [b for b in page.blocks.values() if getattr(b, "elem_id", None) == "finetuned-missing"]

    (notice,) = notices(StudioConfig())
    assert "--finetuned PATH" in notice.value and "CHAI_STUDIO_FINETUNED" in notice.value
    assert notices(StudioConfig(finetuned="/weights/chai")) == []
    assert notices(StudioConfig(tiny=True)) == []
