"""Instruction templates for the captioner, read from `prompts/captioner/*.txt`.

One file per aspect (the instruction the model sees with the video), plus `context` (earlier
captions given in CHAI's two-stage order), `critique`, `revise`, `reward` and `merge`. Users may
edit them; placeholders are written `{name}` and only the names listed in `PLACEHOLDERS` are
filled in, so any other braces in a template are left as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..caption.structured import ASPECTS
from ..errors import InputError
from ..resources import prompts_dir

DEFAULT_DIR = prompts_dir() / "captioner"
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    **{aspect.lower(): () for aspect in ASPECTS},
    "context": ("context",),
    "critique": ("aspect", "caption"),
    "revise": ("aspect", "caption", "critique"),
    "reward": ("aspect", "caption"),
    "merge": ("captions", "max_words"),
}
MAX_TEMPLATE_CHARS = 20_000


@dataclass(frozen=True)
class PromptTemplates:
    """The ten templates, by file stem (`subject`, ..., `merge`)."""

    texts: dict[str, str]
    folder: str = ""

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "PromptTemplates":
        folder = Path(folder) if folder is not None else DEFAULT_DIR
        texts = {}
        for name, required in PLACEHOLDERS.items():
            path = folder / f"{name}.txt"
            if not path.is_file():
                raise InputError(f"missing template {path}; every one of {', '.join(PLACEHOLDERS)} is needed",
                                 "prompts")
            text = path.read_text(encoding="utf-8").strip()
            if not text or len(text) > MAX_TEMPLATE_CHARS:
                raise InputError(f"{path} must hold 1 to {MAX_TEMPLATE_CHARS} characters", "prompts")
            missing = [p for p in required if "{" + p + "}" not in text]
            if missing:
                raise InputError(f"{path} must contain the placeholder(s) "
                                 f"{', '.join('{' + p + '}' for p in missing)}", "prompts")
            texts[name] = text
        return cls(texts=texts, folder=str(folder))

    def aspect(self, aspect: str) -> str:
        return self.texts[aspect.lower()]

    def render(self, name: str, **values: object) -> str:
        allowed = PLACEHOLDERS[name]
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in allowed else m.group(0),
                      self.texts[name])


# The sentence the critique template asks for when a caption needs no change. Matching is lenient
# because a model may add punctuation or wrap it in a short sentence.
NO_CHANGE = "No changes needed."
_NO_CHANGE_PATTERNS = re.compile(
    r"^\W*(no changes? (are |is )?(needed|required|necessary)|nothing (needs )?(to )?(be )?chang|"
    r"the caption is (accurate|correct) and complete)", re.IGNORECASE)


def says_no_change(critique: str) -> bool:
    """True when a critique states that the caption needs no change."""
    return bool(_NO_CHANGE_PATTERNS.search(critique.strip()))
