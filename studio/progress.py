"""Progress bars for long CLI runs (dataset, train): tqdm on stderr, with rate and time left."""

from __future__ import annotations

import sys


def progress_bar(what: str, total: int, initial: int = 0):
    """A bar for `total` units of `what`; `update(n)` advances it, `close()` ends the line."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=what, unit="shot" if what != "train" else "step",
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")


def quiet_libraries() -> None:
    """Keep stderr for the studio's own bars: the libraries' loading bars and hints would drown them."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
