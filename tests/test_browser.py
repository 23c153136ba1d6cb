"""A real browser through the whole page: Playwright driving Debian's Chromium against `app.py --tiny`.

Desktop (1440x900): a refused step shows its message beside its button; upload; caption with the
text streaming into the boxes; the CHAI loop, glossary, best-of-N and score-all; compose and fit;
generate with Generate disabled and Cancel enabled, live previews and an ETA; the players in sync;
a calm cancel; the captioner A/B view; history cards that reload a run. Then an image-start run
reloaded from the history regenerates the identical frames, and a 390x844 phone reaches Generate
in one tap and shows both videos on one screen.

Screenshots of every section at both sizes go to $STUDIO_SCREENSHOTS (docs/screenshots when
refreshing the documentation) or to the test's temporary folder.

Needs `apt-get install -y chromium` (no browser is ever downloaded). Skipped only when Chromium is
missing and the CI variable is unset; in CI a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import serve_tiny_studio

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).is_file() or shutil.which("chromium") is not None

if not HAVE_CHROMIUM and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install -y chromium); required when CI is set",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else __import__(
    "playwright.sync_api", fromlist=["sync_playwright"])

STEP_TIMEOUT_MS = 90_000
DESKTOP, PHONE = (1440, 900), (390, 844)


@pytest.fixture(scope="module")
def server(tmp_path_factory, ui_tiny_dir):
    """A server of its own, with a second captioner set (the tiny one again) for the A/B view."""
    with serve_tiny_studio(tmp_path_factory.mktemp("browser-server"), ui_tiny_dir, "--compare-captioner",
                           str(ui_tiny_dir / "captioner")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                                    "--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()


def open_tab(browser, server, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(server.url)
    tab.wait_for_selector("#caption-button")
    return tab


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STUDIO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(tab, folder: Path, name: str, selector: str) -> Path:
    """A viewport screenshot with `selector` at the top of the view."""
    path = folder / f"{name}.png"
    tab.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    return path


def textarea(tab, elem_id: str):
    return tab.locator(f"#{elem_id} textarea").first


def wait_text(tab, selector: str, pattern: str) -> None:
    tab.locator(selector).filter(has_text=re.compile(pattern)).first.wait_for()


def set_number(tab, elem_id: str, value: str) -> None:
    box = tab.locator(f"#{elem_id} input[type=number]").first
    box.fill(value)
    box.press("Enter")


def no_error_toasts(tab) -> None:
    assert tab.locator(".toast-body.error, .toast-wrap .error").count() == 0


def generate_and_wait(tab) -> None:
    tab.click("#generate-button")
    wait_text(tab, "#generate-status", r"Done: run .* \(seed \d+\)")


def newest_run(server) -> dict:
    runs = sorted(p for p in server.output_dir.iterdir() if (p / "run.json").is_file())
    return json.loads((runs[-1] / "run.json").read_text())


def test_the_whole_page_on_a_desktop(browser, server, shots_dir, reference_clip):
    tab = open_tab(browser, server, DESKTOP)
    assert "Tiny mode" in tab.locator("#tiny-banner").inner_text()
    shot(tab, shots_dir, "desktop-0-top", "body")

    # A refused step says why beside its own button, with no red toast.
    tab.click("#compose-button")
    wait_text(tab, "#prompt-status", "every aspect is empty; caption the clip")
    no_error_toasts(tab)

    # Generate in two columns: the Generate button and the settings on the section's first screen,
    # beside the players.
    tab.locator("#section-generate").evaluate("e => e.scrollIntoView({block: 'start'})")
    tab.wait_for_timeout(300)
    for selector in ("#generate-button", "#speed-profile", "#resolution", "#steps", "#comparison-mode",
                     "#finetune-menu"):
        box = tab.locator(selector).first.bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= DESKTOP[1], (selector, box)
    settings, players = (tab.locator(s).bounding_box() for s in ("#generate-settings", "#players"))
    assert settings["x"] + settings["width"] <= players["x"] + 1 and players["y"] < settings["y"] + settings["height"]
    # The section bar stays on screen after scrolling.
    nav = tab.locator("#section-nav").bounding_box()
    assert -1 <= nav["y"] <= 2, nav
    tab.evaluate("window.scrollTo(0, 0)")

    # Upload: shots numbered from 1, the range and the frame at start.
    tab.locator("#reference-clip input[type=file]").set_input_files(str(reference_clip))
    wait_text(tab, "#reference-info", r"2 shot\(s\)")
    wait_text(tab, "#reference-range", r"Shot 1: 0\.00–1\.00 s")
    tab.wait_for_function("() => document.querySelector('#shot-choice input').value.startsWith('Shot 1: 0.00')")

    # Caption: the button is disabled while the text streams into the boxes, then enabled again.
    tab.check("#compare-captioner input")
    tab.click("#caption-button")
    tab.wait_for_function("() => { const s = document.querySelector('#reference-status').innerText;"
                          " const t = document.querySelector('#text-subject textarea').value;"
                          " return s.includes('Captioning') && t.length > 0; }")
    assert tab.locator("#caption-button").is_disabled()
    wait_text(tab, "#reference-status", r"Second captioner: ")
    assert tab.locator("#caption-button").is_enabled()
    for key in ("subject", "scene", "motion", "spatial", "camera"):
        assert textarea(tab, f"text-{key}").input_value().strip()
        assert textarea(tab, f"compare-{key}").input_value().strip()
    shot(tab, shots_dir, "desktop-1-reference", "#section-reference")
    shot(tab, shots_dir, "desktop-2-caption", "#section-caption")

    # The CHAI loop on Camera: write, ask for a critique, revise, undo.
    camera = textarea(tab, "text-camera")
    camera.fill("The camera holds still at eye level.")
    tab.get_by_role("tab", name="Camera").click()
    tab.click("#suggest-camera")
    wait_text(tab, "#status-camera", "The model suggested a critique")
    assert textarea(tab, "critique-camera").input_value().strip()
    tab.click("#revise-camera")
    wait_text(tab, "#status-camera", "Revised")
    assert camera.input_value() != "The camera holds still at eye level."
    tab.click("#undo-camera")
    wait_text(tab, "#status-camera", "undid the model revision")
    assert camera.input_value() == "The camera holds still at eye level."

    # The picker is grouped by sub-aspect; clicking a glossary term inserts its phrase.
    tab.locator("#sub-aspect-camera input").first.click()
    tab.locator("ul[role=listbox] li").filter(has_text="angle").first.click()
    wait_text(tab, "#glossary-camera", "Dutch")
    tab.locator("#glossary-camera tr").filter(has_text="Dutch").first.click()
    wait_text(tab, "#status-camera", "Inserted")
    assert len(camera.input_value()) > len("The camera holds still at eye level.")
    # The Camera tab shows the text it just changed.
    tab.wait_for_function("() => document.querySelector('#mirror-camera textarea').value === "
                          "document.querySelector('#text-camera textarea').value")

    # Best of N and score all aspects.
    tab.click("#best-of-camera")
    # the user's text is scored with the candidates: kept when it scores highest, else replaced
    wait_text(tab, "#status-camera", r"(Kept the best of 4 candidates|Your text scored highest) \(\d+%\)")
    wait_text(tab, "#best-of-result-camera", "your text and 4 candidates, best first")
    tab.locator("#best-of-pick-camera label").nth(1).click()  # any candidate of the ranked list can be used
    tab.click("#best-of-use-camera")
    wait_text(tab, "#status-camera", r"Using candidate 2 \(\d+%\)|Candidate 2 is already the Camera text")
    tab.click("#score-all")
    wait_text(tab, "#score-all-status", r"Scored: Subject \d+%")
    for key in ("subject", "scene", "motion", "spatial", "camera"):
        wait_text(tab, f"#reward-{key}", r"Reward: \d+% yes")
    shot(tab, shots_dir, "desktop-3-refine", "#aspect-tabs")

    # Compose, then fit to the text encoder's limit (counted in tokens).
    tab.click("#compose-button")
    wait_text(tab, "#prompt-meter", r"\d+ words · \d+ / 512 tokens")
    tab.click("#fit-button")
    wait_text(tab, "#prompt-status", r"Fitted: \d+ words, \d+ tokens \(limit 512\)")
    tokens = int(re.search(r"(\d+) / 512 tokens", tab.locator("#prompt-meter").inner_text()).group(1))
    assert tokens <= 512
    shot(tab, shots_dir, "desktop-4-prompt", "#section-prompt")

    # Generate: Generate disabled and Cancel enabled while it runs, live previews and an ETA.
    set_number(tab, "steps", "120")  # long enough (on tiny models, ~10 s) to look at a run in progress
    tab.click("#generate-button")
    wait_text(tab, "#generate-status", r"Zero-shot Wan2.2: step \d+/120 · about \d+")
    assert "runs after Zero-shot Wan2.2" in tab.locator("#progress-finetuned").inner_text()
    busy = (tab.locator("#generate-button").is_disabled(), tab.locator("#cancel-button").is_enabled())
    assert busy == (True, True), (busy, tab.locator("#generate-status").inner_text())
    tab.wait_for_function("() => !!document.querySelector('#preview-zeroshot img')")
    shot(tab, shots_dir, "desktop-5-generating", "#section-generate")
    wait_text(tab, "#generate-status", r"Done: run")
    assert tab.locator("#generate-button").is_enabled() and tab.locator("#cancel-button").is_disabled()
    assert tab.locator("#video-finetuned video").first.get_attribute("src")
    assert tab.locator("#video-zeroshot video").first.get_attribute("src")
    wait_text(tab, "#downloads", "side_by_side.mp4")
    tab.click("#judge-button")
    wait_text(tab, "#judge-result", r"Camera\s+\d+%\s+\d+%")
    shot(tab, shots_dir, "desktop-6-generated", "#section-generate")

    # The two videos play in step.
    tab.wait_for_function("() => { const v = document.querySelector('#video-finetuned video');"
                          " return v && v.dataset.synced; }")
    tab.evaluate("document.querySelector('#video-finetuned video').play()")
    tab.wait_for_function("() => !document.querySelector('#video-zeroshot video').paused")
    tab.evaluate("document.querySelector('#video-zeroshot video').pause()")
    tab.wait_for_function("() => document.querySelector('#video-finetuned video').paused")

    # Cancel: a calm "Cancelled", the buttons swap back, no error anywhere.
    prompt = textarea(tab, "prompt").input_value()
    tab.click("#generate-button")
    wait_text(tab, "#generate-status", r"step \d+/120")
    tab.click("#cancel-button")
    # Pressed during the first side, nothing is written; during the second, the finished first side
    # is kept as a partial run. Either way a calm status, never an error.
    wait_text(tab, "#generate-status", r"Cancelled: (nothing was written|kept the finished .+ side as partial run)")
    assert tab.locator("#generate-button").is_enabled() and tab.locator("#cancel-button").is_disabled()
    no_error_toasts(tab)
    assert tab.locator(".error").count() == 0
    assert textarea(tab, "prompt").input_value() == prompt

    # History: a card per run; clicking one reloads its caption, prompt and settings.
    wait_text(tab, "#history-cards", r"finetuned · ti2v-5b · \d+×\d+")
    wait_text(tab, "#history-cards", r"CHAI-finetuned Wan2.2 \d+%")  # the judged run shows its scores
    camera.fill("Something else entirely.")
    textarea(tab, "prompt").fill("another prompt")
    tab.locator("#history-cards tr").nth(1).click()
    wait_text(tab, "#history-status", "Reloaded run")
    assert textarea(tab, "prompt").input_value() == prompt
    assert camera.input_value() != "Something else entirely."
    shot(tab, shots_dir, "desktop-7-history", "#section-history")
    tab.context.close()


def test_a_non_video_on_the_reference_player_is_refused_once_in_its_status(browser, server):
    """Gradio's player refuses a non-video with a toast of its own; the page stops the file first and
    says it once, in the Reference status."""
    tab = open_tab(browser, server, DESKTOP)
    dropped = tab.evaluate_handle("""() => { const d = new DataTransfer();
        d.items.add(new File(['not a clip'], 'notes.txt', {type: 'text/plain'})); return d; }""")
    tab.locator("#reference-clip button").first.dispatch_event("drop", {"dataTransfer": dropped})
    wait_text(tab, "#reference-status", "notes.txt is not a video file the studio reads")
    tab.locator("#reference-clip input[type=file]").set_input_files(
        files=[{"name": "still.png", "mimeType": "image/png", "buffer": b"not a clip"}])
    wait_text(tab, "#reference-status", "still.png is not a video file the studio reads")
    tab.wait_for_timeout(500)
    assert tab.locator(".toast-body").count() == 0  # no second message beside the status
    tab.context.close()


def test_an_image_start_run_reloaded_from_history_regenerates_identically(browser, server, reference_clip):
    tab = open_tab(browser, server, DESKTOP)
    tab.locator("#reference-clip input[type=file]").set_input_files(str(reference_clip))
    wait_text(tab, "#reference-status", "Ready")
    textarea(tab, "prompt").fill("A red square slides to the right.")
    set_number(tab, "range-start", "0.5")
    tab.check("#start-from-frame input")
    set_number(tab, "seed", "77")
    generate_and_wait(tab)
    first = newest_run(server)
    assert first["image"]["file"] == "start_image.png"

    # Change what the run depends on, then reload it from its history card.
    set_number(tab, "seed", "5")
    set_number(tab, "range-start", "0")
    tab.uncheck("#start-from-frame input")
    tab.reload()
    tab.wait_for_selector("#caption-button")
    wait_text(tab, "#history-cards", "seed 77")
    tab.locator("#history-cards tr").filter(has_text="seed 77").first.click()
    wait_text(tab, "#history-status", "Reloaded run")
    assert tab.locator("#start-from-frame input").is_checked()
    assert tab.locator("#range-start input").first.input_value() == "0.5"
    generate_and_wait(tab)
    second = newest_run(server)
    assert second["seed"] == 77
    hashes = [{side["key"]: side["frames_sha256"] for side in run["comparison"]["sides"]} for run in (first, second)]
    assert hashes[0] == hashes[1]
    tab.context.close()


def test_a_phone_compares_both_videos_on_one_screen(browser, server, shots_dir):
    tab = open_tab(browser, server, PHONE)
    shot(tab, shots_dir, "phone-0-top", "body")
    # All five aspect tabs are on screen (wrapped, none hidden behind an overflow menu).
    tab.locator("#aspect-tabs").evaluate("e => e.scrollIntoView({block: 'start'})")
    tab.wait_for_timeout(300)
    for aspect in ("Subject", "Scene", "Motion", "Spatial", "Camera"):
        button = tab.get_by_role("tab", name=aspect)
        assert button.is_visible(), aspect
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0] + 1, (aspect, box)
    nav = tab.locator("#section-nav").bounding_box()  # the section bar is still at the top
    assert -1 <= nav["y"] <= 2, nav
    for n, key in enumerate(("reference", "caption", "prompt", "generate", "history"), start=1):
        shot(tab, shots_dir, f"phone-{n}-{key}", f"#section-{key}")
    # One tap on the section bar reaches Generate.
    tab.evaluate("window.scrollTo(0, 0)")
    tab.locator(".studio-nav a", has_text="Generate").click()
    tab.wait_for_timeout(500)
    box = tab.locator("#generate-button").bounding_box()
    assert 0 <= box["y"] < PHONE[1]
    # A reloaded run's two videos sit side by side within one screen.
    wait_text(tab, "#history-cards", "finetuned")
    tab.locator("#history-cards tr").nth(1).click()
    wait_text(tab, "#history-status", "Reloaded run")
    tab.locator("#players").evaluate("e => e.scrollIntoView({block: 'start'})")
    tab.wait_for_timeout(500)
    left, right = (tab.locator(f"#video-{side}").bounding_box() for side in ("finetuned", "zeroshot"))
    assert abs(left["y"] - right["y"]) < 4 and left["x"] + left["width"] <= right["x"] + 1
    for video in (left, right):
        assert video["y"] >= -1 and video["y"] + video["height"] <= PHONE[1] + 1
        assert video["width"] > 120
    shot(tab, shots_dir, "phone-6-players", "#players")
    tab.context.close()
