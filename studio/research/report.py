"""`report.html`: one page that opens from disk, with no server and nothing fetched from the web.

On top, what a paper needs to cite the numbers: the models (locations with their content hashes or
hub revisions, as run.json records them), the judge's captioner, profile, steps, size, frames,
seeds, the date and the studio version, with a warning banner when the tiny random-weight models
made any run (their videos are noise and their scores mean nothing). Then the counts of jobs and
of job x seed runs, failed ones included; per comparison mode, the aggregate table (mean score
per side, mean difference with its paired bootstrap 95% interval, win/tie/loss, contrast accuracy
over the meaningful hard negatives) and an inline SVG chart of the differences; per run, the two
videos side by side (played, paused and seeked together by a few lines of inline script), the
prompt, each aspect's scores and its hard negative in full with the swapped words marked; last,
the failed jobs with their reasons.

Videos are referenced by their path relative to the report, so the page works wherever the batch
folder is copied. Tables sit in horizontally scrolling boxes, so the page fits a phone's width.
Beside the page, report.csv holds the aggregate table (`stats.aggregate_table`, the rows the HTML
table is drawn from) and report.json the same rows with the header and the counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from .stats import TABLE_COLUMNS, aggregate_table, batch_counts

REPORT_SCHEMA = "chai-studio/report"
CSV_FILE = "report.csv"
JSON_FILE = "report.json"

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
.scroll{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{white-space:nowrap}
code,.prompt,h1,h3{overflow-wrap:anywhere}
table.meta td,table.meta th{text-align:left;vertical-align:top}table.meta code{font-size:12px}
.warning{background:#fdecea;border:2px solid #b3261e;border-radius:6px;padding:12px 16px;margin:16px 0;color:#5f1410}
.warning strong{display:block;font-size:18px;margin-bottom:4px}
.run{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:16px 0}
.pair{display:flex;gap:12px;flex-wrap:wrap}.pair figure{margin:0;flex:1 1 0;min-width:200px;max-width:480px}.pair video{width:100%;background:#000}
figcaption{font-size:13px;color:#444}.prompt{font-size:13px;white-space:pre-wrap;color:#333}
td.negative{text-align:left;min-width:16em}.negative mark{background:#ffe082;padding:0 2px}
.hit{color:#0a7d32}.miss{color:#b3261e}.muted{color:#777}.failed td{background:#fff3f2}
svg.chart{max-width:100%;height:auto}
@media (max-width:600px){body{margin:8px}td,th{padding:3px 4px;font-size:13px}
.pair figure{min-width:0;flex-basis:100%}td.negative{min-width:12em}}
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
              f'viewBox="0 0 {width} {height}" role="img" aria-label="mean difference per aspect">'),
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


def _distinct(values) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def report_header(rows: list[dict[str, Any]], created: str | None = None) -> dict[str, Any]:
    """The facts a paper cites with the numbers, gathered from the runs' recorded provenance."""
    from ..generation.provenance import studio_version

    recorded = [r["provenance"] for r in rows if r.get("status") == "ok" and r.get("provenance")]
    settings = [p["settings"] for p in recorded]
    seeds = sorted({s for r in rows for s in ([r["seed"]] if r.get("seed") is not None else r.get("seeds") or [])
                    if isinstance(s, int) and not isinstance(s, bool)})
    dates = sorted(p["created"] for p in recorded if p.get("created"))
    return {
        "created": created or datetime.now(UTC).isoformat(timespec="seconds"),
        "studio": studio_version(),
        "studio_recorded": _distinct(p["studio"] for p in recorded),
        "tiny": any(p.get("tiny") for p in recorded),
        "presets": _distinct(p["preset"] for p in recorded),
        "baseline": _distinct(p["baseline"] for p in recorded),
        "finetuned": _distinct(p["finetuned"] for p in recorded if p.get("finetuned")),
        "judge_captioner": _distinct(r["judge_captioner"] for r in rows if r.get("judge_captioner")),
        "profiles": _distinct(s.get("profile") for s in settings),
        "step_caches": _distinct(s.get("step_cache") or "none" for s in settings),
        "steps": _distinct(s.get("steps") for s in settings),
        "sizes": _distinct(f"{s.get('width')}x{s.get('height')}" for s in settings),
        "frames": _distinct(f"{s.get('num_frames')} at {s.get('fps')} fps" for s in settings),
        "seeds": seeds,
        "runs_made": [dates[0], dates[-1]] if dates else [],
    }


def _listed(values: list[Any]) -> str:
    return escape(", ".join(str(v) for v in values)) if values else '<span class="muted">none recorded</span>'


