"""The README's front matter is a Hugging Face Space config: every key must pass the Hub's rules.

The rules are the Hub's Spaces configuration reference (huggingface.co/docs/hub/spaces-config-reference,
read 2026-12-01) plus the 60-character limit the Hub enforces on `short_description` when a
Space is pushed. A key the reference does not list is refused too, so a typo cannot slip through.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
SDKS = {"gradio", "docker", "static"}
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
            "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8"}
STORAGE = {"small", "medium", "large"}
MAX_SHORT_DESCRIPTION = 60
STRING_KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version", "suggested_hardware",
               "suggested_storage", "app_file", "app_build_command", "base_path", "header", "short_description",
               "thumbnail", "startup_duration_timeout", "license"}
LIST_KEYS = {"models", "datasets", "tags", "hf_oauth_scopes", "preload_from_hub"}
BOOL_KEYS = {"fullWidth", "pinned", "hf_oauth", "disable_embedding"}
OTHER_KEYS = {"app_port", "hf_oauth_expiration_minutes", "hf_oauth_authorized_org", "custom_headers"}


def front_matter() -> dict:
    assert README.startswith("---\n"), "the Space config must be the first thing in README.md"
    block = README.split("---\n", 2)[1]
    return yaml.safe_load(block)


def is_single_emoji(text: str) -> bool:
    """One pictograph, optionally with variation selectors, skin tones or zero-width joins."""
    joiners = {"\u200d", "\ufe0f", "\ufe0e"}
    symbols = [c for c in text if c not in joiners and not 0x1F3FB <= ord(c) <= 0x1F3FF]
    return bool(symbols) and len(text.split("\u200d")) == len(symbols) and all(
        unicodedata.category(c) == "So" for c in symbols)


def test_every_key_is_one_the_hub_knows_with_the_right_type():
    config = front_matter()
    unknown = set(config) - STRING_KEYS - LIST_KEYS - BOOL_KEYS - OTHER_KEYS
    assert not unknown, f"keys the Space config reference does not list: {unknown}"
    for key, value in config.items():
        if key in STRING_KEYS:
            assert isinstance(value, str), f"{key} must be a string (quote numbers such as python_version)"
        elif key in LIST_KEYS:
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), key
        elif key in BOOL_KEYS:
            assert isinstance(value, bool), key


def test_values_follow_the_hub_rules():
    config = front_matter()
    assert config["sdk"] in SDKS
    assert config["colorFrom"] in COLOURS and config["colorTo"] in COLOURS
    assert is_single_emoji(config["emoji"]), config["emoji"]
    assert 0 < len(config["short_description"]) <= MAX_SHORT_DESCRIPTION, len(config["short_description"])
    assert re.fullmatch(r"3\.\d+(\.\d+)?", config["python_version"])
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", config["sdk_version"])
    assert config.get("suggested_hardware", "cpu-basic") in HARDWARE
    assert config.get("suggested_storage", "small") in STORAGE
    assert re.fullmatch(r"\d+(s|m|h)", config.get("startup_duration_timeout", "30m"))
    assert (ROOT / config["app_file"]).is_file()
    for model in config.get("models", []):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", model), model


def test_gradio_sdk_version_is_the_tested_one():
    """The Space installs gradio at sdk_version; the constraints file pins what the tests ran."""
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert front_matter()["sdk_version"] == pins["gradio"]


def test_the_rule_checks_can_fail():
    assert not is_single_emoji("🎬🎬") and not is_single_emoji("ab") and is_single_emoji("🎬")
    assert is_single_emoji("👩\u200d🎤") and not is_single_emoji("")


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line]


def test_the_space_install_needs_no_constraints_file():
    """A Space installs requirements.txt on its own: no line may point at another file, and every
    version the tests pinned (constraints.txt, used by the Docker image) lies within its bounds."""
    from packaging.requirements import Requirement

    lines = requirement_lines("requirements.txt")
    assert not [line for line in lines if line.startswith("-")], "a Space cannot follow -r/-c lines"
    bounds = {Requirement(line).name.lower(): Requirement(line).specifier for line in lines}
    pins = dict(line.split("==") for line in requirement_lines("constraints.txt"))
    outside = {name: pins[name] for name in bounds if not bounds[name].contains(pins[name], prereleases=True)}
    assert not outside, f"constraints.txt pins versions requirements.txt excludes: {outside}"
    assert bounds["gradio"].contains(front_matter()["sdk_version"])
    # What each file says about the Space matches what it does.
    assert "its build installs requirements.txt on its own" in (ROOT / "constraints.txt").read_text() and "-c constraints.txt" in (
        ROOT / "Dockerfile").read_text()
    assert "cannot apply `constraints.txt`" in README


def test_the_bounds_check_can_fail():
    from packaging.requirements import Requirement

    assert not Requirement("diffusers>=0.42,<0.43").specifier.contains("0.43.0")
