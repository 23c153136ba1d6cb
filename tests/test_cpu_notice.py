"""No GPU, said at once: in real mode without a usable GPU, one line names what would run on the
CPU and `--tiny`, just before the first model loads; tiny mode, an explicit --device and a command
refused for bad input say nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from studio import gpu_check
from studio.config import StudioConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "plaza_two_shots.mp4"
# This machine as one without GPU hardware, whatever the runner has.
NO_GPU = ("import sys; from studio import gpu_check; gpu_check.has_gpu_hardware = lambda: False; "
          "gpu_check.auto_device_warning = lambda: None; from studio.cli import main; sys.exit(main(sys.argv[1:]))")


def run_without_gpu(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    # Offline: the real captioner is not in the cache, so loading it fails at once after the line.
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-c", NO_GPU, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def test_real_mode_says_so_before_the_captioner_loads(tmp_path):
    done = run_without_gpu("caption", str(SAMPLE), "--shot", "1", "--tiny-dir", str(tmp_path / "tiny"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # Only the step's own status ("Loading the captioner…") comes before it.
    assert lines[0].startswith("Loading the captioner"), done.stderr
    assert lines[1].startswith("warning: No CUDA GPU found, so --device auto runs the CHAI captioner"), done.stderr
    assert "on the CPU" in lines[1] and "Add --tiny" in lines[1] and "Traceback" not in done.stderr
    # What follows is the load being attempted (the hub refuses it offline), never before the line.
    assert done.returncode == 2 and lines[-1].startswith("error: ") and "HF_HUB_OFFLINE" in lines[-1], done.stderr
    assert sum("No CUDA GPU" in line for line in lines) == 1


def test_a_command_refused_for_bad_input_prints_only_its_error(tmp_path):
    # The line waits for a model to load: a wrong shot or a missing jobs file loads none.
    shot = run_without_gpu("caption", str(SAMPLE), "--shot", "3", "--tiny-dir", str(tmp_path / "tiny"))
    assert shot.stderr.strip().splitlines() == ["error: shot: there is no shot 3; the clip has 2 shot(s), numbered "
                                                "1 to 2"]
    jobs = run_without_gpu("batch", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out"))
    assert jobs.returncode == 2
    assert jobs.stderr.strip().splitlines() == [f"error: jobs: {tmp_path / 'missing.jsonl'} does not exist"]


def test_tiny_mode_and_commands_without_models_say_nothing(tmp_path):
    tiny = run_without_gpu("caption", str(SAMPLE), "--shot", "3", "--tiny", "--tiny-dir", str(tmp_path / "tiny"))
    assert tiny.stderr.strip().splitlines() == ["error: shot: there is no shot 3; the clip has 2 shot(s), numbered "
                                                "1 to 2"]
    composed = run_without_gpu("compose", "dolly_zoom")
    assert composed.returncode == 0 and "GPU" not in composed.stderr


def test_the_line_names_each_model_and_is_held_back_when_it_does_not_apply(monkeypatch):
    monkeypatch.setattr(gpu_check, "has_gpu_hardware", lambda: False)
    monkeypatch.setattr(gpu_check, "auto_device_warning", lambda: None)
    page_line = gpu_check.models_on_cpu_message(StudioConfig(), gpu_check.PAGE_MODELS)
    assert "the CHAI captioner (Qwen3-VL-8B" in page_line and " and Wan2.2 (TI2V-5B" in page_line
    assert "--tiny" in page_line
    assert gpu_check.models_on_cpu_message(StudioConfig(tiny=True), gpu_check.PAGE_MODELS) is None
    assert gpu_check.models_on_cpu_message(StudioConfig(device="cpu"), ("captioner",)) is None
    assert gpu_check.models_on_cpu_message(StudioConfig(), ()) is None
    # A GPU that torch cannot use keeps its own, more specific warning.
    monkeypatch.setattr(gpu_check, "auto_device_warning", lambda: "An NVIDIA GPU is present (/dev/nvidia0) but ...")
    assert gpu_check.models_on_cpu_message(StudioConfig(), ("generator",)).startswith("An NVIDIA GPU is present")


def test_the_page_banner_says_it_in_real_mode_only(monkeypatch):
    from studio.ui.page import gpu_warning

    monkeypatch.setattr(gpu_check, "has_gpu_hardware", lambda: False)
    monkeypatch.setattr(gpu_check, "auto_device_warning", lambda: None)
    shown = gpu_warning(StudioConfig())
    assert shown["visible"] and shown["value"].startswith("**Warning:** No CUDA GPU found")
    assert gpu_warning(StudioConfig(tiny=True))["visible"] is False


def test_gpu_hardware_is_seen_from_nvidia_or_rocm_nodes(tmp_path):
    missing = (tmp_path / "none",)
    assert not gpu_check.has_gpu_hardware(missing, tmp_path / "none", lambda _: None, tmp_path / "kfd")
    (tmp_path / "kfd").touch()
    assert gpu_check.has_gpu_hardware(missing, tmp_path / "none", lambda _: None, tmp_path / "kfd")
    (tmp_path / "nvidia0").touch()
    assert gpu_check.has_gpu_hardware((tmp_path / "nvidia0",), tmp_path / "none", lambda _: None, tmp_path / "none")
