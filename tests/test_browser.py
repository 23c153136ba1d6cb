"""A real browser through the whole page: Playwright driving Debian's Chromium against `app.py --tiny`.

upload -> (bad compose) -> caption -> edit -> suggest critique -> revise -> undo -> compose -> generate
-> both videos -> history. Screenshots of each stage are saved to $STUDIO_SCREENSHOTS (docs/screenshots
when refreshing the documentation) or to the test's temporary folder.

Needs `apt-get install -y chromium` (no browser is ever downloaded). Skipped only when Chromium is
missing and the CI variable is unset; in CI a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).is_file() or shutil.which("chromium") is not None

if not HAVE_CHROMIUM and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install -y chromium); required when CI is set",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else __import__(
    "playwright.sync_api", fromlist=["sync_playwright"])

STEP_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(studio_server):
    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                                   "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        tab = context.new_page()
        tab.goto(studio_server.url)
        tab.wait_for_selector("#caption-button")
        yield tab
        context.close()
        browser.close()


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STUDIO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(tab, folder: Path, name: str, selector: str) -> Path:
    """A viewport screenshot with `selector` scrolled into view."""
    path = folder / f"{name}.png"
    tab.locator(selector).first.scroll_into_view_if_needed()
    tab.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    return path


def _textarea(tab, elem_id: str):
    return tab.locator(f"#{elem_id} textarea").first


def _wait_text(tab, selector: str, pattern: str) -> None:
    tab.locator(selector).filter(has_text=re.compile(pattern)).first.wait_for()


def test_whole_flow_in_a_browser(page, shots_dir, reference_clip, studio_server):
    tab = page
    assert "Tiny mode" in tab.locator("#tiny-banner").inner_text()

    # A bad step first: composing an empty caption explains what to do, and nothing breaks.
    tab.click("#compose-button")
    _wait_text(tab, "body", "every aspect is empty; caption the clip")
    _shot(tab, shots_dir, "01-empty-compose-error", "#compose-button")
    for close in tab.locator("button.toast-close").all():
        close.click()

    # Upload: shots detected, trim range set, preview and start frame shown.
    tab.locator("#reference-upload input[type=file]").set_input_files(str(reference_clip))
    _wait_text(tab, "#reference-info", r"2 shot\(s\) detected")
    _shot(tab, shots_dir, "02-reference", "#reference-info")

    # Caption: the five boxes fill.
    tab.click("#caption-button")
    _wait_text(tab, "#status", r"Captioned two_shots\.mp4")
    for key in ("subject", "scene", "motion", "spatial", "camera"):
        assert _textarea(tab, f"text-{key}").input_value().strip()
    _shot(tab, shots_dir, "03-captioned", "#text-subject")

    # Edit Camera by hand, ask the model for a critique, revise, then undo the revision.
    camera = _textarea(tab, "text-camera")
    camera.fill("The camera holds still at eye level.")
    tab.click("#suggest-camera")
    _wait_text(tab, "#status", "Camera: the model suggested a critique")
    assert _textarea(tab, "critique-camera").input_value().strip()
    tab.click("#revise-camera")
    _wait_text(tab, "#status", "Camera: revised")
    revised = camera.input_value()
    assert revised.strip() and revised != "The camera holds still at eye level."
    tab.get_by_text("Camera revision history").click()
    _wait_text(tab, "#history-camera", "manual edit")
    _shot(tab, shots_dir, "04-critique-revise", "#text-camera")
    tab.click("#undo-camera")
    _wait_text(tab, "#status", "Camera: undid the model revision")
    assert camera.input_value() == "The camera holds still at eye level."

    # Pick a primitive for Camera: its phrase lands in the text.
    picker = tab.locator("#picker-camera input").first
    picker.click()
    tab.locator("ul[role=listbox] li").first.click()
    tab.click("#apply-camera")
    _wait_text(tab, "#status", "Camera: applied")
    assert len(camera.input_value()) > len("The camera holds still at eye level.")

    # Compose: the prompt and its meter.
    tab.click("#compose-button")
    _wait_text(tab, "#prompt-meter", r"\b[1-9]\d* words · ≈?\d+ / 512 tokens")
    prompt = _textarea(tab, "prompt").input_value()
    assert prompt.strip()
    _shot(tab, shots_dir, "05-prompt", "#prompt")

    # Generate side by side with the tiny defaults: both videos, progress, downloads.
    tab.click("#generate-button")
    _wait_text(tab, "#status", r"Done: .*seed")
    assert tab.locator("#video-finetuned video").first.get_attribute("src")
    assert tab.locator("#video-zeroshot video").first.get_attribute("src")
    _wait_text(tab, "#progress-finetuned", "step 2/2")
    _wait_text(tab, "#downloads", "side_by_side.mp4")
    _wait_text(tab, "#downloads", "run.json")
    _shot(tab, shots_dir, "06-generated", "#video-finetuned")

    # The two videos play in sync: playing one starts the other, pausing one pauses both.
    tab.wait_for_function("() => { const v = document.querySelector('#video-finetuned video');"
                          " return v && v.dataset.synced; }")
    tab.evaluate("document.querySelector('#video-finetuned video').play()")
    tab.wait_for_function("() => !document.querySelector('#video-zeroshot video').paused")
    tab.evaluate("document.querySelector('#video-zeroshot video').pause()")
    tab.wait_for_function("() => document.querySelector('#video-finetuned video').paused")

    # History: the run is listed; clicking it reloads its caption and prompt.
    camera.fill("Something else entirely.")
    tab.locator("#history button.thumbnail-item").first.click()
    _wait_text(tab, "#status", "Reloaded run")
    assert _textarea(tab, "prompt").input_value() == prompt
    assert camera.input_value() != "Something else entirely."
    _shot(tab, shots_dir, "07-history", "#history")
