import subprocess
import sys
from pathlib import Path

import pytest

from studio.config import DEFAULT_BASELINE, DEFAULT_CAPTIONER, StudioConfig
from studio.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults():
    config = StudioConfig.from_env({})
    assert config.captioner == DEFAULT_CAPTIONER == "chancharikm/CHAI_SFT_model_8b"
    assert config.baseline == DEFAULT_BASELINE == "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
    assert config.finetuned == "" and config.prompt_words == 260 and not config.tiny


def test_environment_then_flags():
    env = {"CHAI_STUDIO_PROMPT_WORDS": "200", "CHAI_STUDIO_TINY": "yes", "CHAI_STUDIO_OUTPUT_DIR": "/tmp/runs"}
    config = StudioConfig.from_env(env)
    assert config.prompt_words == 200 and config.tiny and str(config.output_dir) == "/tmp/runs"
    assert StudioConfig.from_env(env, prompt_words="150").prompt_words == 150


@pytest.mark.parametrize("env, message", [
    ({"CHAI_STUDIO_PROMPT_WORDS": "many"}, "CHAI_STUDIO_PROMPT_WORDS: expected a whole number"),
    ({"CHAI_STUDIO_PROMPT_WORDS": "500"}, "prompt_words: must be between 20 and 320"),
    ({"CHAI_STUDIO_TINY": "perhaps"}, "CHAI_STUDIO_TINY: expected true/false"),
    ({"CHAI_STUDIO_DEVICE": "tpu"}, "CHAI_STUDIO_DEVICE: must be one of auto, cuda, cpu"),
    ({"CHAI_STUDIO_LORA_SCALE": "3"}, "lora_scale: must be between 0 and 2"),
    ({"CHAI_STUDIO_MAX_CLIP_SECONDS": "0"}, "max_clip_seconds: must be positive"),
])
def test_bad_settings_are_named(env, message):
    with pytest.raises(InputError, match=message):
        StudioConfig.from_env(env)


def test_config_command_and_markdown_table():
    result = subprocess.run([sys.executable, "-m", "studio", "config", "--prompt-words", "100"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert '"prompt_words": 100' in result.stdout
    table = StudioConfig.markdown_table()
    assert "`CHAI_STUDIO_FINETUNED`" in table and "`--captioner`" in table
    bad = subprocess.run([sys.executable, "-m", "studio", "config", "--device", "tpu"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
