"""bench/full_size.py: the published TI2V-5B transformer config, and its CPU path actually running."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def test_the_config_is_the_five_billion_parameter_transformer():
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel
    from full_size import FULL_VIDEO, TI2V_5B

    with init_empty_weights():
        model = WanTransformer3DModel(**TI2V_5B)
    params = sum(p.numel() for p in model.parameters())
    assert 4.9e9 < params < 5.1e9, params
    assert FULL_VIDEO == {"width": 1280, "height": 704, "frames": 121}


def test_cpu_mode_runs_the_same_step_at_a_reduced_size_and_says_so():
    done = subprocess.run([sys.executable, "bench/full_size.py", "--steps", "1", "--lora"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "no GPU is available on this machine" in out and "REDUCED size" in out
    step = float(re.search(r"median of 1: ([0-9.]+) s", out).group(1))
    assert step > 0 and "1 resident (LoRA: shared)" in out
    assert "not measured (no GPU)" in out
