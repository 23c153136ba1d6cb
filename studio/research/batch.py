"""`python -m studio batch`: many jobs x seeds, resumable, judged, reported.

Layout of the output folder DIR:

    DIR/runs/<job id>-seed<seed>/   one finished run each (videos, run.json, judge.json)
    DIR/runs/.partial/              runs being written; cleared at the start of every batch
    DIR/captions/<job id>.json      captions of clip jobs, so a resumed batch does not recaption
    DIR/results.jsonl               one row per job x seed (scores, or the failure and its reason)
    DIR/report.html                 the report

A run counts only when its folder holds run.json: each run is written under `.partial` and moved
into `runs/` with one rename when complete, so a killed batch leaves no half-written run behind and
the next invocation does exactly the missing ones. Models load once per batch: the generator (in
this process, or one per Ray actor), the captioner (for captions and the judge) and the tokenizer.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, StudioError
from .jobs import Job, JobFailure, read_jobs

PARTIAL = ".partial"
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.html"


@dataclass
class Task:
    """One job x seed, everything resolved: what a generator (local or a Ray actor) needs."""

    name: str
    job: str
    seed: int
    prompt: str
    settings: Any  # GenerationSettings
    caption: dict[str, Any] | None = None
    mode: str | None = None
    short_prompt: str | None = None
    reference: dict[str, Any] | None = None
    line: int = 0  # of the job in the jobs file


@dataclass
class BatchResult:
    out_dir: Path
    rows: list[dict[str, Any]]
    generated: list[str] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.out_dir / REPORT_FILE

    @property
    def results(self) -> Path:
        return self.out_dir / RESULTS_FILE


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "run.json").is_file()


def clean_partial(runs_dir: Path) -> list[Path]:
    """Remove what an interrupted batch left: the staging area and any run folder without run.json."""
    removed = []
    if (runs_dir / PARTIAL).exists():
        shutil.rmtree(runs_dir / PARTIAL)
        removed.append(runs_dir / PARTIAL)
    if runs_dir.is_dir():
        for folder in runs_dir.iterdir():
            if folder.is_dir() and folder.name != PARTIAL and not is_complete(folder):
                shutil.rmtree(folder)
                removed.append(folder)
    return removed


def execute_task(generator, task: Task, runs_dir: Path, on_step=None) -> str:
    """Generate one task into `.partial` and move the finished run to `runs/<name>`."""
    final = runs_dir / task.name
    if is_complete(final):
        return task.name
    staging = runs_dir / PARTIAL / task.name
    shutil.rmtree(staging, ignore_errors=True)
    result = generator.generate(task.prompt, task.settings, caption=task.caption, out_dir=staging, mode=task.mode,
                                short_prompt=task.short_prompt, reference=task.reference, on_step=on_step)
    if final.exists():  # an incomplete leftover (no run.json): replaced by the finished run
        shutil.rmtree(final)
    os.replace(result.run_dir, final)
    shutil.rmtree(staging, ignore_errors=True)
    return task.name


class GeneratorWorker:
    """Loads the generator once and runs tasks; the body of the Ray actor (one per GPU)."""

    def __init__(self, config, preset: str, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)  # the same arithmetic as the driver: identical frames
        from ..session.models import SharedModels

        self.generator = SharedModels(config).generator(preset)

    def run(self, task: Task, runs_dir: str) -> tuple[str, str | None]:
        try:
            return execute_task(self.generator, task, Path(runs_dir)), None
        except StudioError as exc:
            return task.name, str(exc)
        except Exception as exc:  # noqa: BLE001 - one failed run never stops the batch
            return task.name, f"{type(exc).__name__}: {exc}"


def _progress(total: int, desc: str):
    from ..progress import progress_bar

    return progress_bar(desc, total, unit="run")


class Batch:
    """One invocation: read jobs, resolve prompts, generate what is missing, judge, report."""

    def __init__(self, jobs_path: str | Path, out_dir: str | Path, config, preset: str = "ti2v-5b",
                 default_seeds: list[int] | None = None, judge: bool = True, ray_address: str | None = None,
                 workers: int | None = None, log: Callable[[str], None] | None = None):
        from ..generation.presets import get_preset
        from ..session.models import SharedModels

        self.jobs_path = Path(jobs_path)
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"{self.out_dir} is a file; give a folder", "--out")
        self.config = config
        self.preset = get_preset(preset)
        self.default_seeds = default_seeds or [0]
        self.judge = judge
        self.ray_address = ray_address
        self.workers = workers
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.runs_dir = self.out_dir / "runs"
        self.captions_dir = self.out_dir / "captions"
        self.models = SharedModels(config)

    # -- shared models, loaded on first need ---------------------------------------------------------
    def tokenizer(self):
        return self.models.tokenizer(self.preset.name, required=True)

    def captioner(self):
        if not self.models.captioner_loaded():
            from ..tiny.locations import model_locations

            self.log(f"loading the captioner ({model_locations(self.config).shown('captioner')})")
        return self.models.captioner()

    # -- the steps -------------------------------------------------------------------------------------
    def run(self) -> BatchResult:
        jobs = read_jobs(self.jobs_path, self.default_seeds)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for path in clean_partial(self.runs_dir):
            self.log(f"removed the unfinished {path.name} left by an interrupted batch")
        failures = [j for j in jobs if isinstance(j, JobFailure)]
        valid = [j for j in jobs if isinstance(j, Job)]
        tasks, task_failures = self.plan(valid)
        failures += task_failures
        generated, run_failures = self.generate(tasks)
        failures += run_failures
        for failure in failures:
            self.log(f"failed: {failure.id}{f' seed {failure.seed}' if failure.seed is not None else ''} "
                     f"(line {failure.line}): {failure.reason}")
        judged = self.judge_all(valid) if self.judge else []
        rows = self.rows(jobs, failures)
        from .report import write_report
        from .stats import aggregate

        summary = aggregate(rows)
        write_results(self.out_dir / RESULTS_FILE, rows)
        write_report(self.out_dir / REPORT_FILE, rows, summary, title=self.jobs_path.name)
        return BatchResult(self.out_dir, rows, generated, judged, failures, summary)

    def plan(self, jobs: list[Job]) -> tuple[list[Task], list[JobFailure]]:
        """The missing runs as tasks; a job that cannot run is a failure with its reason."""
        from ..generation.comparison import resolve_mode
        from ..generation.settings import GenerationSettings

        from ..generation.speed_adapter import describe_speed_adapter
        from ..tiny.locations import model_locations

        has_finetune = bool(model_locations(self.config).finetuned(self.preset.name, build=False).strip())
        adapter = describe_speed_adapter(self.config.speed_adapter)  # its sampling fills what a job leaves out
        tasks, failures = [], []
        for job in jobs:
            missing = [s for s in job.seeds if not is_complete(self.runs_dir / job.run_name(s))]
            if not missing:
                continue
            try:
                mode = resolve_mode(job.mode, has_finetune, job.short_prompt)
                settings = {seed: GenerationSettings.from_user(self.preset, seed=seed, **job.settings,
                                                               adapter_defaults=adapter.defaults() if adapter else None)
                            for seed in missing}
                prompt, caption, reference = self.prompt_for(job)
            except StudioError as exc:
                failures.append(JobFailure(job.id, job.line, str(exc)))
                continue
            for seed in missing:
                tasks.append(Task(job.run_name(seed), job.id, seed, prompt, settings[seed], caption, mode,
                                  job.short_prompt, reference, job.line))
        return tasks, failures

    def prompt_for(self, job: Job) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
        """(prompt, caption as a dict or None, reference clip or None) of a job."""
        from ..caption.structured import StructuredCaption

        if job.source == "prompt":
            return job.value, None, None
        reference = None
        if job.source == "caption":
            caption = StructuredCaption.load(job.value, self.config.max_aspect_chars)
        else:
            cached = self.captions_dir / f"{job.id}.json"
            if cached.is_file():
                caption = StructuredCaption.load(cached, self.config.max_aspect_chars)
            else:
                from ..captioner import caption_clip, load_clip
                from .judge import write_json_atomic

                self.log(f"captioning {Path(job.value).name} for {job.id}")
                clip = job.reference
                with clip.numbered_from_one():  # sampled first: a shot past the last costs no model load
                    sampled = load_clip(self.config, clip.path, clip.start, clip.end, clip.shot_index)
                caption = caption_clip(self.config, clip.path, captioner=self.captioner(), clip=sampled,
                                       on_warning=lambda m: self.log(f"warning: {m}"))
                _quiet_ffmpeg()  # shot detection hands FFmpeg's logging to stderr; the encoder would flood it
                self.captions_dir.mkdir(parents=True, exist_ok=True)
                write_json_atomic(cached, caption.to_dict())
            reference = {"clip": job.value, "start": caption.provenance.start, "end": caption.provenance.end,
                         "shot": job.reference.shot}
        from ..compose import ComposeOptions, compose

        prompt = compose(caption, ComposeOptions(max_words=self.config.prompt_words), tokenizer=self.tokenizer()).prompt
        if not prompt.strip():
            raise InputError(f"{job.value} has no caption text to compose", job.source)
        return prompt, caption.to_dict(), reference

    def generate(self, tasks: list[Task]) -> tuple[list[str], list[JobFailure]]:
        if not tasks:
            self.log("every run is already complete; nothing to generate")
            return [], []
        self.log(f"{len(tasks)} run(s) to generate")
        if self.ray_address is not None:
            outcomes = self._generate_on_ray(tasks)
        else:
            outcomes = self._generate_here(tasks)
        staging = self.runs_dir / PARTIAL
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
        done, failures = [], []
        by_name = {t.name: t for t in tasks}
        for name, error in outcomes:
            if error is None:
                done.append(name)
            else:
                task = by_name[name]
                failures.append(JobFailure(task.job, task.line, error, task.seed))
        return done, failures

    def _generate_here(self, tasks: list[Task]) -> list[tuple[str, str | None]]:
        worker = GeneratorWorker(self.config, self.preset.name)
        outcomes = []
        with _progress(len(tasks), "generating") as bar:
            for task in tasks:
                bar.set_postfix_str(task.name, refresh=False)
                outcomes.append(worker.run(task, str(self.runs_dir)))
                bar.update(1)
        return outcomes

    def _generate_on_ray(self, tasks: list[Task]) -> list[tuple[str, str | None]]:
        import ray
        from ray.util import ActorPool

        from ..ray_cluster import init_ray

        started_here = init_ray(self.ray_address, num_cpus=max(2, self.workers or 1))
        try:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            count = self.workers or gpus or 1
            import torch

            actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1)(GeneratorWorker)
            self.log(f"Ray: {count} generator actor(s) on {'GPUs' if gpus else 'CPUs'} "
                     f"({ray.get_runtime_context().gcs_address})")
            actors = [actor.remote(self.config, self.preset.name, torch.get_num_threads()) for _ in range(count)]
            pool = ActorPool(actors)
            outcomes = []
            with _progress(len(tasks), f"generating on {count} Ray actor(s)") as bar:
                for outcome in pool.map_unordered(lambda a, t: a.run.remote(t, str(self.runs_dir)), tasks):
                    outcomes.append(tuple(outcome))
                    bar.update(1)
            for handle in actors:
                ray.kill(handle)
            return outcomes
        finally:
            if started_here:
                ray.shutdown()

    def judge_all(self, jobs: list[Job]) -> list[str]:
        from .judge import judge_run, load_judgement

        pending = [self.runs_dir / job.run_name(seed) for job in jobs for seed in job.seeds]
        pending = [p for p in pending if is_complete(p) and load_judgement(p) is None]
        if not pending:
            return []
        judged = []
        with _progress(len(pending), "judging") as bar:
            for run_dir in pending:
                try:
                    judge_run(run_dir, self.captioner())
                    judged.append(run_dir.name)
                except StudioError as exc:
                    self.log(f"could not judge {run_dir.name}: {exc}")
                bar.update(1)
        return judged

    def rows(self, jobs: list[Job | JobFailure], failures: list[JobFailure]) -> list[dict[str, Any]]:
        from ..generation.run_records import load_run
        from .judge import load_judgement
        from .stats import run_row

        rows = []
        for job in jobs:
            if isinstance(job, JobFailure):
                rows.append(job.to_row())
                continue
            for seed in job.seeds:
                run_dir = self.runs_dir / job.run_name(seed)
                if is_complete(run_dir):
                    try:
                        record = load_run(run_dir)["record"]
                    except StudioError as exc:
                        rows.append(JobFailure(job.id, job.line, str(exc), seed).to_row())
                        continue
                    row = run_row(f"runs/{run_dir.name}", record, load_judgement(run_dir), job.id, seed)
                    row["line"] = job.line
                    rows.append(row)
                else:
                    reason = next((f.reason for f in failures if f.id == job.id and f.seed in (seed, None)),
                                  "not generated")
                    rows.append(JobFailure(job.id, job.line, reason, seed).to_row())
        return rows


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    import json

    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    os.replace(temporary, path)


def _quiet_ffmpeg() -> None:
    """PyAV's default: FFmpeg's messages dropped in C. (A Python log level would route them through a
    Python callback, which deadlocks against threaded decoding holding the GIL.)"""
    import av.logging

    av.logging.set_level(None)
