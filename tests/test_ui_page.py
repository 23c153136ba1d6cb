"""The page (`studio/ui/page.py`) built in-process and its sections' handlers called as plain
methods with `{component: value}` dicts, on the tiny checkpoints (no browser, no server).

What is checked is what a filmmaker sees: a failed step changes only its status line, streamed
caption text arrives before the Done update, the buttons swap while a step runs, a cancel ends
calmly, a reload restores an image-start run so that its regeneration is identical, and dropped
run files restore settings. The tiny models have random weights: assertions are about wiring,
files and states, never about what the text says.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from studio.caption.structured import ASPECTS
from studio.caption.vocabulary import load_vocabulary
from studio.config import StudioConfig
from studio.compose.text import word_count
from studio.errors import InputError
from studio.session import ComposeRequest, caption_from_user
from studio.session.latest import LatestRequests
from studio.ui.context import GPU_QUEUE, QueueInternalsMoved, _model_queue_view, check_queue_internals
from studio.ui.page import build_page

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["A dog.", "A park at noon.", "The dog runs left.", "Wide shot, dog centred.", "Static camera."]


class Values(dict):
    """The values a browser would send: what a test sets, else each component's initial value."""

    def __missing__(self, component):
        return component.value

    def but(self, changes: dict) -> Values:
        return Values({**self, **changes})


def is_update(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"


def interactive(value) -> bool | None:
    return value.get("interactive") if is_update(value) else None


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, ui_tiny_dir, tiny_models) -> Path:
    folder = tmp_path_factory.mktemp("models")
    shutil.copytree(ui_tiny_dir / "finetuned-lora", folder / "mine")
    (folder / "notes").mkdir()  # neither a LoRA nor a model: never offered
    # A speed LoRA (its sidecar marks it): offered in the speed adapter menu, never as a finetune.
    speed = tiny_models("speed-lora")["speed-lora"]
    shutil.copytree(speed, folder / "fast")
    return folder


@pytest.fixture(scope="module")
def page(ui_tiny_dir, tmp_path_factory, models_dir):
    config = StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, output_dir=tmp_path_factory.mktemp("page-runs"),
                          device="cpu", models_dir=models_dir)
    return build_page(config)


@pytest.fixture(scope="module")
def plain_page(tmp_path_factory):
    """Real (not tiny) settings pointing at a captioner that does not exist and no finetuned weights."""
    root = tmp_path_factory.mktemp("plain-page")
    return build_page(StudioConfig(captioner=str(root / "missing-captioner"), output_dir=root / "runs",
                                   device="cpu"))


def caption_values(page, texts=TEXTS, more: dict | None = None) -> Values:
    """The caption boxes holding `texts` (or TEXTS when the first argument is the dict of `more`)."""
    if isinstance(texts, dict):
        texts, more = TEXTS, texts
    values = Values({page.caption.texts[a]: t for a, t in zip(ASPECTS, texts)})
    values.update(more or {})
    return values


def carried(page, values: Values, shown: dict) -> Values:
    """The next event's values after an update: the caption state and boxes the page now shows."""
    following = Values(values)
    for component in page.caption.inputs:
        if component in shown:
            following[component] = shown[component]
    return following


def texts_shown(page, shown: dict) -> list[str]:
    return [shown[page.caption.texts[a]] for a in ASPECTS]


def junk_files(folder: Path) -> tuple[Path, Path]:
    """A text file and an .mp4 that is not a video, as a careless visitor drops them."""
    notes, fake = folder / "notes.txt", folder / "fake.mp4"
    notes.write_text("hello")
    fake.write_text("this is not a video")
    return notes, fake


def run_ids(page) -> set[str]:
    return {p.parent.name for p in Path(page.ctx.config.output_dir).glob("*/run.json")}


# -- building ------------------------------------------------------------------------------------------

