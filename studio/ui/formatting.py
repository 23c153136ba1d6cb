"""What the page shows, as text: badges, histories, the prompt meter, run cards, error lines.

Plain functions of plain values (no Gradio), so every sentence the page shows is unit-tested.
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping

from ..caption.structured import ASPECTS, StructuredCaption, aspect_name
from ..errors import StudioError
from ..captioner.candidates import Candidate
from ..session import Composition, RunCard
from ..values import one_line

ASPECT_HINTS = {
    "Subject": "Who or what the shot is about: appearance, clothing, expression.",
    "Scene": "Where and when: setting, lighting, weather, time of day, mood.",
    "Motion": "What moves and how, in time order.",
    "Spatial": "Shot size, framing and where things sit in the frame.",
    "Camera": "Camera height, angle, focus and movement over the shot.",
}


def reward_badge(caption: StructuredCaption, aspect: str) -> str:
    """The reward as a percentage, marked stale once the text changed."""
    entry = caption.aspects[aspect_name(aspect)]
    if entry.reward is None:
        return "Reward: not scored"
    stale = "" if entry.reward_is_current else " (stale: text changed since scoring)"
    return f"Reward: {entry.reward * 100:.0f}% yes{stale}"


def history_markdown(caption: StructuredCaption, aspect: str, limit: int = 8) -> str:
    """The aspect's revisions, newest first."""
    history = caption.aspects[aspect_name(aspect)].history
    if not history:
        return "_No revisions yet._"
    first = max(1, len(history) - limit + 1)
    lines = [f"- **#{n} {rev.source}**: {one_line(rev.critique, 90) or 'no note'}  \n"
             f"  _before:_ {one_line(rev.before, 70) or '(empty)'}"
             for n, rev in reversed(list(enumerate(history[-limit:], start=first)))]
    if len(history) > limit:
        lines.append(f"_…and {len(history) - limit} older revision(s)._")
    return "\n".join(lines)


def best_of_markdown(aspect: str, ranked: list[Candidate]) -> str:
    """The ranked list, the aspect's own text marked; the first is the one now in the box."""
    sampled = sum(not c.current for c in ranked)
    yours = "your text and " if any(c.current for c in ranked) else ""
    kept = "your text stays in the box" if ranked and ranked[0].current else \
        "the best is now in the box; Undo restores yours"
    lines = [f"**{aspect}: {yours}{sampled} candidates, best first** ({kept}; pick any below)"]
    lines += [f"{n}. **{c.reward * 100:.0f}%**{' (your text)' if c.current else ''} {one_line(c.text, 160)}"
              for n, c in enumerate(ranked, 1)]
    return "\n".join(lines)


def candidate_choices(ranked: list[Candidate]) -> list[tuple[str, int]]:
    """The ranked list as the picker's choices: (label, index in the list)."""
    return [(f"{n}. {c.reward * 100:.0f}%{' · your text' if c.current else ''} · {one_line(c.text, 90)}", n - 1)
            for n, c in enumerate(ranked, 1)]


def prompt_meter(words: int, tokens: int, exact: bool, limit: int) -> str:
    """Words and tokens against the text encoder's limit."""
    approx = "" if exact else "≈"
    if tokens > limit:
        state = f"over the limit: the text encoder reads {limit} tokens. Press **Fit to the limit** or shorten it"
    elif tokens > 0.9 * limit:
        state = "close to the limit"
    else:
        state = "within the limit"
    return f"**{words} words · {approx}{tokens} / {limit} tokens**: {state}"


def composition_meter(composed: Composition) -> str:
    from ..compose.text import word_count

    return prompt_meter(word_count(composed.prompt), composed.tokens, composed.exact_tokens, composed.token_limit)


