"""Progress bars for long CLI runs (dataset, train, batch): tqdm on stderr, with rate and time left."""

from __future__ import annotations

import sys


def progress_bar(what: str, total: int, initial: int = 0, unit: str | None = None):
    """A bar for `total` units of `what`; `update(n)` advances it, `close()` ends the line."""
    from tqdm import tqdm

    unit = unit or ("step" if what == "train" else "shot")
    return tqdm(total=total, initial=initial, desc=what, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
                           "{postfix}")