def test_page_builds_without_torch_and_names_every_script_endpoint(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from studio.config import StudioConfig
        from studio.ui.server import build
        blocks = build(StudioConfig(tiny=True, tiny_dir={str(tmp_path / 'tiny')!r}, output_dir={str(tmp_path)!r}))
        heavy = [m for m in ("torch", "transformers", "diffusers", "ray") if m in sys.modules]
        assert not heavy, heavy
        config = blocks.get_config_file()
        public = [d["api_name"] for d in config["dependencies"] if d.get("api_visibility") == "public"]
        print(" ".join(public))
        # Browser-only events (a script, no server function) are private; nothing else may be.
        others = {{d.get("api_visibility") for d in config["dependencies"]
                   if d.get("api_visibility") != "private" or d.get("backend_fn")}} - {{"public"}}
        print(" ".join(sorted(others)))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    public, others = done.stdout.splitlines()
    assert sorted(public.split()) == sorted(
        "caption critique revise score score_all best_of_n compose generate explore render_final cancel reload_run "
        "judge import_run list_finetunes pick_finetune history".split())
    assert others == "undocumented"  # the page's own events are callable by index, not listed
    assert not (tmp_path / "tiny").exists()  # the tiny checkpoints are built on first use, not by the page


def test_the_per_visitor_cap_reads_gradios_queue_and_start_up_fails_when_it_moved(plain_page, monkeypatch):
    from gradio import queueing

    blocks = plain_page.blocks
    model_fn = next(fn for fn in blocks.fns.values() if fn.concurrency_id == GPU_QUEUE)
    waiting, running = queueing.Event("visitor", model_fn, None, None), queueing.Event("visitor", model_fn, None, None)
    gpu_queue = queueing.EventQueue(GPU_QUEUE, 1)
    gpu_queue.queue.append(waiting)
    monkeypatch.setitem(blocks._queue.event_queue_per_concurrency_id, GPU_QUEUE, gpu_queue)
    monkeypatch.setattr(blocks._queue, "active_jobs", [None, [running]])
    assert _model_queue_view(blocks, "visitor") == (1, {waiting._id, running._id})
    assert _model_queue_view(blocks, "someone-else") == (1, set())

    # A Gradio whose queue moved: the page refuses to start, naming the field, and the view never
    # quietly answers "nothing queued" (which would lift the cap).
    monkeypatch.delattr(blocks._queue, "active_jobs")
    with pytest.raises(QueueInternalsMoved, match=r"moved the queue fields .*--session-jobs.*\(Queue\.active_jobs\)"):
        check_queue_internals(blocks)
    with pytest.raises(AttributeError):
        _model_queue_view(blocks, "visitor")


def test_app_help_lists_serving_and_studio_flags():
    done = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for flag in ("--host", "--port", "--share", "--tiny", "--captioner", "--finetuned", "--max-upload-mb",
                 "--models-dir"):
        assert flag in done.stdout
    bad = subprocess.run([sys.executable, "app.py", "--max-upload-mb", "lots"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "max-upload-mb" in bad.stderr and "Traceback" not in bad.stderr


def test_the_mcp_server_is_an_option_that_names_its_extra(tmp_path, monkeypatch):
    import gradio as gr

    from studio.ui import server

    assert StudioConfig.from_env({"CHAI_STUDIO_MCP_SERVER": "1"}).mcp_server
    # Without Gradio's MCP extra (hidden from the import system here): one line, nothing written.
    without_mcp = ("import runpy, sys; sys.modules['mcp'] = None; sys.argv = ['app.py', *sys.argv[1:]]; "
                   "runpy.run_path('app.py', run_name='__main__')")
    for flag in ("--mcp", "--mcp-server"):
        done = subprocess.run([sys.executable, "-c", without_mcp, "--tiny", flag, "--output-dir",
                               str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and lines[-1].startswith("error: mcp_server: needs Gradio's MCP extra"), lines
        assert 'pip install "gradio[mcp]"' in lines[-1] and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was written or built
    server.check_mcp_extra(StudioConfig(mcp_server=True))  # installed with the test requirements
    # The setting reaches Gradio's launch (captured here instead of serving); the served MCP tools
    # are checked against the running studio in tests/test_app_e2e.py.
    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: seen.update(kwargs))
    server.launch(StudioConfig(tiny=True, tiny_dir=tmp_path / "tiny", output_dir=tmp_path / "served"))
    assert seen["mcp_server"] is False


def test_page_says_when_finetuned_weights_are_missing(page, plain_page):
    def notices(built):
        return [b for b in built.blocks.blocks.values() if getattr(b, "elem_id", None) == "finetuned-missing"]

    (notice,) = notices(plain_page)
    assert "--finetuned PATH" in notice.value
    assert notices(page) == []  # tiny mode has its tiny LoRA
    assert notices(build_page(plain_page.ctx.config.replace(finetuned="/weights/chai"))) == []


def test_the_page_shows_the_active_prompt_pack_and_captions_two_stage(page, plain_page, tmp_path):
    from studio.captioner.packs import PromptPack

    for built, name in ((page, "studio-tiny"), (plain_page, "studio-default")):
        checkbox = built.reference.two_stage
        assert checkbox.value is True and f"Prompt pack: {name} v" in checkbox.info
        assert PromptPack.for_config(built.ctx.config).sha256[:12] in checkbox.info
    folder = tmp_path / "mine"
    PromptPack.load().save(folder)
    custom = build_page(plain_page.ctx.config.replace(caption_prompts=str(folder)))
    assert str(PromptPack.load(folder).sha256[:12]) in custom.reference.two_stage.info
    (folder / "camera.txt").unlink()
    with pytest.raises(InputError, match="camera.txt is missing"):
        build_page(plain_page.ctx.config.replace(caption_prompts=str(folder)))


def test_the_gpu_banner_is_hidden_without_a_gpu_problem(page, monkeypatch):
    from studio import gpu_check
    from studio.ui.page import gpu_warning

    monkeypatch.setattr(gpu_check, "auto_device_warning", lambda: "An NVIDIA GPU is present but unusable")
    gpu_check.warn_if_gpu_unusable.cache_clear()
    try:
        shown = gpu_warning(StudioConfig())
        assert shown["visible"] and shown["value"] == "**Warning:** An NVIDIA GPU is present but unusable"
        assert gpu_warning(StudioConfig(device="cpu")) == {"__type__": "update", "value": "", "visible": False}
    finally:
        gpu_check.warn_if_gpu_unusable.cache_clear()


# -- reference -------------------------------------------------------------------------------------------

def test_upload_lists_shots_numbered_like_the_cli(page, reference_clip):
    ref = page.reference
    shown = ref.on_upload(Values({ref.clip: str(reference_clip)}))
    assert [label for label, _ in shown[ref.shot]["choices"]] == ["Shot 1: 0.00–1.00 s", "Shot 2: 1.00–2.00 s"]
    assert (shown[ref.start], shown[ref.end]) == (0.0, 1.0) and shown[ref.frame].size == (64, 64)
    assert "2 shot(s)" in shown[ref.summary] and "two_shots.mp4" in shown[ref.summary]
    picked = ref.on_shot(Values({ref.clip: str(reference_clip), ref.shot: "2", ref.shots: shown[ref.shots]}))
    assert (picked[ref.start], picked[ref.end], picked[ref.status]) == (1.0, 2.0, "Shot 2.")


def test_the_reference_player_says_which_range_is_captioned_and_examples_load_in_one_click(page, reference_clip):
    ref, caption = page.reference, page.caption
    shown = ref.on_upload(Values({ref.clip: str(reference_clip)}))
    assert shown[ref.range] == "**Shot 1: 0.00–1.00 s** (1.00 s)"
    shots = shown[ref.shots]
    picked = ref.on_shot(Values({ref.clip: str(reference_clip), ref.shot: "2", ref.shots: shots}))
    assert picked[ref.range] == "**Shot 2: 1.00–2.00 s** (1.00 s)"
    typed = ref.on_start(Values({ref.clip: str(reference_clip), ref.start: 0.5, ref.end: 1.5, ref.shots: shots}))
    assert typed[ref.range] == "**Range:** 0.50–1.50 s (1.00 s)"
    assert ref.on_end(Values({ref.start: 0.5, ref.end: 0, ref.shots: shots}))[ref.range] == \
        "**Range:** 0.50 s – end of the clip"
    # The sample clip and every library shot are examples: a click sets the input, then the usual handler runs.
    assert [Path(row[0]).name for row in ref.examples.examples] == ["plaza_two_shots.mp4"]
    sample = ref.on_upload(Values({ref.clip: ref.examples.examples[0][0]}))
    assert "2 shot(s)" in sample[ref.summary] and sample[ref.range].startswith("**Shot 1: ")
    names = [row[0] for row in caption.library_examples.examples]
    assert "dolly_zoom" in names and len(names) == len(caption.library.choices)


def test_each_refine_tab_shows_the_text_it_edits(page):
    caption = page.caption
    loaded = caption.on_library(caption_values(page, {caption.library: "whip_pan"}))
    for aspect, panel in caption.panels.items():
        assert loaded[panel.mirror] == loaded[caption.texts[aspect]] and loaded[panel.mirror].strip()
    inserted = caption.panels["Camera"].on_insert(carried(page, caption_values(page, {
        caption.panels["Camera"].primitive: caption.panels["Camera"]._choices(None)[0][1]}), loaded))
    assert inserted[caption.panels["Camera"].mirror] == inserted[caption.texts["Camera"]]
    assert inserted[caption.texts["Camera"]] != loaded[caption.texts["Camera"]]
    tabs = next(b for b in page.blocks.blocks.values() if getattr(b, "elem_id", None) == "aspect-tabs")
    assert tabs.overflow_behavior == "wrap"  # all five tabs stay visible on a phone


def test_bad_uploads_change_only_the_status_line(page, tmp_path):
    ref = page.reference
    notes, fake = junk_files(tmp_path)
    for value, message in ((None, "⚠ reference: upload a reference clip (mp4, mov, webm, mkv, avi, m4v) first"),
                           (str(notes), "notes.txt is not a video file the studio reads"),
                           (str(tmp_path / "gone.mp4"), "no such file gone.mp4; choose a reference clip"),
                           (str(fake), "fake.mp4")):
        shown = ref.on_upload(Values({ref.clip: value}))
        assert list(shown) == [ref.status] and shown[ref.status].startswith("⚠") and message in shown[ref.status]
        assert str(tmp_path) not in shown[ref.status]


def test_a_file_the_browser_refused_is_worded_in_the_reference_status(page):
    """The page script stops a non-video before the player's own toast and hands its name here."""
    ref = page.reference
    for name, message in (("notes.txt", "⚠ reference: notes.txt is not a video file the studio reads; use a clip "
                                        "of type mp4, mov, webm, mkv, avi, m4v"),
                          ("odd.mkv", "⚠ the browser does not read odd.mkv as a video; convert it to mp4"),
                          ("", "⚠ reference: the file is not a video file the studio reads")):
        shown = ref.on_refused_upload(Values({ref.refused_name: name}))
        assert list(shown) == [ref.status] and shown[ref.status].startswith(message), shown


def test_uploads_over_the_size_limit_are_refused(page, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20))
    small_limit = build_page(page.ctx.config.replace(max_upload_mb=1))
    shown = small_limit.reference.on_upload(Values({small_limit.reference.clip: str(big)}))
    assert shown == {small_limit.reference.status: "⚠ reference: big.mp4 is 2 MB; the limit is 1 MB (set "
                                                   "--max-upload-mb to change it)"}


# -- caption -------------------------------------------------------------------------------------------------

def test_caption_streams_text_swaps_the_button_and_keeps_the_old_texts_undoable(page, reference_clip):
    ref, caption = page.reference, page.caption
    loaded_before = page.ctx.session.models.captioner_loaded()
    values = caption_values(page, {ref.clip: str(reference_clip), ref.start: 1.0, ref.end: 2.0})
    updates = list(ref.on_caption(values))
    assert interactive(updates[0][ref.caption_button]) is False and updates[0][ref.status] == "Starting…"
    assert interactive(updates[-1][ref.caption_button]) is True
    statuses = [u[ref.status] for u in updates if ref.status in u]
    assert not any(s.startswith("⚠") for s in statuses), statuses
    if not loaded_before:
        assert any(s.startswith("Loading the captioner…") for s in statuses)
    done_at = next(i for i, u in enumerate(updates) if caption.state in u)
    streamed = [u for u in updates[:done_at] if caption.texts["Subject"] in u]
    assert streamed and all(u[ref.status].startswith("Captioning ") for u in streamed)
    done = updates[done_at]
    assert done[ref.status].startswith("Captioned two_shots.mp4 1.00–2.00 s")
    new_texts = texts_shown(page, done)
    assert all(t.strip() for t in new_texts) and all("\x00" not in t for t in new_texts)
    assert all("captioned the clip" in done[caption.panels[a].history] for a in ASPECTS)
    assert all(done[caption.badges[a]] == "Reward: not scored" for a in ASPECTS)
    undone = caption.panels["Motion"].on_undo(carried(page, values, done))
    assert undone[caption.texts["Motion"]] == TEXTS[2] and undone[caption.texts["Camera"]] == new_texts[4]


def test_a_bad_range_fails_in_place_and_puts_the_texts_back(page, reference_clip):
    ref = page.reference
    updates = list(ref.on_caption(caption_values(page, {ref.clip: str(reference_clip), ref.start: 1.5,
                                                         ref.end: 1.0})))
    assert updates == [{ref.status: "⚠ end: must be after start (1.5 s), got 1"}]
    short = build_page(page.ctx.config.replace(max_clip_seconds=1.0))
    updates = list(short.reference.on_caption(caption_values(short, {short.reference.clip: str(reference_clip)})))
    final = updates[-1]
    assert "two_shots.mp4 is 2.0 s long; the limit is 1 s" in final[short.reference.status]
    assert texts_shown(short, updates[-2]) == TEXTS  # the boxes keep what the user had
    assert interactive(updates[-2][short.reference.caption_button]) is True


def test_the_aspect_loop_scores_revises_and_explains_what_is_missing(page, reference_clip):
    ref, caption = page.reference, page.caption
    panel = caption.panels["Camera"]
    values = caption_values(page, {ref.clip: str(reference_clip), ref.start: 0, ref.end: 1})
    scored = panel.on_score(values)
    assert scored[panel.status].startswith("Reward: ") and scored[panel.status] == scored[caption.badges["Camera"]]
    assert caption.state in scored and texts_shown(page, scored) == TEXTS
    suggested = panel.on_suggest(values)
    assert suggested[panel.critique].strip() and "\x00" not in suggested[panel.critique]
    revised = panel.on_revise(carried(page, values.but({panel.critique: "Say how high the camera is."}),
                                      scored))
    assert revised[panel.status] == "Revised (Undo restores the previous text)."
    assert "Say how high the camera is." in revised[panel.history]
    refused = panel.on_revise(values.but({panel.critique: "  "}))
    assert refused == {panel.status: "⚠ Camera: write a critique for Camera (or press Suggest critique) before "
                                     "revising"}
    # CHAI's no-change sentence (alone or with more after it): Revise is skipped, the text stays.
    chai = "The caption is accurate and requires no edits, so it should remain exactly the same."
    for critique in (chai, chai + " Well observed."):
        kept = panel.on_revise(values.but({panel.critique: critique}))
        assert list(kept) == [panel.status] and kept[panel.status].startswith("Revise skipped: the critique says")
    scene = caption.panels["Scene"]
    refused = scene.on_suggest(caption_values(page, ["a", "", "", "", ""], {ref.clip: str(reference_clip)}))
    assert list(refused) == [scene.status] and "the Scene text is empty" in refused[scene.status]
    refused = panel.on_score(caption_values(page, {ref.clip: None}))
    assert list(refused) == [panel.status] and "upload a reference clip" in refused[panel.status]


def test_best_of_n_and_score_all_update_the_badges(page, reference_clip):
    ref, caption = page.reference, page.caption
    panel = caption.panels["Subject"]
    values = caption_values(page, {ref.clip: str(reference_clip), ref.start: 0, ref.end: 1, panel.best_of_n: 2})
    best = panel.on_best_of(values)
    ranked = best[panel.ranked]
    assert len(ranked) == 3 and [c.current for c in ranked].count(True) == 1  # 2 candidates and the user's text
    assert [c.reward for c in ranked] == sorted((c.reward for c in ranked), reverse=True)
    assert best[caption.badges["Subject"]].startswith("Reward: ") and "not scored" not in best[caption.badges["Subject"]]
    assert best[panel.best_of_result].count("\n") == 3 and "(your text)" in best[panel.best_of_result]
    if ranked[0].current:  # the user's text scored highest: it stays, no revision recorded
        assert best[panel.status].startswith("Your text scored highest (")
        assert panel.caption.texts["Subject"] not in best or best[caption.texts["Subject"]] == TEXTS[0]
    else:
        assert best[panel.status].startswith("Kept the best of 2 candidates (")
        assert best[caption.texts["Subject"]] == ranked[0].text and "best of 2 candidates" in best[panel.history]
    picker = best[panel.candidates]
    assert picker["visible"] is True and picker["value"] == 0 and len(picker["choices"]) == 3
    assert sum("your text" in label for label, _ in picker["choices"]) == 1
    # any candidate can be picked from the ranked list; Undo restores the text it replaced
    other = next(i for i, c in enumerate(ranked) if not c.current and c.text.strip() != TEXTS[0])
    picked = panel.on_use_candidate(values.but({panel.candidates: other, panel.ranked: ranked}))
    assert picked[caption.texts["Subject"]] == ranked[other].text
    assert picked[panel.status].startswith(f"Using candidate {other + 1} (")
    assert panel.on_use_candidate(values.but({panel.candidates: None, panel.ranked: []})) == {
        panel.status: "Run Best of N on Subject first, then pick one of its candidates."}
    refused = panel.on_best_of(values.but({panel.best_of_n: 50}))
    assert refused == {panel.status: "⚠ n: must be between 2 and 8, got 50"}
    scored = caption.on_score_all(values)
    assert scored[caption.score_all_status].startswith("Scored: Subject ")
    assert all(scored[caption.badges[a]].startswith("Reward: ") and "%" in scored[caption.badges[a]] for a in ASPECTS)
    empty = caption.on_score_all(caption_values(page, [""] * 5, {ref.clip: str(reference_clip)}))
    assert list(empty) == [caption.score_all_status] and "every aspect is empty" in empty[caption.score_all_status]


def test_glossary_click_inserts_the_primitive(page):
    panel = page.caption.panels["Camera"]
    vocabulary = load_vocabulary()
    subs = panel.sub_aspect.choices
    second_sub = subs[1][1]
    switched = panel.on_sub_aspect({panel.sub_aspect: second_sub})
    rows = switched[panel.glossary]["samples"]
    assert rows and [label for label, _ in switched[panel.primitive]["choices"]] == [row[0] for row in rows]
    qualified = switched[panel.primitive]["choices"][0][1]
    shown = panel.on_glossary(caption_values(page, {panel.glossary: 0, panel.sub_aspect: second_sub}))
    assert vocabulary.primitive(qualified).phrase in shown[page.caption.texts["Camera"]]
    assert shown[panel.status] == f"Inserted **{vocabulary.primitive(qualified).name}** into Camera."
    gone = panel.on_glossary(caption_values(page, {panel.glossary: 999, panel.sub_aspect: second_sub}))
    assert gone == {panel.status: "That term is no longer listed; pick the sub-aspect again."}
    refused = panel.on_insert(caption_values(page, {panel.primitive: None}))
    assert refused == {panel.status: "⚠ Camera primitive: pick a primitive from the Camera list first"}


def test_library_export_and_import_keep_each_aspect_one_undo_away(page, tmp_path):
    caption = page.caption
    loaded = caption.on_library(caption_values(page, {caption.library: "dolly_zoom"}))
    preset_texts = texts_shown(page, loaded)
    assert all(t.strip() for t in preset_texts) and loaded[caption.status].startswith("Loaded **dolly_zoom**")
    assert caption.on_library(caption_values(page, {caption.library: None})) == {
        caption.status: "⚠ preset: choose a shot from the library first"}
    exported = caption.on_export(carried(page, caption_values(page), loaded))
    data = json.loads(Path(exported[caption.export_file]).read_text())
    assert [data["aspects"][a]["text"] for a in ASPECTS] == preset_texts
    imported = caption.on_import(caption_values(page, ["x", "y", "z", "w", "v"],
                                                {caption.import_file: exported[caption.export_file]}))
    assert texts_shown(page, imported) == preset_texts and imported[caption.status].startswith("Imported")
    undone = caption.panels["Scene"].on_undo(carried(page, caption_values(page), imported))
    assert undone[caption.texts["Scene"]] == "y"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    refused = caption.on_import(caption_values(page, {caption.import_file: str(bad)}))
    assert list(refused) == [caption.status] and "could not import bad.json" in refused[caption.status]
    assert str(tmp_path) not in refused[caption.status]
    empty = caption.on_export(caption_values(page, [""] * 5))
    assert empty == {caption.status: "⚠ export: every aspect is empty; there is nothing to export yet"}


# -- prompt ------------------------------------------------------------------------------------------------------

def test_compose_modes_the_meter_and_fit(page):
    prompt = page.prompt
    values = caption_values(page, {prompt.mode: "Extractive", prompt.words: 120})
    composed = prompt.on_compose(values)
    text = composed[prompt.prompt]
    assert "Static camera." in text and composed[prompt.status] == "Composed (Extractive)."
    tokens = len(page.ctx.session.models.tokenizer()(text)["input_ids"])  # the tiny baseline's umT5 tokenizer
    assert composed[prompt.meter].startswith(f"**{len(text.split())} words · {tokens} / 512 tokens**")
    assert "Coverage: Subject" in composed[prompt.report]
    camera_first = prompt.on_compose(values.but({prompt.mode: "Camera first"}))
    assert camera_first[prompt.prompt].startswith("Static camera.")
    fitted = prompt.on_fit(values)
    assert fitted[prompt.status].startswith("Fitted: ") and "(limit 512)" in fitted[prompt.status]
    edited = prompt.on_edit({prompt.prompt: "word " * 700})
    assert "over the limit" in edited[prompt.meter]
    merged = prompt.on_compose(values.but({prompt.mode: "LLM merge"}))
    assert merged[prompt.prompt].strip() and "\x00" not in merged[prompt.prompt]
    assert merged[prompt.status] == "Composed (LLM merge)."


class Visitor:
    """What Gradio passes as the request: the browser session's id."""

    def __init__(self, session_hash: str) -> None:
        self.session_hash, self.username = session_hash, None


def test_a_slow_merge_finishing_after_a_fit_does_not_overwrite_it(page):
    prompt, visitor = page.prompt, Visitor("slow-merge")
    values = caption_values(page, {prompt.mode: "LLM merge", prompt.words: 120})
    merged: list[dict] = []
    with page.ctx.model_lock:  # the merge waits for the model, as it does behind a caption or a run
        worker = threading.Thread(target=lambda: merged.append(prompt.on_compose(values, visitor)))
        worker.start()
        deadline = time.monotonic() + 30
        while not prompt.requests.is_latest(visitor.session_hash, 1):  # the merge has taken its ticket
            assert time.monotonic() < deadline and worker.is_alive()
            time.sleep(0.01)
        fitted = prompt.on_fit(values.but({prompt.mode: "Extractive"}), visitor)
        assert fitted[prompt.status].startswith("Fitted: ")
    worker.join(timeout=120)
    assert merged == [{}]  # the late merge changes nothing: the Fit's prompt, meter and report stay
    # Typing in the box is a later request too; another visitor's requests do not count against this one.
    ticket = prompt.requests.begin(visitor.session_hash)
    prompt.on_typed(visitor)
    assert not prompt.requests.is_latest(visitor.session_hash, ticket)
    alone = prompt.on_compose(values, Visitor("other-visitor"))
    assert alone[prompt.status] == "Composed (LLM merge)." and alone[prompt.prompt].strip()


def test_latest_requests_keep_only_the_newest_ticket_per_visitor():
    requests = LatestRequests(max_visitors=2)
    first, second = requests.begin("a"), requests.begin("a")
    assert not requests.is_latest("a", first) and requests.is_latest("a", second)
    requests.begin("b")
    requests.begin("c")  # "a" is forgotten: its late result is dropped, never shown over a newer one
    assert not requests.is_latest("a", second) and requests.is_latest("c", 1)


def test_the_merge_report_counts_the_merged_prompt_like_the_meter(page):
    """An extractive draft far over the token limit must not speak for the short merged text."""
    prompt, session = page.prompt, page.ctx.session
    long_aspects = [" ".join(f"zqx{a}{n}vbr" for n in range(90)) + "." for a in range(5)]
    caption = caption_from_user({a: t for a, t in zip(ASPECTS, long_aspects)}, session.limits)
    draft = session.compose(ComposeRequest(caption, "Extractive", 320))
    assert draft.over_limit and any("tokens" in w for w in draft.report["warnings"])
    merged = session.compose(ComposeRequest(caption, "LLM merge", 320))
    tokens, exact = session.count_tokens(merged.prompt)
    assert (merged.report["tokens"], merged.report["words"]) == (merged.tokens, word_count(merged.prompt))
    assert (merged.tokens, merged.exact_tokens) == (tokens, exact) and merged.report["mode"] == "LLM merge"
    assert not merged.report["dropped"]
    assert any("tokens" in w for w in merged.report["warnings"]) == merged.over_limit
    shown = prompt.on_compose(caption_values(page, long_aspects, {prompt.mode: "LLM merge", prompt.words: 320}),
                              Visitor("merge-report"))
    meter_tokens = int(re.search(r"(\d+) / 512 tokens", shown[prompt.meter]).group(1))
    assert meter_tokens == len(session.models.tokenizer()(shown[prompt.prompt])["input_ids"])
    assert ("tokens" in shown[prompt.report]) == (meter_tokens > 512)


def test_compose_refusals_change_only_the_status(page):
    prompt = page.prompt
    for values, message in (
        (caption_values(page, [""] * 5, {prompt.words: 120}), "every aspect is empty; caption the clip, load a "
                                                                "preset or type"),
        (caption_values(page, {prompt.mode: "Poetic"}), "mode: unknown composer mode"),
        (caption_values(page, {prompt.words: 1000}), "max_words: must be between 20 and 320, got 1000"),
        (caption_values(page, {prompt.words: float("nan")}), "max_words: expected a finite number"),
        (caption_values(page, ["x" * 7000, *TEXTS[1:]]), "Subject: text is 7000 characters"),
    ):
        shown = prompt.on_compose(values)
        assert list(shown) == [prompt.status] and message in shown[prompt.status], shown


# -- generate ------------------------------------------------------------------------------------------------

def generate_values(page, more: dict | None = None) -> Values:
    gen = page.generate
    values = caption_values(page, {page.prompt.prompt: "A dog runs.", gen.seed: 5})
    values.update(more or {})
    return values


def test_generate_swaps_the_buttons_and_shows_both_sides(page):
    gen = page.generate
    before = run_ids(page)
    updates = list(gen.on_generate(generate_values(page)))
    first, last = updates[0], updates[-1]
    assert interactive(first[gen.generate_button]) is False and interactive(first[gen.cancel_button]) is True
    assert interactive(last[gen.generate_button]) is True and interactive(last[gen.cancel_button]) is False
    done = next(u for u in updates if gen.downloads in u)
    assert done[gen.status].startswith("Done: run ") and "(seed 5)" in done[gen.status]
    assert sorted(Path(f).name for f in done[gen.downloads]) == ["run.json", "side_by_side.mp4"]
    videos = [Path(done[gen.players[slot]["video"]]["value"]).name for slot in ("left", "right")]
    assert videos == ["finetuned.mp4", "baseline.mp4"] and done[gen.used_seed] == 5
    assert run_ids(page) == before | {done[gen.run_id]}
    assert interactive(done[gen.judge_button]) is True and done[page.history.run_ids][0] == done[gen.run_id]
    progress = [u[gen.players["left"]["progress"]] for u in updates if gen.players["left"]["progress"] in u]
    assert "runs first" in progress[0] or "runs after" in progress[0]
    assert any("step 1/2" in p for p in progress) and progress[-1].endswith("step 2/2 · done")
    assert any("left" in u[gen.status] for u in updates if gen.status in u and "Generating" in u[gen.status])


def test_the_speed_profile_sets_the_controls_and_is_recorded(page):
    gen = page.generate
    shown = gen.on_profile(generate_values(page, {gen.profile: "draft"}))
    assert shown == {gen.seconds: 0.17, gen.resolution: "32x32", gen.steps: 1}  # the tiny preset, scaled
    assert gen.on_profile(generate_values(page, {gen.profile: "final"}))[gen.steps] == 2
    updates = list(gen.on_generate(generate_values(page, {gen.profile: "draft", gen.resolution: "32x32",
                                                          gen.seconds: 0.17, gen.steps: 1})))
    done = next(u for u in updates if gen.downloads in u)
    record = json.loads(next(Path(f) for f in done[gen.downloads] if f.endswith("run.json")).read_text())
    assert record["settings"]["profile"] == "draft" and record["settings"]["step_cache"].startswith("taylorseer:")
    assert (record["settings"]["width"], record["settings"]["steps"]) == (32, 1)


def test_explore_ranks_drafts_in_a_grid_a_click_keeps_one_and_render_final_links_them(page):
    import gradio as gr

    gen, history = page.generate, page.history
    assert gen.explore_button.value == "Explore 4 seeds"
    values = generate_values(page, {gen.explore_seeds: 2, gen.seed: 30, gen.profile: "final"})
    updates = list(gen.on_explore(values))
    assert interactive(updates[0][gen.explore_button]) is False and interactive(updates[0][gen.cancel_button])
    assert any("Seed 31 (2 of 2)" in u.get(gen.status, "") for u in updates)
    done = updates[-1]
    grid, kept = done[gen.explore_grid], done[gen.explore_runs]
    assert grid["visible"] and len(grid["value"]) == 2 == len(kept) and interactive(done[gen.explore_button])
    report = json.loads((Path(page.ctx.config.output_dir) / "explore.json").read_text())
    assert [e["run"] for e in report["ranking"]] == kept and report["seeds"] == [30, 31]
    for (video, caption), entry, place in zip(grid["value"], report["ranking"], (1, 2)):
        assert Path(video).parent.name == entry["run"] and caption.startswith(f"#{place} · seed {entry['seed']}")
        record = json.loads((Path(page.ctx.config.output_dir) / entry["run"] / "run.json").read_text())
        # Explore renders drafts whatever the profile radio says; the judge scored each one.
        assert record["settings"]["profile"] == "draft"
        assert (Path(page.ctx.config.output_dir) / entry["run"] / "judge.json").is_file()
    assert set(kept) <= set(done[history.run_ids])

    second = kept[1]
    shown = gen.on_keep(Values({gen.explore_runs: kept}), gr.SelectData(None, {"index": 1, "value": None}))
    assert shown[gen.run_id] == second and interactive(shown[gen.final_button]) is True
    assert shown[gen.seed] == report["ranking"][1]["seed"] and second in shown[gen.status]
    assert "no longer in the grid" in gen.on_keep(Values({gen.explore_runs: []}),
                                                  gr.SelectData(None, {"index": 0, "value": None}))[gen.status]

    final = list(gen.on_render_final(Values({gen.run_id: second, gen.finetune: ""})))
    result = next(u for u in final if gen.downloads in u)
    record = json.loads(next(Path(f) for f in result[gen.downloads] if f.endswith("run.json")).read_text())
    assert record["from_run"] == second and record["settings"]["profile"] == "final"
    assert record["seed"] == report["ranking"][1]["seed"] and record["prompt"] == "A dog runs."
    cards = {card.run_id: card for card in page.ctx.session.runs.cards()}
    assert cards[result[gen.run_id]].from_run == second and f"from {second}" in cards[result[gen.run_id]].lines
    assert cards[second].rendered_again == (result[gen.run_id],) and cards[second].profile == "draft"
    assert "Render final" not in str(list(gen.on_render_final(Values({gen.run_id: None, gen.finetune: ""})))[-1])
    refused = list(gen.on_render_final(Values({gen.run_id: "no-such-run", gen.finetune: ""})))
    assert len(refused) == 1 and refused[0][gen.status].startswith("⚠")


def test_api_explore_and_render_final(page):
    api = page.api
    ranking = api.on_explore("A dog runs.", {"seed": 7}, None, None, None, 2)
    assert ranking["seeds"] == [7, 8] and ranking["profile"] == "draft" and len(ranking["ranking"]) == 2
    assert all("run_dir" not in entry for entry in ranking["ranking"])  # scripts get run ids, not server paths
    run, files = list(api.on_render_final(ranking["best"], None))[-1]
    record = json.loads(Path(files[-1]).read_text())
    assert record["from_run"] == ranking["best"] and record["settings"]["profile"] == "final"
    assert run["seed"] == ranking["ranking"][0]["seed"]
    for call, message in ((lambda: api.on_explore("A dog.", {}, None, None, None, 0), "seeds: must be between 1"),
                          (lambda: next(api.on_render_final(ranking["best"], {"steps": 3})),
                           "settings: unknown field(s) steps"),
                          (lambda: next(api.on_render_final(ranking["best"], {"profile": "turbo"})),
                           "unknown profile 'turbo'")):
        with pytest.raises(InputError, match=re.escape(message)):
            call()


def test_generate_refusals_keep_everything_and_reset_the_buttons(page, plain_page):
    for built, more, message in (
        (page, {page.generate.seed: "abc"}, "seed: expected a number, got 'abc'"),
        (page, {page.generate.resolution: "big"}, "resolution: expected WIDTHxHEIGHT"),
        (page, {page.generate.resolution: "4096x704"}, "width: must be at most 1024 pixels"),
        (page, {page.prompt.prompt: "  "}, "prompt: the prompt is empty"),
        (page, {page.generate.comparison: "prompt"}, "short_prompt: prompt mode compares"),
        (page, {page.generate.finetune: "/etc"}, "is not one of the models in the models folder"),
        (page, {page.generate.start_from_frame: True}, "needs a reference clip"),
        (plain_page, {plain_page.generate.comparison: "finetuned"}, "--finetuned PATH"),
    ):
        gen = built.generate
        updates = list(gen.on_generate(generate_values(built, more)))
        # Refused before anything rendered: no player, download or seed was touched.
        untouched = {gen.generate_button, gen.explore_button, gen.cancel_button, gen.status, gen.judge_result,
                     *(p["preview"] for p in gen.players.values())}
        assert len(updates) <= 2 and all(set(u) <= untouched for u in updates), updates
        shown = updates[-1]
        assert shown[gen.status].startswith("⚠") and message in shown[gen.status], shown[gen.status]
        assert interactive(shown[gen.generate_button]) is True and interactive(shown[gen.cancel_button]) is False


def test_a_cancel_during_generate_ends_calmly_and_writes_nothing(page):
    gen = page.generate
    assert gen.on_cancel() == {gen.status: "Nothing is generating."}
    before = run_ids(page)
    stream = gen.on_generate(generate_values(page, {gen.steps: 40}))
    cancelled = None
    updates = []
    for update in stream:
        updates.append(update)
        if cancelled is None and "Generating" in str(update.get(gen.status, "")):
            cancelled = gen.on_cancel()
    assert cancelled == {gen.status: "Cancelling: the run stops after the current step."}
    last = updates[-1]
    assert last[gen.status].startswith("Cancelled: nothing was written.") and "⚠" not in last[gen.status]
    assert interactive(last[gen.generate_button]) is True and interactive(last[gen.cancel_button]) is False
    assert all(last[p["preview"]]["visible"] is False for p in gen.players.values())
    assert run_ids(page) == before and gen.on_cancel() == {gen.status: "Nothing is generating."}


def frames_of(run_json: str | Path) -> dict[str, str]:
    record = json.loads(Path(run_json).read_text())
    return {side["key"]: side["frames_sha256"] for side in record["comparison"]["sides"]}


def test_reload_restores_an_image_start_run_and_regenerates_it_identically(page, reference_clip):
    gen, ref, history = page.generate, page.reference, page.history
    first = list(gen.on_generate(generate_values(page, {gen.start_from_frame: True, ref.clip: str(reference_clip),
                                                          ref.start: 1.0, gen.seed: 9})))
    done = next(u for u in first if gen.downloads in u)
    run_json = next(f for f in done[gen.downloads] if f.endswith("run.json"))
    assert (Path(run_json).parent / "start_image.png").is_file()
    index = done[history.run_ids].index(done[gen.run_id])
    other_settings = generate_values(page, {history.cards: index, history.run_ids: done[history.run_ids]})
    shown = history.on_select(carried(page, other_settings, {}))
    assert shown[history.status] == f"Reloaded run **{done[gen.run_id]}**."
    assert shown[ref.clip] == str(reference_clip) and shown[ref.start] == 1.0
    assert shown[gen.start_from_frame] is True and shown[gen.seed] == 9 and shown[page.prompt.prompt] == "A dog runs."
    assert texts_shown(page, shown) == TEXTS
    assert Path(shown[gen.players["left"]["video"]]["value"]).name == "finetuned.mp4"
    again = Values(generate_values(page))
    for component in (page.prompt.prompt, *gen.settings, gen.start_image, ref.clip, ref.start, ref.end):
        again[component] = shown[component]
    repeat = next(u for u in gen.on_generate(again) if gen.downloads in u)
    second_json = next(f for f in repeat[gen.downloads] if f.endswith("run.json"))
    assert second_json != run_json and frames_of(second_json) == frames_of(run_json)
    # Runs dropped on History restore the same settings: a downloaded run.json and the studio's mp4.
    for dropped in (run_json, str(Path(run_json).parent / "side_by_side.mp4")):
        shown = history.on_import(caption_values(page, [""] * 5, {history.import_file: dropped}))
        assert shown[history.status].startswith(f"Loaded the settings of **{Path(dropped).name}**")
        assert (shown[gen.seed], shown[gen.resolution], shown[gen.start_from_frame]) == (9, "64x64", True)
        assert shown[page.prompt.prompt] == "A dog runs." and texts_shown(page, shown) == TEXTS


def test_reload_restores_a_text_start_runs_reference_and_its_judge_scores(page, reference_clip):
    gen, ref, history = page.generate, page.reference, page.history
    first = list(gen.on_generate(generate_values(page, {ref.clip: str(reference_clip), ref.start: 0.5, ref.end: 1.5,
                                                          gen.seed: 12})))
    done = next(u for u in first if gen.downloads in u)
    record = json.loads(Path(next(f for f in done[gen.downloads] if f.endswith("run.json"))).read_text())
    assert record["reference"]["clip"] == str(reference_clip) and record["image"] is None  # a text start
    judged = gen.on_judge({gen.run_id: done[gen.run_id]})
    index = done[history.run_ids].index(done[gen.run_id])
    other = generate_values(page, {history.cards: index, history.run_ids: done[history.run_ids], ref.clip: None,
                                   ref.start: 0.0, ref.end: 0.0})
    shown = history.on_select(carried(page, other, {}))
    assert (shown[ref.clip], shown[ref.start], shown[ref.end]) == (str(reference_clip), 0.5, 1.5)
    assert shown[gen.judge_result] == judged[gen.judge_result] and "| Camera |" in shown[gen.judge_result]
    assert shown[gen.start_from_frame] is False


def test_history_refuses_what_it_cannot_restore(page, tmp_path):
    history = page.history
    notes, fake = junk_files(tmp_path)
    for dropped, message in ((str(notes), "notes.txt is neither a run.json nor a studio mp4"),
                             (str(fake), "fake.mp4 is not a readable video"), (None, "upload a run.json")):
        shown = history.on_import(caption_values(page, {history.import_file: dropped}))
        assert list(shown) == [history.status] and message in shown[history.status], shown
        assert str(tmp_path) not in shown[history.status]
    stale = history.on_select(Values({history.cards: 3, history.run_ids: ["a"]}))
    assert stale == {history.status: "That run is no longer listed; press Refresh."}
    gone = history.on_select(caption_values(page, {history.cards: 0, history.run_ids: ["no-such-run"]}))
    assert list(gone) == [history.status] and "there is no run" in gone[history.status]


def test_history_filters_searches_and_deletes_runs_with_their_files(page):
    gen, history = page.generate, page.history
    visitor = Visitor("history-filters")
    done = [next(u for u in gen.on_generate(generate_values(page, {page.prompt.prompt: text, gen.seed: seed}))
                 if gen.run_id in u) for text, seed in (("A lighthouse at dusk.", 7301), ("A kite over dunes.", 7302))]
    lighthouse, kite = (d[gen.run_id] for d in done)
    filters = {history.mode: "", history.model: "", history.search: ""}
    searched = history.on_filter(Values({**filters, history.search: "  LIGHTHOUSE   dusk "}), visitor)
    assert searched[history.run_ids] == [lighthouse] and searched[history.status] == "1 run(s) match."
    assert history.refreshed(visitor)[history.run_ids] == [lighthouse]  # what Generate and Judge refresh, too
    assert history.refreshed(Visitor("someone-else"))[history.run_ids][:2] == [kite, lighthouse]
    by_seed = history.on_filter(Values({**filters, history.search: "7302"}), visitor)
    assert by_seed[history.run_ids] == [kite]
    other_mode = history.on_filter(Values({**filters, history.mode: "baseline"}), visitor)
    assert other_mode[history.run_ids] == [] and other_mode[history.status].startswith("No run matches")
    other_model = history.on_filter(Values({**filters, history.model: "t2v-a14b"}), visitor)
    assert other_model[history.run_ids] == []
    both = history.on_filter(Values({**filters, history.mode: "finetuned", history.model: "ti2v-5b"}), visitor)
    assert {kite, lighthouse} <= set(both[history.run_ids])
    for bad, message in (({history.mode: "sideways"}, "mode: unknown mode 'sideways'"),
                         ({history.model: "wan9"}, "model: unknown model 'wan9'")):
        shown = history.on_filter(Values({**filters, **bad}), visitor)
        assert list(shown) == [history.status] and message in shown[history.status], shown

    # A click selects the run for Delete; Delete removes its folder and every file in it.
    history.on_filter(Values(filters), visitor)
    listed = history.refreshed(visitor)[history.run_ids]
    picked = history.on_select(caption_values(page, {history.cards: listed.index(kite), history.run_ids: listed}),
                               visitor)
    assert picked[history.selected] == kite and picked[history.delete_button]["interactive"] is True
    folder = Path(page.ctx.config.output_dir) / kite
    files = sum(1 for f in folder.rglob("*") if f.is_file())
    deleted = history.on_delete(Values({history.selected: kite}), visitor)
    assert deleted[history.status] == f"Deleted run **{kite}** and its {files} file(s)." and files >= 3
    assert not folder.exists() and kite not in deleted[history.run_ids] and lighthouse in deleted[history.run_ids]
    assert deleted[history.selected] is None and deleted[history.delete_button]["interactive"] is False
    for selected, message in ((None, "run: click the run to delete first"), (kite, "there is no run"),
                              ("../outside", "there is no run")):
        shown = history.on_delete(Values({history.selected: selected}), visitor)
        assert list(shown) == [history.status] and message in shown[history.status], shown


def test_per_visitor_history_deletes_only_the_visitors_own_runs(page, tmp_path):
    private = build_page(page.ctx.config, public=True)
    assert private.ctx.per_session_history
    someone = next(iter(run_ids(page)))
    shown = private.history.on_delete(Values({private.history.selected: someone}), Visitor("a-stranger"))
    assert list(shown) == [private.history.status] and "there is no run" in shown[private.history.status]
    assert someone in run_ids(page)


def test_a_wrong_file_dropped_on_an_import_box_gets_one_message_in_its_status(page, tmp_path):
    """Gradio's own file-type check would raise a red toast before the handler ran, leaving the
    section's earlier "Loaded …" status beside it. The boxes take any file; the handler refuses it."""
    from gradio.data_classes import FileData

    caption, history = page.caption, page.history
    notes, _ = junk_files(tmp_path)
    loaded = caption.on_library(caption_values(page, {caption.library: "dolly_zoom"}))
    assert loaded[caption.status].startswith("Loaded **dolly_zoom**")
    for box, handler, status, message in (
        (caption.import_file, caption.on_import, caption.status, "notes.txt is not a .json file"),
        (history.import_file, history.on_import, history.status, "notes.txt is neither a run.json nor a studio mp4"),
    ):
        received = box.preprocess(FileData(path=str(notes), orig_name="notes.txt"))
        shown = handler(carried(page, caption_values(page, {box: received}), loaded))
        assert list(shown) == [status] and shown[status].startswith("⚠") and message in shown[status], shown


def test_the_finetune_menu_lists_the_models_folder_and_refuses_other_values(page, models_dir):
    gen = page.generate
    choices = gen.on_refresh_finetunes()[gen.finetune]["choices"]
    assert choices[0] == ("As started (the tiny LoRA)", "") and [value for _, value in choices[1:]] == ["mine"]
    assert str(models_dir) not in json.dumps(choices)
    assert page.api.on_pick_finetune("mine") == "Finetuned slot: mine."
    for hostile in ("/etc", str(models_dir / "mine"), "../mine", "notes", 7):
        with pytest.raises(InputError, match="not one of the models in the models folder"):
            page.api.on_pick_finetune(hostile)
    page.api.on_pick_finetune("")


def test_the_speed_adapter_menu_sets_the_sliders_and_the_run_carries_it(page, models_dir):
    gen = page.generate
    choices = gen.on_refresh_finetunes()[gen.speed_adapter]["choices"]
    assert [value for _, value in choices] == ["", "none", "fast"] and str(models_dir) not in json.dumps(choices)
    shown = gen.on_speed_adapter(generate_values(page, {gen.speed_adapter: "fast"}))
    assert (shown[gen.steps], shown[gen.guidance], shown[gen.shift]) == (2, 1.0, 3.0)  # the sidecar's
    assert gen.on_profile(generate_values(page, {gen.profile: "draft", gen.speed_adapter: "fast"}))[gen.steps] == 2
    back = gen.on_speed_adapter(generate_values(page, {gen.speed_adapter: "none"}))
    assert (back[gen.guidance], back[gen.shift]) == (5.0, 5.0)  # the tiny preset's own again
    updates = list(gen.on_generate(generate_values(page, {gen.speed_adapter: "fast", gen.steps: 2, gen.guidance: 1.0,
                                                          gen.shift: 3.0})))
    done = next(u for u in updates if gen.downloads in u)
    record = json.loads(next(Path(f) for f in done[gen.downloads] if f.endswith("run.json")).read_text())
    assert Path(record["speed_adapter"]["location"]) == models_dir / "fast"
    assert record["speed_adapter"]["used"]["steps"] == 2 and len(record["speed_adapter"]["sha256"]) == 64
    refused = list(gen.on_generate(generate_values(page, {gen.speed_adapter: "../fast"})))[-1]
    assert "speed_adapter" in refused[gen.status] and "not one of the speed adapters" in refused[gen.status]
    with pytest.raises(InputError, match="not one of the speed adapters") as caught:
        list(page.api.on_generate("A dog runs.", {"speed_adapter": str(models_dir / "fast")}, None, None))
    assert caught.value.field == "speed_adapter"


def test_preset_defaults_and_zerogpu_sizing(page):
    from studio.generation.presets import get_preset
    from studio.generation.settings import GenerationSettings
    from studio.session import GenerateRequest
    from studio.session.limits import Limits
    from studio.ui import zerogpu

    gen = page.generate
    shown = gen.on_preset({gen.preset: "t2v-a14b"})
    assert shown[gen.shift] == 12.0 and shown[gen.resolution]["value"] == shown[gen.resolution]["choices"][0]
    assert zerogpu.gpu(10)(len) is len  # a no-op off ZeroGPU
    ti2v = get_preset("ti2v-5b")
    at = {name: GenerationSettings.from_user(ti2v, profile=name, seed=0) for name in ("draft", "preview", "final")}
    seconds = {name: zerogpu.generation_seconds("ti2v-5b", s) for name, s in at.items()}
    # A cached draft is far cheaper than the final: fewer pixels, frames and (TaylorSeer) full steps.
    assert zerogpu.OVERHEAD_SECONDS < seconds["draft"] < seconds["preview"] < seconds["final"]
    assert zerogpu.full_steps(10, at["draft"].step_cache) == pytest.approx(2 + 8 / 3)
    assert zerogpu.generation_seconds("ti2v-5b", at["final"], sides=1) < seconds["final"]
    final = GenerateRequest.from_user(Limits.from_config(StudioConfig()), "A dog.", "ti2v-5b", profile="final")
    with pytest.raises(InputError) as refused:
        zerogpu.check_fits(final, 300)
    assert refused.value.field == "profile" and "more than the 300 s one ZeroGPU call may hold" in str(refused.value)
    assert "choose the draft profile" in str(refused.value)
    draft = GenerateRequest.from_user(Limits.from_config(StudioConfig()), "A dog.", "ti2v-5b", profile="draft")
    assert zerogpu.check_fits(draft, 300) == seconds["draft"]
    with pytest.raises(InputError, match="4 runs of these settings"):
        zerogpu.check_fits(draft, seconds["draft"] * 3, runs=4)
    with pytest.raises(InputError, match="shorten the video or lower the steps and size"):
        zerogpu.check_fits(draft, zerogpu.OVERHEAD_SECONDS)


def test_on_zerogpu_a_run_that_cannot_fit_is_refused_before_the_gpu(page, monkeypatch):
    from studio.ui import zerogpu

    gen = page.generate
    before = run_ids(page)
    monkeypatch.setattr(zerogpu, "on_zerogpu", lambda: True)
    monkeypatch.setattr(page.ctx, "config", page.ctx.config.replace(zerogpu_seconds=zerogpu.OVERHEAD_SECONDS - 1))
    for updates in (list(gen.on_generate(generate_values(page))), list(gen.on_explore(generate_values(page)))):
        assert len(updates) == 1 and "one ZeroGPU call may hold" in updates[0][gen.status]
        assert interactive(updates[0][gen.generate_button]) is True
    api = page.api
    with pytest.raises(InputError, match="one ZeroGPU call may hold"):
        next(api.on_generate("A dog runs.", {"steps": 1}, None, None))
    assert run_ids(page) == before


def test_a_captioner_that_cannot_load_names_the_setting(plain_page, reference_clip):
    ref, panel = plain_page.reference, plain_page.caption.panels["Camera"]
    shown = panel.on_suggest(caption_values(plain_page, {ref.clip: str(reference_clip)}))
    assert list(shown) == [panel.status] and "--captioner" in shown[panel.status]


def test_api_runs_with_a_caption_and_reference_are_judged_per_aspect(page, reference_clip):
    api = page.api
    caption = dict(zip(ASPECTS, TEXTS))
    small = {"seconds": 0.17, "resolution": "64x64", "steps": 1, "seed": 4}
    run, _ = list(api.on_generate("A dog runs.", small, str(reference_clip), 0.0, caption))[-1]
    judged = api.on_judge(run["run_id"])
    assert judged["caption_source"] == "caption" and set(judged["aspects"]) == set(ASPECTS)
    assert all(row["caption"] == caption[aspect] for aspect, row in judged["aspects"].items())
    assert judged["reference_clip"] and all(row["reference"] is not None for row in judged["aspects"].values())
    plain, _ = list(api.on_generate("A dog runs.", small, None, None))[-1]  # the old four inputs still work
    assert api.on_judge(plain["run_id"])["caption_source"] == "prompt"
    with pytest.raises(InputError, match="caption: expected the caption as a JSON object"):
        next(api.on_generate("A dog runs.", small, None, None, "the caption"))


def test_script_api_values_of_the_wrong_type_get_clear_messages(page, reference_clip):
    api, caption = page.api, {"Subject": "a"}
    for call, expected in (
        (lambda: api.on_compose(caption, "Extractive", float("nan")), "max_words: expected a finite number"),
        (lambda: api.on_compose(caption, "Extractive", {"x": 1}), "max_words: expected a number, got an object"),
        (lambda: api.on_compose(caption, "Extractive", "many"), "max_words: expected a number, got text 'many'"),
        (lambda: api.on_compose(caption, "Extractive", 1000), "max_words: must be between 20 and 320, got 1000"),
        (lambda: api.on_compose(caption, ["Extractive"], 100), "mode: unknown composer mode"),
        (lambda: api.on_compose("a caption", "Extractive", 100), "caption: expected the caption as a JSON object"),
        (lambda: api.on_score({"path": "/etc/passwd"}, 0, 1, "Camera", "x"),
         "reference: expected an uploaded file, got an object"),
        (lambda: api.on_score(str(reference_clip), [1], 2, "Camera", "x"), "start: expected a number, got a list"),
        (lambda: api.on_score(str(reference_clip), 0, 1, ["Camera"], "x"), "unknown aspect"),
        (lambda: next(api.on_generate(5, {}, None, None)), "prompt: expected text, got a number"),
        (lambda: next(api.on_generate("A dog.", {"bogus": 1}, None, None)), "settings: unknown field(s) bogus"),
        (lambda: next(api.on_generate("A dog.", "fast", None, None)), "settings: expected a JSON object"),
        # Strict at the door: nothing is rounded or read as something else on its way in.
        (lambda: api.on_caption(str(reference_clip), None, None, True, True), "shot: expected a number, got true/false"),
        (lambda: api.on_best_of_n(str(reference_clip), None, None, "Camera", 2.5), "n: must be a whole number, got 2.5"),
        (lambda: api.on_explore("A dog.", {}, None, None, None, 2.5), "seeds: must be a whole number, got 2.5"),
        (lambda: next(api.on_generate("A dog.", {"seed": 2.5}, None, None)), "seed: must be a whole number, got 2.5"),
        (lambda: next(api.on_generate("A dog.", {"seed": "７"}, None, None)), "seed: expected a number written with"),
        (lambda: next(api.on_generate("A dog.", {"steps": True}, None, None)), "steps: expected a number, got true/false"),
        (lambda: next(api.on_generate("A dog.", {"resolution": "１２８0x704"}, None, None)),
         "resolution: expected WIDTHxHEIGHT such as 1280x704 (digits 0-9)"),
        (lambda: next(api.on_generate("A dog.", {"preset": "huge"}, None, None)), "preset: unknown model preset"),
        (lambda: next(api.on_generate("A dog.", {"preset": ["ti2v-5b"]}, None, None)),
         "preset: expected text, got a list"),
        (lambda: next(api.on_generate("A dog.", {"negative_prompt": 3}, None, None)),
         "negative_prompt: expected text, got a number"),
        (lambda: api.on_explore("A dog.", {"preset": {"name": "ti2v-5b"}}, None, None, None, 2),
         "preset: expected text, got an object"),
        (lambda: next(api.on_render_final("some-run", {"profile": 1})), "profile: expected text, got a number"),
        (lambda: next(api.on_render_final("some-run", {"steps": 4})),
         "settings: unknown field(s) steps; the fields are finetuned, profile, step_cache"),
    ):
        with pytest.raises(InputError) as refused:
            call()
        assert expected in str(refused.value) and "/etc" not in str(refused.value)
        assert refused.value.field and refused.value.field in str(refused.value)


def test_the_example_clip_is_the_shipped_sample_and_loading_it_lists_its_shots(page):
    from studio.resources import sample_clip, samples_dir
    from studio.ui.server import serving_paths

    ref = page.reference
    clip = ref.examples.examples[0][0]
    assert Path(clip) == sample_clip() and Path(clip).is_file()
    assert str(samples_dir()) in serving_paths(Path("outputs"))  # Gradio may serve it from an installed package
    shown = ref.on_upload(Values({ref.clip: clip}))
    assert [label for label, _ in shown[ref.shot]["choices"]] == ["Shot 1: 0.00–2.50 s", "Shot 2: 2.50–4.50 s"]
