"""A hub id that cannot be fetched fails at once with the setting to change, not after minutes of retries."""

import time

import pytest

from studio.errors import ModelLoadError
from studio.hub import resolve_model_location


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    # Port 9 on the loopback refuses connections at once: a hub that is certainly not there.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_unreachable_hub_fails_fast_and_names_the_setting(unreachable_hub):
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"cannot reach the Hugging Face hub .*'someone/no-such-model'.*--captioner"):
        resolve_model_location("someone/no-such-model", "CHAI_STUDIO_CAPTIONER or --captioner")
    assert time.monotonic() - started < 10


def test_offline_mode_says_the_model_is_not_cached(unreachable_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        resolve_model_location("someone/no-such-model", "CHAI_STUDIO_BASELINE or --baseline")


def test_local_paths_pass_through(unreachable_hub, tmp_path):
    assert resolve_model_location(str(tmp_path), "X") == str(tmp_path)
    # Not a hub id and not a path that exists: left for the loader, which names the missing folder.
    assert resolve_model_location("./missing/folder", "X") == "./missing/folder"


def test_the_captioner_and_generator_use_it(unreachable_hub, tmp_path):
    from studio.captioner import Captioner
    from studio.config import StudioConfig
    from studio.generation import load_tokenizer

    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub"):
        Captioner.from_pretrained("someone/no-such-captioner", device="cpu")
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub"):
        load_tokenizer(StudioConfig.from_env({}, baseline="someone/no-such-wan"))