def compose_summary(report: Mapping[str, Any]) -> str:
    coverage = report.get("coverage") or {}
    parts = [f"{a} {coverage[a] * 100:.0f}%" for a in ASPECTS if a in coverage]
    lines = ["Coverage: " + (", ".join(parts) if parts else "n/a")]
    reasons: dict[str, int] = {}
    for item in report.get("dropped") or []:
        reasons[item.get("reason", "?")] = reasons.get(item.get("reason", "?"), 0) + 1
    if reasons:
        lines.append("Left out: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
    lines.extend(f"⚠ {w}" for w in report.get("warnings") or [])
    return "  \n".join(lines)


def step_bar(label: str, step: int, total: int, state: str = "") -> str:
    share = 0.0 if not total else min(1.0, step / total)
    filled = int(round(share * 20))
    return f"{'▰' * filled}{'▱' * (20 - filled)} {label}: step {step}/{total}{(' · ' + state) if state else ''}"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"about {seconds} s left"


def card_html(card: RunCard) -> str:
    """A history card's text (HTML, so the Dataset shows every line whole)."""
    date, *middle, prompt = (html.escape(line) for line in card.lines)
    return f'<div class="run-card"><b>{date}</b><br>{"<br>".join(middle)}<br><i>{prompt}</i></div>'


def glossary_html(definition: str) -> str:
    return f'<span class="glossary-definition">{html.escape(definition)}</span>'


def shot_label(number: int, start: float, end: float) -> str:
    """Shots are numbered from 1, as `python -m studio shots` prints them."""
    return f"Shot {number}: {start:.2f}–{end:.2f} s"


def range_label(start: Any, end: Any, duration: float | None = None,
                shots: list[tuple[float, float]] | None = None) -> str:
    """The in/out range the captioner will read, under the reference player: the shot's number
    when the range is exactly one detected shot. End 0 (or none) means the end of the clip."""
    try:
        lo = float(start or 0.0)
        hi = float(end or 0.0) or (float(duration) if duration else None)
    except (TypeError, ValueError):
        return ""
    if hi is None:
        return f"**Range:** {lo:.2f} s – end of the clip"
    for number, (shot_start, shot_end) in enumerate(shots or [], start=1):
        if abs(shot_start - lo) < 0.006 and abs(shot_end - hi) < 0.006:
            return f"**{shot_label(number, lo, hi)}** ({hi - lo:.2f} s)"
    return f"**Range:** {lo:.2f}–{hi:.2f} s ({max(0.0, hi - lo):.2f} s)"


def error_message(exc: BaseException) -> str:
    """A failed step in one line: a StudioError's message with server paths cut to file names;
    anything else names no internals (the log has the traceback)."""
    if isinstance(exc, StudioError):
        return without_paths(str(exc))
    if isinstance(exc, RecursionError):
        return "the data sent is nested too deeply to read; send a flat JSON caption"
    return (f"this step failed unexpectedly ({type(exc).__name__}); nothing you had was lost. The server log "
            "has the details")


def error_line(exc: BaseException) -> str:
    return f"⚠ {html.escape(error_message(exc), quote=False)}"


# An absolute POSIX path of two or more parts (not part of a URL, a hub id or a relative path).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/`]+/)+([^\s'\"/`]*)")


def without_paths(message: str) -> str:
    """`/tmp/gradio/ab12/clip.mp4 is ...` -> `clip.mp4 is ...`: visitors see file names, not where
    the server keeps them."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "(folder)", message)


def judge_markdown(judgement: dict[str, Any]) -> str:
    """Per aspect, each side's reward (P(yes) that the caption describes the video)."""
    sides = judgement.get("sides", [])
    header = "| aspect | " + " | ".join(s["label"] for s in sides) + " |"
    lines = [header, "|---" * (len(sides) + 1) + "|"]
    for aspect, row in (judgement.get("aspects") or {}).items():
        scores = row.get("scores") or {}
        lines.append(f"| {aspect} | " + " | ".join(f"{scores.get(s['key'], 0) * 100:.0f}%" for s in sides) + " |")
    return "\n".join(lines)
