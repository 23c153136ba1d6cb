"""Comparison modes: what the two sides of a run are.

* ``finetuned``: the CHAI-finetuned model beside the zero-shot model, same prompt (the studio's
  original comparison).
* ``prompt``: one model (the finetune when one is configured, else the zero-shot baseline) run
  twice, with the CHAI-composed prompt and with a short plain prompt; it shows what the precise
  language alone changes and needs no finetune.
* ``baseline``: the zero-shot model alone, one video; what `generate` falls back to when there is
  neither a finetune nor a short prompt.

Every side has a key (its video file's stem), a label (drawn over it in the side-by-side video and
shown in reports), the model it runs on and its prompt. Torch-free, so commands check a mode
before loading anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError

MODES = ("finetuned", "prompt", "baseline")
FINETUNED_MODEL, BASELINE_MODEL = "finetuned", "baseline"
FINETUNED_LABEL = "CHAI-finetuned Wan2.2"
BASELINE_LABEL = "Zero-shot Wan2.2"
MAX_SHORT_PROMPT_CHARS = 2000


@dataclass(frozen=True)
class Side:
    key: str  # video file stem and progress key
    label: str
    model: str  # FINETUNED_MODEL or BASELINE_MODEL
    prompt: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def resolve_mode(mode: str | None, has_finetune: bool, short_prompt: str | None) -> str:
    """The mode to run: `mode` when given and possible, else the best one the inputs allow."""
    short = (short_prompt or "").strip()
    if mode is None or mode == "" or mode == "auto":
        if has_finetune:
            return "finetuned"
        return "prompt" if short else "baseline"
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}", "mode")
    if mode == "finetuned" and not has_finetune:
        raise InputError("finetuned mode needs CHAI-finetuned weights (--finetuned PATH or CHAI_STUDIO_FINETUNED); "
                         "without them use --mode prompt with --short-prompt", "mode")
    if mode == "prompt" and not short:
        raise InputError("prompt mode compares the CHAI prompt with a short plain prompt; give one "
                         "(--short-prompt TEXT, or `short_prompt` in a job)", "short_prompt")
    if len(short) > MAX_SHORT_PROMPT_CHARS:
        raise InputError(f"is {len(short)} characters; keep it under {MAX_SHORT_PROMPT_CHARS}", "short_prompt")
    return mode


def plan_sides(mode: str, prompt: str, short_prompt: str | None, has_finetune: bool) -> list[Side]:
    """The sides of a run, left first (the side expected to follow the description better)."""
    if mode == "finetuned":
        return [Side("finetuned", FINETUNED_LABEL, FINETUNED_MODEL, prompt),
                Side("baseline", BASELINE_LABEL, BASELINE_MODEL, prompt)]
    if mode == "prompt":
        model = FINETUNED_MODEL if has_finetune else BASELINE_MODEL
        name = FINETUNED_LABEL if has_finetune else BASELINE_LABEL
        return [Side("chai_prompt", f"CHAI prompt · {name}", model, prompt),
                Side("short_prompt", f"Short prompt · {name}", model, (short_prompt or "").strip())]
    if mode == "baseline":
        return [Side("baseline", BASELINE_LABEL, BASELINE_MODEL, prompt)]
    raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}", "mode")
