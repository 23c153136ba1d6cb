"""Progress bars for long CLI runs (dataset, train, batch): tqdm on stderr, with rate and time left."""

from __future__ import annotations

import sys


def progress_bar(what: str, total: int, initial: int = 0, unit: str | None = None):
    """A bar for `total` units of `what`; `update(n)` advances it, `close()` ends the line."""
    from tqdm import tqdm

    unit = unit or ("step" if what == "train" else "shot")
    # A terminal redraws one line; a log file (CI, nohup) gets a new line per redraw, so fewer of them.
    interval = 0.5 if sys.stderr.isatty() else 15.0
    return tqdm(total=total, initial=initial, desc=what, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=interval,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
                           "{postfix}")
