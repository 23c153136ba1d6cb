"""A hub id that cannot be fetched fails at once with the setting to change, not after minutes of retries."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from huggingface_hub.utils import close_session

from studio.errors import ModelLoadError
from studio.hub import resolve_model_location


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def hub_environment(monkeypatch, tmp_path):
    """An empty cache and no proxy from the machine; huggingface_hub's shared HTTP session reads the
    proxy variables when it is made, so it is remade for (and after) each test."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    close_session()
    yield monkeypatch
    close_session()


@pytest.fixture
def unreachable_hub(hub_environment):
    # Port 9 on the loopback refuses connections at once: a hub that is certainly not there.
    hub_environment.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


@pytest.fixture
def forward_proxy():
    """A local HTTP proxy that answers every request itself and records the URLs it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            asked.append(self.path)  # a proxy is sent the absolute URL
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()
    server.server_close()


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


def test_the_hub_is_reached_through_the_configured_proxy(hub_environment, forward_proxy):
    proxy, asked = forward_proxy
    # No such host resolves: the hub answers only if the request goes through the proxy.
    hub_environment.setenv("HF_ENDPOINT", "http://hub.studio-test.invalid")
    hub_environment.setenv("HTTP_PROXY", proxy)
    assert resolve_model_location("someone/some-model", "--captioner") == "someone/some-model"
    assert asked == ["http://hub.studio-test.invalid/"]


def test_a_dead_proxy_fails_fast_and_names_the_setting(hub_environment):
    hub_environment.setenv("HF_ENDPOINT", "https://hub.studio-test.invalid")
    hub_environment.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"cannot reach the Hugging Face hub \(https://hub.studio-test.invalid\).*--baseline"):
        resolve_model_location("someone/no-such-model", "--baseline")
    assert time.monotonic() - started < 10