def _model(entry: dict[str, Any]) -> str:
    parts = [escape(entry["label"]) + ":"] if entry.get("label") else []
    parts.append(f"<code>{escape(str(entry.get('location')))}</code>")
    if entry.get("kind"):
        scale = "" if entry.get("lora_scale") is None else f", scale {entry['lora_scale']}"
        parts.append(f"({escape(entry['kind'])}{escape(scale)})")
    if entry.get("revision"):
        parts.append(f"revision <code>{escape(str(entry['revision']))}</code>")
    if entry.get("sha256"):
        parts.append(f"sha256 <code>{escape(entry['sha256'])}</code>")
    elif not entry.get("revision"):
        parts.append('<span class="muted">no hash or revision recorded</span>')
    return " ".join(parts)


def _studio(info: dict[str, Any]) -> str:
    text = str(info.get("version") or "unknown")
    if info.get("git_commit"):
        text += f" (commit {info['git_commit'][:12]}{', with local edits' if info.get('git_dirty') else ''})"
    return escape(text)


def header_section(header: dict[str, Any], counts: dict[str, int]) -> str:
    out = []
    if header["tiny"]:
        out.append('<div class="warning" role="alert"><strong>Tiny test models: these results are noise</strong>'
                   "At least one run was made with the tiny random-weight checkpoints the studio builds for its "
                   "tests. Their videos are noise and their scores carry no meaning; do not cite them.</div>")
    studio = _studio(header["studio"])
    recorded = [_studio(s) for s in header["studio_recorded"]]
    made = f"; runs made {header['runs_made'][0]} to {header['runs_made'][1]}" if header["runs_made"] else ""
    facts = [("Baseline", "<br>".join(_model(m) for m in header["baseline"]) or _listed([])),
             ("Finetuned", "<br>".join(_model(m) for m in header["finetuned"]) or _listed([])),
             ("Judge (captioner)", _listed(header["judge_captioner"])), ("Preset", _listed(header["presets"])),
             ("Profile", _listed(header["profiles"])), ("Step cache", _listed(header["step_caches"])),
             ("Steps", _listed(header["steps"])), ("Size", _listed(header["sizes"])),
             ("Frames", _listed(header["frames"])), ("Seeds", _listed(header["seeds"])),
             ("Date", escape(f"report written {header['created']}{made}")),
             ("Studio version", studio + (f"; runs made with {', '.join(recorded)}"
                                          if recorded and recorded != [studio] else ""))]
    out.append('<div class="scroll"><table class="meta"><tbody>' + "".join(
        f"<tr><th>{escape(name)}</th><td>{value}</td></tr>" for name, value in facts) + "</tbody></table></div>")
    out.append(f'<p class="counts">{counts["jobs"]} job(s): {counts["jobs_complete"]} complete, '
               f'{counts["jobs_failed"]} failed. {counts["runs"]} job × seed run(s): {counts["runs_complete"]} '
               f"complete, {counts['runs_failed']} failed. Scores are the CHAI captioner's P(Yes) that the aspect "
               "caption describes the video.</p>")
    return "\n".join(out)


def aggregate_section(summary: dict[str, Any]) -> str:
    if not summary:
        return '<p class="muted">No judged two-sided runs yet, so there is nothing to aggregate.</p>'
    table = aggregate_table(summary)
    out = []
    for mode, figures in summary.items():
        left, right = figures["sides"]
        out.append(f"<h2>Aggregate: {escape(mode)} mode ({figures['runs']} runs)</h2>")
        out.append(f"<p>Left: <b>{escape(left)}</b>; right: <b>{escape(right)}</b>. Difference = left − right; "
                   "interval: paired bootstrap over jobs × seeds, 95%.</p>")
        out.append(f'<div class="scroll"><table class="aggregate" data-mode="{escape(mode)}"><thead><tr>'
                   "<th>aspect</th><th>left</th>"
                   "<th>right</th><th>mean diff</th><th>95% CI</th><th>win / tie / loss</th><th>n</th>"
                   "<th>negatives</th><th>contrast left</th><th>contrast right</th></tr></thead><tbody>")
        for a in (row for row in table if row["mode"] == mode):
            out.append(f"<tr><td>{escape(a['aspect'])}</td><td>{_fmt(a['mean_left'])}</td>"
                       f"<td>{_fmt(a['mean_right'])}</td><td>{_fmt(a['mean_diff'], True)}</td>"
                       f"<td>[{_fmt(a['ci_low'], True)}, {_fmt(a['ci_high'], True)}]</td>"
                       f"<td>{a['wins']} / {a['ties']} / {a['losses']}</td><td>{a['n']}</td><td>{a['contrast_n']}</td>"
                       f"<td>{_percent(a['contrast_left'])}</td><td>{_percent(a['contrast_right'])}</td></tr>")
        c = figures["contrast"]
        skipped = (f" {c['not_counted']} recorded negative(s) are not swaps of CHAI vocabulary terms and are left "
                   "out." if c.get("not_counted") else "")
        out.append(f"</tbody></table></div><p>Contrast accuracy over {c['n']} caption / hard-negative pairs: left "
                   f"{_percent(c['left'])}, right {_percent(c['right'])}.{skipped}</p>")
        out.append(chart(figures))
    return "\n".join(out)


