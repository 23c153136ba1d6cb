"""`report.html`: one page that opens from disk, with no server and nothing fetched from the web.

On top, per comparison mode, the aggregate table (mean score per side, mean difference with its
paired bootstrap 95% interval, win/tie/loss, contrast accuracy) and an inline SVG chart of the
differences; below, per run, the two videos side by side (played, paused and seeked together by a
few lines of inline script), the prompt, each aspect's scores and the contrast hits; last, the
failed jobs with their reasons. Videos are referenced by their path relative to the report, so the
page works wherever the batch folder is copied.
"""

from __future__ import annotations

import math
import os
from html import escape
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.run{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:16px 0}
.pair{display:flex;gap:12px;flex-wrap:wrap}.pair figure{margin:0;flex:1 1 0;min-width:200px;max-width:480px}.pair video{width:100%;background:#000}
figcaption{font-size:13px;color:#444}.prompt{font-size:13px;white-space:pre-wrap;color:#333}
.hit{color:#0a7d32}.miss{color:#b3261e}.muted{color:#777}.failed td{background:#fff3f2}
"""

SYNC_SCRIPT = """
document.querySelectorAll('.pair').forEach(function(pair){
  var videos = Array.prototype.slice.call(pair.querySelectorAll('video'));
  var busy = false;
  function follow(source, apply){ if(busy) return; busy = true;
    videos.forEach(function(v){ if(v !== source) apply(v); }); busy = false; }
  videos.forEach(function(v){
    v.addEventListener('play', function(){ follow(v, function(o){ o.currentTime = v.currentTime; o.play(); }); });
    v.addEventListener('pause', function(){ follow(v, function(o){ o.pause(); }); });
    v.addEventListener('seeked', function(){ follow(v, function(o){
      if(Math.abs(o.currentTime - v.currentTime) > 0.05) o.currentTime = v.currentTime; }); });
  });
});
"""


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def chart(figures: dict[str, Any], width: int = 560, row: int = 26) -> str:
    """Horizontal bars of the mean difference per aspect with the 95% interval as a whisker."""
    aspects = figures["aspects"]
    if not aspects:
        return ""
    bound = max([0.05] + [max(abs(a["ci_low"]), abs(a["ci_high"]), abs(a["mean_diff"])) for a in aspects.values()])
    label_w, pad = 80, 10
    plot_w = width - label_w - 2 * pad
    height = row * len(aspects) + 30

    def x(value: float) -> float:
        return label_w + pad + (value + bound) / (2 * bound) * plot_w

    parts = [(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'role="img" aria-label="mean difference per aspect">'),
             f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 22}" stroke="#888"/>']
    for i, (aspect, a) in enumerate(aspects.items()):
        y = 8 + i * row
        left, right = sorted((x(0), x(a["mean_diff"])))
        colour = "#2e7d32" if a["mean_diff"] > 0 else "#c62828"
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(aspect)}</text>')
        parts.append(f'<rect x="{left:.1f}" y="{y}" width="{max(right - left, 1):.1f}" height="{row - 10}" '
                     f'fill="{colour}" opacity="0.7"/>')
        parts.append(f'<line x1="{x(a["ci_low"]):.1f}" y1="{y + (row - 10) / 2}" x2="{x(a["ci_high"]):.1f}" '
                     f'y2="{y + (row - 10) / 2}" stroke="#111" stroke-width="1.5"/>')
    parts.append(f'<text x="{x(-bound):.1f}" y="{height - 6}" font-size="11">{-bound:+.2f}</text>')
    parts.append(f'<text x="{x(0) - 4:.1f}" y="{height - 6}" font-size="11">0</text>')
    parts.append(f'<text x="{x(bound) - 30:.1f}" y="{height - 6}" font-size="11">{bound:+.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def aggregate_section(summary: dict[str, Any]) -> str:
    if not summary:
        return '<p class="muted">No judged two-sided runs yet, so there is nothing to aggregate.</p>'
    out = []
    for mode, figures in summary.items():
        left, right = figures["sides"]
        out.append(f"<h2>Aggregate: {escape(mode)} mode ({figures['runs']} runs)</h2>")
        out.append(f"<p>Left: <b>{escape(left)}</b>; right: <b>{escape(right)}</b>. Difference = left − right; "
                   "interval: paired bootstrap over jobs × seeds, 95%.</p>")
        out.append('<table class="aggregate"><thead><tr><th>aspect</th><th>left</th><th>right</th>'
                   "<th>mean diff</th><th>95% CI</th><th>win / tie / loss</th><th>contrast left</th>"
                   "<th>contrast right</th></tr></thead><tbody>")
        for aspect, a in figures["aspects"].items():
            out.append(f"<tr><td>{escape(aspect)}</td><td>{_fmt(a['mean_left'])}</td><td>{_fmt(a['mean_right'])}"
                       f"</td><td>{_fmt(a['mean_diff'], True)}</td><td>[{_fmt(a['ci_low'], True)}, "
                       f"{_fmt(a['ci_high'], True)}]</td><td>{a['wins']} / {a['ties']} / {a['losses']}</td>"
                       f"<td>{_percent(a['contrast_left'])}</td><td>{_percent(a['contrast_right'])}</td></tr>")
        c = figures["contrast"]
        out.append(f"</tbody></table><p>Contrast accuracy over {c['n']} caption / hard-negative pairs: left "
                   f"{_percent(c['left'])}, right {_percent(c['right'])}.</p>")
        out.append(chart(figures))
    return "\n".join(out)


def run_section(row: dict[str, Any], base: Path, out_dir: Path) -> str:
    sides = row["sides"]
    run_dir = out_dir / row["run"]
    figures = []
    for side in sides:
        src = os.path.relpath(run_dir / side["video"], base).replace(os.sep, "/")
        figures.append(f'<figure><video src="{escape(src)}" controls loop muted playsinline preload="metadata">'
                       f'</video><figcaption>{escape(side["label"])}</figcaption></figure>')
    head = ["aspect"] + [s["label"] for s in sides] + (["diff"] if len(sides) == 2 else []) + \
        ["reference", "contrast (left / right)"]
    table = ["<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for aspect, cell in row.get("scores", {}).items():
        values = [_fmt(cell.get("left"))] + ([_fmt(cell.get("right")), _fmt(cell.get("diff"), True)]
                                             if len(sides) == 2 else [])
        contrast = row.get("contrast", {}).get(aspect)
        if contrast:
            marks = [("hit" if h else "miss") if h is not None else None for h in (contrast["left"], contrast["right"])]
            shown = " / ".join(f'<span class="{m}">{m}</span>' for m in marks if m)
            contrast_cell = f'{shown}<br><span class="muted">{escape(contrast["negative"][:160])}</span>'
        else:
            contrast_cell = '<span class="muted">no direction or movement to swap</span>'
        table.append(f"<tr><td>{escape(aspect)}</td>" + "".join(f"<td>{v}</td>" for v in values) +
                     f"<td>{_fmt(cell.get('reference'))}</td><td>{contrast_cell}</td></tr>")
    table.append("</tbody></table>")
    judged = "".join(table) if row.get("judged") else '<p class="muted">not judged (--no-judge)</p>'
    short = f'<div class="prompt"><b>Short prompt:</b> {escape(row["short_prompt"])}</div>' \
        if row.get("short_prompt") else ""
    if row.get("missing_sides"):
        short += (f'<p class="muted">Partial run: {escape(", ".join(row["missing_sides"]))} was cancelled; '
                  "not in the aggregate.</p>")
    return (f'<section class="run" id="{escape(row["run"])}"><h3>{escape(row["run"])} '
            f'<span class="muted">job {escape(str(row.get("job")))}, seed {row.get("seed")}, {escape(row["mode"])} '
            f'mode</span></h3><div class="pair">{"".join(figures)}</div>'
            f'<div class="prompt"><b>Prompt:</b> {escape(row.get("prompt") or "")}</div>{short}{judged}</section>')


def failures_section(rows: list[dict[str, Any]]) -> str:
    failed = [r for r in rows if r.get("status") == "failed"]
    if not failed:
        return ""
    out = [("<h2>Failed jobs</h2><table><thead><tr><th>job</th><th>line</th><th>seed</th><th>reason</th></tr>"
            "</thead><tbody>")]
    for r in failed:
        seed = "" if r.get("seed") is None else r["seed"]
        out.append(f'<tr class="failed"><td>{escape(str(r["job"]))}</td><td>{r.get("line", "")}</td><td>{seed}</td>'
                   f'<td>{escape(r["reason"])}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def render_report(rows: list[dict[str, Any]], summary: dict[str, Any], out_dir: Path, base: Path,
                  title: str = "batch") -> str:
    runs = [r for r in rows if r.get("status") == "ok"]
    body = [f"<h1>CHAI comparison report: {escape(title)}</h1>",
            (f"<p>{len(runs)} run(s), {sum(r.get('status') == 'failed' for r in rows)} failed job(s). Scores are "
             "the CHAI captioner's P(Yes) that the aspect caption describes the video.</p>"),
            aggregate_section(summary), "<h2>Runs</h2>",
            *(run_section(r, base, out_dir) for r in runs), failures_section(rows)]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}: CHAI comparison report</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + f"<script>{SYNC_SCRIPT}</script></body></html>\n")


def write_report(path: Path, rows: list[dict[str, Any]], summary: dict[str, Any], title: str = "batch") -> Path:
    path = Path(path)
    text = render_report(rows, summary, path.parent, path.parent, title)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path
