"""The shipped sample clip: small, two shots with a cut, real camera motion; its script renders it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from studio.video import detect_shots, probe, sample_clip

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "plaza_two_shots.mp4"


def load_script():
    spec = importlib.util.spec_from_file_location("make_sample_clip", ROOT / "samples" / "make_sample_clip.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_sample_is_small_with_two_shots():
    assert 50_000 < SAMPLE.stat().st_size < 1_000_000
    info = probe(SAMPLE, 60)
    assert abs(info.duration - 4.5) < 0.1 and (info.width, info.height) == (320, 180)
    shots = detect_shots(SAMPLE, info=info)
    assert len(shots) == 2 and abs(shots[0].end - 2.5) < 0.1


def test_the_camera_moves_within_each_shot():
    """Every sampled frame differs from the one before: a moving camera, not a still."""
    info = probe(SAMPLE, 60)
    for shot in detect_shots(SAMPLE, info=info):
        frames = sample_clip(SAMPLE, shot.start, shot.end, fps=4.0, info=info, check_cuts=False).frames
        arrays = [np.asarray(f, dtype=np.float32) for f in frames]
        steps = [np.abs(a - b).mean() for a, b in zip(arrays, arrays[1:])]
        assert len(arrays) >= 7 and min(steps) > 2.0, steps


def test_script_renders_the_same_shots_at_any_size():
    script = load_script()
    frames = list(script.frames(64, 36))
    assert len(frames) == round(2.5 * script.FPS) + round(2.0 * script.FPS)
    assert frames[0].shape == (36, 64, 3) and frames[0].dtype == np.uint8
    cut = round(2.5 * script.FPS)
    within = np.abs(frames[cut - 1].astype(int) - frames[cut - 2]).mean()
    across = np.abs(frames[cut].astype(int) - frames[cut - 1]).mean()
    assert across > 5 * within  # the hard cut is far larger than one frame of camera motion