def marked_negative(caption: str, negative: str) -> str:
    """The whole negative, HTML-escaped, with the words that differ from the caption in <mark>."""
    from .negatives import changed_spans

    parts, position = [], 0
    for start, end in changed_spans(caption, negative):
        parts.append(escape(negative[position:start]))
        parts.append(f"<mark>{escape(negative[start:end])}</mark>")
        position = end
    parts.append(escape(negative[position:]))
    return "".join(parts)


def run_section(row: dict[str, Any], base: Path, out_dir: Path) -> str:
    sides = row["sides"]
    run_dir = out_dir / row["run"]
    figures = []
    for side in sides:
        src = os.path.relpath(run_dir / side["video"], base).replace(os.sep, "/")
        figures.append(f'<figure><video src="{escape(src)}" controls loop muted playsinline preload="metadata">'
                       f'</video><figcaption>{escape(side["label"])}</figcaption></figure>')
    head = ["aspect"] + [s["label"] for s in sides] + (["diff"] if len(sides) == 2 else []) + \
        ["reference", "contrast (left / right)", "hard negative"]
    table = ['<div class="scroll"><table class="scores"><thead><tr>' +
             "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for aspect, cell in row.get("scores", {}).items():
        values = [_fmt(cell.get("left"))] + ([_fmt(cell.get("right")), _fmt(cell.get("diff"), True)]
                                             if len(sides) == 2 else [])
        contrast = row.get("contrast", {}).get(aspect)
        if contrast:
            marks = [("hit" if h else "miss") if h is not None else None for h in (contrast["left"], contrast["right"])]
            contrast_cell = " / ".join(f'<span class="{m}">{m}</span>' for m in marks if m)
            negative_cell = marked_negative(contrast.get("caption") or "", contrast["negative"])
            if not contrast.get("counted", True):
                contrast_cell += '<br><span class="muted">not counted</span>'
                negative_cell += ('<br><span class="muted">not a swap of CHAI vocabulary terms, so left out of '
                                  "contrast accuracy</span>")
        else:
            contrast_cell = '<span class="muted">none</span>'
            negative_cell = '<span class="muted">no CHAI direction or movement term to swap</span>'
        table.append(f"<tr><td>{escape(aspect)}</td>" + "".join(f"<td>{v}</td>" for v in values) +
                     f"<td>{_fmt(cell.get('reference'))}</td><td>{contrast_cell}</td>"
                     f'<td class="negative">{negative_cell}</td></tr>')
    table.append("</tbody></table></div>")
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
    out = [('<h2>Failed jobs</h2><div class="scroll"><table class="failures"><thead><tr><th>job</th><th>line</th>'
            "<th>seed</th><th>reason</th></tr></thead><tbody>")]
    for r in failed:
        seed = escape(", ".join(str(s) for s in r.get("seeds") or [])) if r.get("seed") is None else r["seed"]
        out.append(f'<tr class="failed"><td>{escape(str(r["job"]))}</td><td>{r.get("line", "")}</td><td>{seed}</td>'
                   f'<td>{escape(r["reason"])}</td></tr>')
    out.append("</tbody></table></div>")
    return "".join(out)


def render_report(rows: list[dict[str, Any]], summary: dict[str, Any], out_dir: Path, base: Path,
                  title: str = "batch", header: dict[str, Any] | None = None) -> str:
    header = header or report_header(rows)
    runs = [r for r in rows if r.get("status") == "ok"]
    body = [f"<h1>CHAI comparison report: {escape(title)}</h1>", header_section(header, batch_counts(rows)),
            aggregate_section(summary), "<h2>Runs</h2>",
            *(run_section(r, base, out_dir) for r in runs), failures_section(rows)]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}: CHAI comparison report</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + f"<script>{SYNC_SCRIPT}</script></body></html>\n")


def table_csv(summary: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in aggregate_table(summary):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def report_data(rows: list[dict[str, Any]], summary: dict[str, Any], header: dict[str, Any],
                title: str) -> dict[str, Any]:
    """report.json: the aggregate table's rows, the per-mode contrast totals, the header and the counts."""
    return {"schema": REPORT_SCHEMA, "version": 1, "title": title, "header": header, "counts": batch_counts(rows),
            "columns": list(TABLE_COLUMNS), "table": aggregate_table(summary),
            "contrast": {mode: figures["contrast"] for mode, figures in summary.items()}}


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_report(path: Path, rows: list[dict[str, Any]], summary: dict[str, Any], title: str = "batch") -> Path:
    """report.html at `path`, with report.csv and report.json beside it (one header for all three)."""
    path = Path(path)
    header = report_header(rows)
    _write_atomic(path.with_name(CSV_FILE), table_csv(summary))
    data = report_data(rows, summary, header, title)
    _write_atomic(path.with_name(JSON_FILE), json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n")
    _write_atomic(path, render_report(rows, summary, path.parent, path.parent, title, header))
    return path


def _finite(value: Any) -> Any:
    """NaN (an aspect without pairs) as null, so report.json stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
