"""`python -m studio batch` and `judge` on the tiny checkpoints: runs, resume, Ray, judge, report."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

from studio.captioner.model import Captioner
from studio.cli import main
from studio.config import StudioConfig
from studio.errors import InputError
from studio.generation import loading
from studio.research.batch import PARTIAL, Batch
from studio.research.jobs import parse_job, read_jobs
from studio.research.negatives import hard_negative, is_meaningful, swap_tables
from studio.research.report import render_report
from studio.research.stats import aggregate, paired_bootstrap

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"frames": 5, "height": 64, "width": 64, "steps": 1}
CAPTION = {"Motion": "A man walks to the left across a wet street.",
           "Spatial": 'A close-up of a sign reading "<Exit & Go>", framed from the chest up.',
           "Camera": "The camera dollies in slowly, then pans right at eye level."}


class LoadCounter:
    """Counts real model loads (the wrapped loaders still run)."""

    def __init__(self, monkeypatch):
        self.captioner = self.generator = 0
        load_captioner, load_generator = Captioner.from_pretrained.__func__, loading.load_generator

        def captioner(cls, *args, **kwargs):
            self.captioner += 1
            return load_captioner(cls, *args, **kwargs)

        def generator(*args, **kwargs):
            self.generator += 1
            return load_generator(*args, **kwargs)

        monkeypatch.setattr(Captioner, "from_pretrained", classmethod(captioner))
        monkeypatch.setattr(loading, "load_generator", generator)


def unload_all():
    from studio.session.models import unload_captioner
    from studio.session.models import unload_generator

    unload_captioner()
    unload_generator()


def write_jobs(folder: Path, reference_clip: Path, extra: list[str] = ()) -> Path:
    (folder / "shot.json").write_text(json.dumps(CAPTION))
    lines = [json.dumps({"clip": str(reference_clip), "shot": 1, "seeds": [1, 2], "settings": SMALL}),
             json.dumps({"caption": "shot.json", "seeds": [1, 2], "settings": SMALL}),
             json.dumps({"prompt": "a kite climbs over a hill as the camera tilts up", "seeds": [1, 2],
                         "mode": "prompt", "short_prompt": "a kite", "settings": SMALL}),
             *extra]
    path = folder / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", autouse=True)
def shared_models_unloaded_afterwards():
    """Batch and judge use the process-wide captioner and generator; later test modules expect none."""
    yield
    unload_all()


BAD_JOBS = ['{"prompt": "a cat", "settings": ', json.dumps({"prompt": "a dog", "mode": "sideways"}),
            json.dumps({"clip": "no-such-clip.mp4"})]
# Refused at parse with three seeds: three job x seed runs that did not happen (line 8).
THREE_SEED_FAILURE = json.dumps({"prompt": "a fox", "seeds": [7, 8, 9], "colour": "red"})


@pytest.fixture(scope="module")
def past_the_last_shot(reference_clip):
    """A clip job naming shot 3 of the two-shot clip: refused when captioned, in the numbering typed."""
    return json.dumps({"clip": str(reference_clip), "shot": 3, "seeds": [1]})


@pytest.fixture(scope="module")
def tiny_config(ui_tiny_dir):
    return StudioConfig(tiny=True, tiny_dir=ui_tiny_dir, device="cpu")


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory, reference_clip, tiny_config, past_the_last_shot):
    folder = tmp_path_factory.mktemp("batch")
    jobs = write_jobs(folder, reference_clip, [*BAD_JOBS, past_the_last_shot, THREE_SEED_FAILURE])
    unload_all()
    with pytest.MonkeyPatch.context() as patch:
        loads = LoadCounter(patch)
        result = Batch(jobs, folder / "out", tiny_config, log=lambda message: None).run()
    return folder, jobs, result, loads


def test_batch_makes_one_run_per_job_and_seed_and_records_failures(first_batch):
    folder, _, _, loads = first_batch
    runs = sorted(p.name for p in (folder / "out" / "runs").iterdir())
    assert len(runs) == 6 and all((folder / "out" / "runs" / r / "run.json").is_file() for r in runs)
    assert loads.generator == 1 and loads.captioner == 1  # models load once for the whole batch
    rows = [json.loads(line) for line in (folder / "out" / "results.jsonl").read_text().splitlines()]
    ok = [r for r in rows if r["status"] == "ok"]
    failed = {r["line"]: r["reason"] for r in rows if r["status"] == "failed"}
    assert len(ok) == 6 and sorted(r["seed"] for r in ok) == [1, 1, 1, 2, 2, 2]
    assert "job: not valid JSON" in failed[4]
    assert "mode: unknown mode 'sideways'" in failed[5]
    assert "clip: " in failed[6] and "no-such-clip.mp4 does not exist" in failed[6]
    assert failed[7] == "shot: there is no shot 3; the clip has 2 shot(s), numbered 1 to 2"
    modes = {r["job"].split("-")[0]: r["mode"] for r in ok}
    assert modes == {"two": "finetuned", "shot": "finetuned", "a": "prompt"}


def test_judge_scores_every_aspect_of_both_videos_with_a_contrast_row(first_batch):
    folder, _, result, _ = first_batch
    assert len(result.judged) == 6
    for run in (folder / "out" / "runs").iterdir():
        judgement = json.loads((run / "judge.json").read_text())
        keys = [s["key"] for s in judgement["sides"]]
        assert len(keys) == 2 and judgement["aspects"]
        for row in judgement["aspects"].values():
            assert set(row["scores"]) == set(keys) and all(0.0 <= v <= 1.0 for v in row["scores"].values())
            assert "negative" in row and "hits" in row
            if row["negative"]:
                assert set(row["hits"]) == set(keys) and all(0.0 <= v <= 1.0 for v in row["negative_scores"].values())
        if run.name.startswith("shot-"):  # the caption file: every aspect has a CHAI term to swap
            assert judgement["caption_source"] == "caption" and set(judgement["aspects"]) == set(CAPTION)
            camera = judgement["aspects"]["Camera"]
            assert camera["negative"] == "The camera dollies out slowly, then pans left at eye level."
            assert camera["swaps"] == [{"from": "dollies in", "to": "dollies out", "group": "translation"},
                                       {"from": "pans right", "to": "pans left", "group": "rotation"}]
            # the shot size swaps for its opposite; "chest up" is no camera direction and stays
            assert judgement["aspects"]["Spatial"]["negative"] == \
                'A wide shot of a sign reading "<Exit & Go>", framed from the chest up.'
        if run.name.startswith("two-shots-"):  # the clip: its own score is the ceiling
            assert all(0.0 <= row["reference"] <= 1.0 for row in judgement["aspects"].values())
            record = json.loads((run / "run.json").read_text())
            assert len(record["reference"]["sha256"]) == 64
            # "shot": 1 is the first shot (the red second of the clip), as the page counts
            assert record["reference"]["shot"] == 1 and record["reference"]["start"] == 0.0
            assert record["reference"]["end"] == pytest.approx(1.0, abs=0.05)


def test_second_run_creates_nothing_new_and_loads_no_model(first_batch, tiny_config, monkeypatch):
    folder, jobs, _, _ = first_batch
    runs = folder / "out" / "runs"
    before = {p.name: (p / "run.json").stat().st_mtime_ns for p in runs.iterdir()}
    unload_all()
    loads = LoadCounter(monkeypatch)
    again = Batch(jobs, folder / "out", tiny_config, log=lambda message: None).run()
    assert again.generated == [] and again.judged == []
    assert {p.name: (p / "run.json").stat().st_mtime_ns for p in runs.iterdir()} == before
    assert loads.generator == 0 and loads.captioner == 0


def test_report_opens_in_chromium_with_two_videos_per_run_and_the_aggregate(first_batch):
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
    executable = chromium if Path(chromium).is_file() else shutil.which("chromium")
    assert executable, "Chromium is needed for this test: apt-get install -y chromium"

    folder, _, result, _ = first_batch
    report = folder / "out" / "report.html"
    text = report.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.goto(report.as_uri())
        runs = page.locator("section.run")
        assert runs.count() == 6
        for i in range(6):
            assert runs.nth(i).locator("video").count() == 2
        sources = page.eval_on_selector_all("video", "vs => vs.map(v => v.currentSrc || v.src)")
        assert all(s.startswith(report.parent.as_uri() + "/runs/") and s.endswith(".mp4") for s in sources)
        assert all((report.parent / s[len(report.parent.as_uri()) + 1:]).is_file() for s in sources)
        tables = page.locator("table.aggregate")
        assert tables.count() == 2  # finetuned mode and prompt mode
        header = tables.first.locator("th").all_inner_texts()
        assert header[:5] == ["aspect", "left", "right", "mean diff", "95% CI"]
        assert tables.first.locator("tbody tr").count() == 5
        assert page.locator("svg.chart").count() == 2
        assert "no-such-clip.mp4 does not exist" in page.inner_text("body")
        # on a phone the page is as wide as the screen; only the boxes around tables scroll sideways
        phone = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
        phone.goto(report.as_uri())
        assert phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]") == [375, 375]
        assert phone.eval_on_selector_all("table", "ts => ts.length > 0 && ts.every("
                                                   "t => t.parentElement.classList.contains('scroll'))")
        box = phone.locator("section.run .scroll").first
        assert box.evaluate("b => b.scrollWidth > b.clientWidth && getComputedStyle(b).overflowX === 'auto'")
        browser.close()
    assert result.summary["finetuned"]["runs"] == 4 and result.summary["prompt"]["runs"] == 2


def _report(first_batch) -> tuple[Path, str]:
    out = first_batch[0] / "out"
    return out, (out / "report.html").read_text()


def _run_section(text: str, prefix: str) -> str:
    start = text.index(f'<section class="run" id="runs/{prefix}')
    return text[start:text.index("</section>", start)]


def _cells(html: str) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<t[dh]>(.*?)</t[dh]>", html)]


def test_report_header_records_models_settings_and_warns_of_tiny_models(first_batch):
    import studio

    out, text = _report(first_batch)
    record = json.loads(next((out / "runs").glob("shot-*/run.json")).read_text())
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    meta = re.search(r'<table class="meta"><tbody>(.*?)</tbody>', text).group(1)
    header = dict(zip(*[iter(_cells(meta))] * 2))
    assert record["models"]["baseline"]["location"] in header["Baseline"]
    assert f"sha256 {record['hashes']['baseline']}" in header["Baseline"]
    assert record["models"]["finetuned"]["location"] in header["Finetuned"]
    assert f"sha256 {record['hashes']['finetuned']}" in header["Finetuned"]
    assert (header["Profile"], header["Steps"], header["Size"], header["Frames"]) == ("final", "1", "64x64",
                                                                                      "5 at 24 fps")
    assert header["Seeds"] == "0, 1, 2, 7, 8, 9"  # the failed lines' seeds too (0: the batch default)
    assert header["Date"].startswith(f"report written {datetime.now(UTC):%Y-%m-%d}")
    assert header["Studio version"].startswith(f"{studio.__version__} (commit ")
    assert text.count('class="warning"') == 1 and "Tiny test models: these results are noise" in text
    assert json.loads((out / "report.json").read_text())["header"]["tiny"] is True
    result = first_batch[2]
    made_with_real_models = [{**r, "provenance": {**r["provenance"], "tiny": False}} if r.get("provenance") else r
                             for r in result.rows]
    assert 'class="warning"' not in render_report(made_with_real_models, result.summary, out, out)


def test_report_shows_each_hard_negative_whole_with_the_swapped_words_marked(first_batch):
    _, text = _report(first_batch)
    section = _run_section(text, "shot-")
    assert ('<td class="negative">The camera <mark>dollies out</mark> slowly, then <mark>pans left</mark> at eye '
            "level.</td>") in section
    assert ('<td class="negative">A <mark>wide shot</mark> of a sign reading &quot;&lt;Exit &amp; Go&gt;&quot;, '
            "framed from the chest up.</td>") in section
    assert "<Exit" not in text and "close-down" not in text and "chest down" not in text


def test_negatives_made_under_word_level_swaps_are_shown_but_not_counted(first_batch, tmp_path, tiny_config):
    import shutil

    folder, jobs, result, _ = first_batch
    copy = tmp_path / "out"
    shutil.copytree(folder / "out", copy)
    judge_file = next((copy / "runs").glob("shot-*-seed1/judge.json"))
    judgement = json.loads(judge_file.read_text())
    spatial = judgement["aspects"]["Spatial"]
    spatial["negative"] = re.sub(r"\bup\b", "down", spatial["caption"])  # what swapping lone words made
    assert spatial["negative"] == 'A close-down of a sign reading "<Exit & Go>", framed from the chest down.'
    judge_file.write_text(json.dumps(judgement))
    again = Batch(jobs, copy, tiny_config, log=lambda message: None).run()
    assert again.generated == [] and again.judged == []
    before, after = result.summary["finetuned"], again.summary["finetuned"]
    assert before["contrast"]["not_counted"] == 0 and after["contrast"]["not_counted"] == 1
    assert after["contrast"]["n"] == before["contrast"]["n"] - 1
    assert after["aspects"]["Spatial"]["contrast_n"] == before["aspects"]["Spatial"]["contrast_n"] - 1 == 1
    section = _run_section((copy / "report.html").read_text(), judge_file.parent.name)
    assert ("A close-<mark>down</mark> of a sign reading &quot;&lt;Exit &amp; Go&gt;&quot;, framed from the chest "
            "<mark>down</mark>.<br><span class=\"muted\">not a swap of CHAI vocabulary terms") in section
    assert json.loads((copy / "report.json").read_text())["contrast"]["finetuned"]["not_counted"] == 1


def test_failed_jobs_count_as_jobs_and_once_per_seed(first_batch):
    out, text = _report(first_batch)
    counts = json.loads((out / "report.json").read_text())["counts"]
    # 3 jobs ran 6 runs; 5 lines failed: four with one seed each, line 8 with three
    assert counts == {"jobs": 8, "jobs_complete": 3, "jobs_failed": 5, "runs": 13, "runs_complete": 6,
                      "runs_failed": 7}
    assert "8 job(s): 3 complete, 5 failed. 13 job × seed run(s): 6 complete, 7 failed." in text
    failures = re.search(r'<table class="failures">(.*?)</table>', text, re.S).group(1)
    assert "<td>line8</td><td>8</td><td>7, 8, 9</td><td>job: unknown key(s) colour" in failures


def _percent(value):
    return "n/a" if value is None else f"{value:.0%}"


def test_report_csv_and_json_hold_the_numbers_of_the_html_table(first_batch):
    out, text = _report(first_batch)
    with open(out / "report.csv", newline="") as handle:
        from_csv = list(csv.DictReader(handle))
    table = json.loads((out / "report.json").read_text())["table"]
    assert len(from_csv) == len(table) == 10  # five aspects in each of the two modes
    for written, row in zip(from_csv, table):
        assert written["mode"] == row["mode"] and written["aspect"] == row["aspect"]
        for key, value in row.items():
            if isinstance(value, (int, float)):
                assert float(written[key]) == pytest.approx(value, abs=1e-9), key
            else:
                assert written[key] == ("" if value is None else value), key
    for mode, figures in first_batch[2].summary.items():
        html = re.search(rf'<table class="aggregate" data-mode="{mode}">.*?<tbody>(.*?)</tbody>', text,
                         re.S).group(1)
        shown = [_cells(row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]
        expected = [[r["aspect"], f"{r['mean_left']:.3f}", f"{r['mean_right']:.3f}", f"{r['mean_diff']:+.3f}",
                     f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]", f"{r['wins']} / {r['ties']} / {r['losses']}",
                     str(r["n"]), str(r["contrast_n"]), _percent(r["contrast_left"]), _percent(r["contrast_right"])]
                    for r in table if r["mode"] == mode]
        assert shown == expected and len(shown) == len(figures["aspects"])


def _hashes(out: Path) -> dict[str, list[str]]:
    return {run.name: [s["frames_sha256"] for s in json.loads((run / "run.json").read_text())["comparison"]["sides"]]
            for run in sorted((out / "runs").iterdir())}


def _prompt_jobs(folder: Path, count: int = 3, seeds: tuple[int, ...] = (3, 4)) -> Path:
    jobs = folder / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"prompt": f"shot {i}: a boat drifts as the camera pans left",
                                        "seeds": list(seeds), "settings": SMALL}) + "\n" for i in range(count)))
    return jobs


def test_killed_batch_resumes_without_duplicates_or_half_written_runs(tmp_path, tiny_config, ui_tiny_dir):
    jobs = _prompt_jobs(tmp_path)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAI_STUDIO_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen([sys.executable, "-m", "studio", "batch", str(jobs), "--out", str(out), "--tiny",
                                "--tiny-dir", str(ui_tiny_dir), "--device", "cpu", "--no-judge"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not list(out.glob("runs/*/run.json")):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finished = {p.parent.name for p in out.glob("runs/*/run.json")}
    assert 1 <= len(finished) < 6
    resumed = Batch(jobs, out, tiny_config, judge=False, log=lambda message: None).run()
    assert len(resumed.generated) == 6 - len(finished) and not resumed.failures
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 6 and len(set(runs)) == 6 and PARTIAL not in runs
    assert all((out / "runs" / r / "run.json").is_file() and (out / "runs" / r / "side_by_side.mp4").is_file()
               for r in runs)


def test_ray_with_two_workers_gives_the_frames_of_the_in_process_batch(tmp_path, tiny_config):
    import ray
    jobs = _prompt_jobs(tmp_path, count=2, seeds=(5,))
    local = Batch(jobs, tmp_path / "local", tiny_config, judge=False, log=lambda message: None).run()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        spread = Batch(jobs, tmp_path / "ray", tiny_config, judge=False, ray_address="local", workers=2,
                       log=lambda message: None).run()
    finally:
        ray.shutdown()
    assert len(local.generated) == len(spread.generated) == 2 and not spread.failures
    assert _hashes(tmp_path / "ray") == _hashes(tmp_path / "local")


def test_judge_command_loads_the_captioner_once_and_refuses_unfinished_runs(first_batch, tiny_config, tmp_path,
                                                                            monkeypatch, capsys, ui_tiny_dir):
    folder = first_batch[0]
    runs = sorted(str(p) for p in (folder / "out" / "runs").iterdir())[::2]
    unload_all()
    loads = LoadCounter(monkeypatch)
    assert main(["judge", *runs, "--tiny", "--tiny-dir", str(ui_tiny_dir), "--device", "cpu"]) == 0
    assert loads.captioner == 1 and capsys.readouterr().out.split() == [f"{r}/judge.json" for r in runs]
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert main(["judge", runs[0], str(empty), "--tiny", "--tiny-dir", str(ui_tiny_dir), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == f"error: run: {empty} has no run.json; it is not a finished run"
    assert loads.captioner == 1  # refused before loading anything


def test_batch_command_errors_are_one_line(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: jobs: {tmp_path / 'missing.jsonl'} does not exist"
    (tmp_path / "empty.jsonl").write_text("# nothing\n\n")
    assert main(["batch", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "out")]) == 2
    assert "holds no jobs" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "out"), "--workers", "2"]) == 2
    assert "--workers: only applies with --ray" in capsys.readouterr().err


def test_job_lines_are_checked_without_models(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(CAPTION))
    lines = [{"prompt": "a"}, {"prompt": "a", "caption": "c.json"}, {"caption": "c.json", "seeds": [1, -1]},
             {"prompt": "b", "settings": {"preset": "t2v-a14b"}}, {"prompt": "c", "shot": 1},
             {"prompt": "d", "colour": "red"}, ["not", "an", "object"], {"prompt": "a"},
             {"clip": "c.mp4", "shot": 0}, {"clip": "c.mp4", "shot": 2}, {"clip": "c.mp4", "shot": 1, "end": 2}]
    (tmp_path / "c.mp4").write_bytes(b"only its existence is checked before captioning")
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    jobs = read_jobs(tmp_path / "jobs.jsonl", [0])
    assert jobs[0].seeds == [0] and jobs[0].id.startswith("a-")
    reasons = [getattr(j, "reason", None) for j in jobs]
    assert reasons[0] is None
    assert "needs exactly one of clip, caption or prompt" in reasons[1]
    assert "seeds: each seed must be between 0" in reasons[2]
    assert "settings: unknown setting(s) preset" in reasons[3]
    assert "apply to clip jobs only" in reasons[4]
    assert "unknown key(s) colour" in reasons[5]
    assert "must be a JSON object" in reasons[6]
    assert "repeats the job" in reasons[7]
    # shots count from 1 as on the page; a job written for 0-based shots is refused, never shifted
    assert reasons[8].startswith("shot: shots are numbered from 1")
    assert reasons[9] is None and jobs[9].reference.shot == 2 and jobs[9].reference.shot_index == 1
    assert "shot: give either a shot or a start/end range, not both" in reasons[10]


def test_a_job_takes_a_speed_profile_and_step_cache_checked_at_parse(tmp_path):
    lines = [{"prompt": "a", "profile": "draft"}, {"prompt": "b", "settings": {"profile": "preview", "steps": 3}},
             {"prompt": "c", "profile": "turbo"}, {"prompt": "d", "settings": {"step_cache": "magcache:speed=2"}},
             {"prompt": "e", "settings": {"step_cache": "taylorseer:interval=4"}}]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    jobs = read_jobs(tmp_path / "jobs.jsonl", [0])
    assert jobs[0].settings == {"profile": "draft"} and jobs[1].settings == {"profile": "preview", "steps": 3}
    assert jobs[2].reason.startswith("profile: unknown profile 'turbo'")
    assert "step_cache: magcache takes threshold=, retention=, max_skip=; got 'speed=2'" in jobs[3].reason
    assert jobs[4].settings == {"step_cache": "taylorseer:interval=4"}
    from studio.generation.presets import get_preset
    from studio.generation.settings import GenerationSettings

    draft = GenerationSettings.from_user(get_preset("ti2v-5b"), seed=0, **jobs[0].settings)
    assert (draft.profile, draft.steps, draft.width) == ("draft", 10, 864)


def test_hard_negatives_swap_directions_then_movement_types():
    assert hard_negative("The camera pans left, then tilts up.") == "The camera pans right, then tilts down."
    assert hard_negative("It zooms in on her face.") == "It zooms out on her face."
    assert hard_negative("A slow dolly toward the door.") == "A slow zoom toward the door".replace(
        "zoom toward", "dolly away from") + "."
    assert hard_negative("The camera trucks alongside the runner.") == "The camera pans alongside the runner."
    assert hard_negative("The camera pedestals with the lift.") == "The camera tilts with the lift."
    assert hard_negative("She sits in a chair in the kitchen.") is None  # "in" is only a direction after a move


def test_hard_negatives_swap_whole_vocabulary_terms_never_lone_words():
    # the examples: swapping the lone word "up" made "close-down" and "chest down"
    assert hard_negative("A close-up of her hands.") == "A wide shot of her hands."
    assert hard_negative("She is framed from the chest up.") is None
    assert hard_negative("A close-up shot, framed from the chest up.") == "A wide shot, framed from the chest up."
    assert not is_meaningful("A close-up, framed from the chest up.", "A close-down, framed from the chest down.")
    assert hard_negative("A low angle shot as the camera dollies in.") == "A high angle shot as the camera dollies out."
    assert hard_negative("An extreme close-up; the shot goes from wide to tight.") == \
        "An extreme wide shot; the shot goes from tight to wide."
    assert hard_negative("He left the room and looked up at the top of the stairs.") is None
    assert hard_negative("A medium full shot of two men.") is None  # "full shot" inside a longer term stays
    assert hard_negative("The camera rolls counter-clockwise.") == "The camera rolls clockwise."
    caption = "The camera pans left past the door."
    assert is_meaningful(caption, hard_negative(caption)) and not is_meaningful(caption, None)
    from studio.caption.vocabulary import load_vocabulary

    names = {g.id: {p.name.lower().replace("-", " ") for p in g.primitives} for g in load_vocabulary().groups}
    directions, _ = swap_tables()
    term_swaps = [(k, v) for k, v in directions.items() if v and v[1] in names and v[1] not in
                  ("translation", "rotation", "zoom", "arc")]
    assert len(term_swaps) > 40
    for phrase, (replacement, group) in term_swaps:  # a term of one group for another term of the same group
        assert phrase.removesuffix(" shot") in names[group] or phrase in names[group], phrase
        assert replacement.replace("-", " ") in names[group] and replacement.replace("-", " ") != phrase, phrase


def test_bootstrap_and_aggregate_are_reproducible():
    diffs = [0.1, 0.2, -0.05, 0.15, 0.3, 0.0]
    low, high = paired_bootstrap(diffs)
    assert (low, high) == paired_bootstrap(diffs) and low < sum(diffs) / len(diffs) < high
    sides = [{"key": "finetuned", "label": "L", "video": "f.mp4"}, {"key": "baseline", "label": "R", "video": "b.mp4"}]
    rows = [{"status": "ok", "judged": True, "mode": "finetuned", "sides": sides,
             "scores": {"Camera": {"left": 0.5 + d, "right": 0.5, "diff": d}},
             "contrast": {"Camera": {"negative": "x", "left": d > 0, "right": False}}} for d in diffs]
    figures = aggregate(rows + [{"status": "failed"}])["finetuned"]
    camera = figures["aspects"]["Camera"]
    assert (camera["wins"], camera["ties"], camera["losses"]) == (4, 1, 1)
    assert camera["contrast_left"] == round(4 / 6, 4) and figures["contrast"]["right"] == 0.0


@pytest.mark.parametrize("line, expected", [
    ({"clip": "c.mp4", "shot": True}, "shot: must be a whole number, got true/false"),
    ({"clip": "c.mp4", "start": "1"}, "start: must be a number of seconds, got text"),
    ({"prompt": "a", "seeds": [2.5]}, "seeds: must be a whole number, got 2.5"),
    ({"prompt": "a", "seeds": ["3"]}, "seeds: must be a list of 1 to 64 whole-number seeds, got text"),
    ({"prompt": "a", "seeds": []}, "seeds: must be a list of 1 to 64 seeds, got 0 seed(s)"),
    ({"prompt": "a", "settings": {"steps": True}}, "steps: expected a number, got true/false"),
    ({"prompt": "a", "settings": {"profile": ["draft"]}}, "profile: expected text, got a list"),
    ({"prompt": "a", "settings": {"preset": "x", "seed": 1}}, "settings: unknown setting(s) preset, seed; known:"),
    ({"prompt": 5}, "prompt: must be non-empty text, got a number"),
    ({"prompt": "a", "mode": 3}, "mode: must be text, got a number"),
    ({"prompt": "a", "id": 7}, "id: must be 1-48 letters"),
])
def test_a_job_line_is_held_to_its_types(tmp_path, line, expected):
    (tmp_path / "c.mp4").write_bytes(b"only its existence is checked before captioning")
    with pytest.raises(InputError) as refused:
        parse_job(1, json.dumps(line), tmp_path, [0])
    assert str(refused.value).startswith(expected) and refused.value.field in str(refused.value)
