"""Batch jobs files: one JSON object per line, checked without loading any model.

A job names one source: `clip` (a reference video, captioned; optional `shot`, numbered from 1 as
`python -m studio shots`, the page and the API number them, or `start`/`end` in seconds),
`caption` (a caption file) or `prompt` (text). Optional: `seeds` (a list), `settings` (overrides
named as `generate`'s flags), `mode` and `short_prompt`. Relative paths are relative to the jobs
file. A line that cannot be used becomes a `JobFailure` with the reason; the rest still run.

A job's id is derived from its content (a readable slug plus a hash), so re-running an unchanged
jobs file finds the runs it already made, and editing a job gives it new runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import schemas, values
from ..errors import InputError
from ..generation.profiles import get_profile
from ..generation.step_caches import StepCache
from ..session.requests import ClipRange

SOURCES = ("clip", "caption", "prompt")
SETTING_KEYS = schemas.field_names(schemas.JobSettings)
KNOWN_KEYS = set(schemas.field_names(schemas.JobLine))
MAX_SEEDS = 64


@dataclass
class Job:
    id: str
    line: int
    source: str  # one of SOURCES
    value: str  # the clip or caption path (resolved) or the prompt text
    seeds: list[int]
    settings: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    short_prompt: str | None = None
    reference: ClipRange | None = None  # a clip job's clip and the part of it to caption

    def run_name(self, seed: int) -> str:
        return f"{self.id}-seed{seed}"


@dataclass
class JobFailure:
    id: str
    line: int
    reason: str
    seed: int | None = None
    seeds: list[Any] | None = None  # a line that could not be read: the seeds it would have run

    def to_row(self) -> dict[str, Any]:
        row = {"run": None, "job": self.id, "line": self.line, "seed": self.seed, "status": "failed",
               "reason": self.reason}
        if self.seed is None and self.seeds:
            row["seeds"] = list(self.seeds)
        return row


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:4])[:32] or "job"


def _unknown_keys(where: str, names: list[str]) -> InputError:
    if where == "settings":
        return InputError(f"unknown setting(s) {', '.join(names)}; known: {', '.join(SETTING_KEYS)}", "settings",
                          "unknown-key")
    return InputError(f"unknown key(s) {', '.join(names)}; known: {', '.join(sorted(KNOWN_KEYS))}", "job",
                      "unknown-key")


# A job's own sentence for a value of the wrong type (pydantic says which key and what came).
WRONG_TYPE = {**{source: "must be non-empty text" for source in SOURCES},
              "seeds": f"must be a list of 1 to {MAX_SEEDS} whole-number seeds",
              "settings": "must be an object of generate's settings", "shot": "must be a whole number",
              "start": "must be a number of seconds", "end": "must be a number of seconds",
              "mode": "must be text", "short_prompt": "must be text", "profile": "must be text",
              "id": "must be 1-48 letters, digits, dots, dashes or underscores"}


def parse_job(line_number: int, text: str, base: Path, default_seeds: list[int]) -> Job:
    """One job line -> Job; anything wrong raises InputError with the reason."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})", "job") from exc
    if not isinstance(data, dict):
        raise InputError("must be a JSON object such as {\"prompt\": \"...\"}", "job", "not-an-object")
    line = schemas.read(schemas.JobLine, data, "job", unknown=_unknown_keys, wrong=WRONG_TYPE)
    given = [s for s in SOURCES if getattr(line, s) not in (None, "")]
    if len(given) != 1:
        raise InputError("needs exactly one of clip, caption or prompt", "job")
    source = given[0]
    value = getattr(line, source)
    if not value.strip():
        raise InputError("must be non-empty text", source)
    if source in ("clip", "caption"):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise InputError(f"{path} does not exist", source)
        value = str(path)
    seeds = default_seeds if line.seeds is None else line.seeds
    if not seeds or len(seeds) > MAX_SEEDS:
        raise InputError(f"must be a list of 1 to {MAX_SEEDS} seeds, got {len(seeds)} seed(s)", "seeds")
    seeds = [values.whole(s, "seeds") for s in seeds]
    if any(not 0 <= s < 2**32 for s in seeds):
        raise InputError("each seed must be between 0 and 2**32-1 (a batch needs fixed seeds to resume)", "seeds",
                         "out-of-range")
    settings = line.settings.given() if line.settings else {}
    if line.profile is not None:  # a job's speed profile: the same as settings.profile
        settings = {**settings, "profile": line.profile}
    get_profile(settings.get("profile"))  # an unknown profile or step cache fails at parse, before any model
    StepCache.parse(settings.get("step_cache"))
    reference = None
    if source == "clip":
        # JSON numbers only here (the schema refuses text and true/false); the range and the shot's
        # numbering (from 1, a 0-based job refused, never shifted) are the session's one rule, so a
        # job means what the page would mean.
        given_range = {k: getattr(line, k) for k in ("start", "end", "shot") if getattr(line, k) is not None}
        reference = ClipRange.from_user(value, **given_range)
    elif any(getattr(line, k) is not None for k in ("shot", "start", "end")):
        raise InputError("shot, start and end apply to clip jobs only", "job")
    canonical = {k: v for k, v in data.items() if k not in ("seeds", "id")}
    canonical[source] = value
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:8]
    name = line.id
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,48}", name):
        raise InputError("must be 1-48 letters, digits, dots, dashes or underscores", "id")
    job_id = name or f"{_slug(Path(value).stem if source != 'prompt' else value)}-{digest}"
    return Job(job_id, line_number, source, value, seeds, dict(settings), line.mode, line.short_prompt, reference)


def seeds_of_unreadable(text: str, default_seeds: list[int]) -> list[Any]:
    """The seeds a refused line would have run, so its failure counts once per seed: its own list
    when that much of it reads, else the batch's defaults."""
    try:
        seeds = json.loads(text).get("seeds", default_seeds)
    except (json.JSONDecodeError, AttributeError):
        return list(default_seeds)
    if isinstance(seeds, list) and 0 < len(seeds) <= MAX_SEEDS:
        return list(seeds)  # as written, even seeds it refused: each is a cell that did not run
    return list(default_seeds)


def read_jobs(path: str | Path, default_seeds: list[int]) -> list[Job | JobFailure]:
    """Every non-blank, non-comment (#) line of the jobs file, as a Job or a JobFailure."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist", "jobs")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} cannot be read as text ({exc})", "jobs") from exc
    base = path.resolve().parent
    jobs: list[Job | JobFailure] = []
    seen: set[str] = set()
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            job = parse_job(number, text, base, default_seeds)
        except InputError as exc:
            jobs.append(JobFailure(f"line{number}", number, str(exc), seeds=seeds_of_unreadable(text, default_seeds)))
            continue
        if job.id in seen:
            jobs.append(JobFailure(f"line{number}", number, f"job: repeats the job {job.id} of an earlier line",
                                   seeds=job.seeds))
            continue
        seen.add(job.id)
        jobs.append(job)
    if not jobs:
        raise InputError(f"{path} holds no jobs (one JSON object per line)", "jobs")
    return jobs
