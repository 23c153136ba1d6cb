"""Turning what Qwen3-VL generates into caption text, and the text written without a model.

Kept apart from `model` (which loads the captioner and builds its prompts) because none of it needs
the model: the streamer decodes each batch row as tokens arrive, `clean_text` drops the control
characters an undertrained model emits, `within_words` holds a merged paragraph to its word
budget, and `compose_fallback` writes the paragraph with the composer when no model is loaded.
"""

from __future__ import annotations

from typing import Any, Callable

from ..caption.structured import StructuredCaption
from ..compose.text import split_sentences, word_count

OnText = Callable[[str, str], None]  # (label, text so far)


class BatchStreamer:
    """A `generate` streamer for a batch: reports each row's decoded text as tokens arrive."""

    def __init__(self, tokenizer: Any, labels: list[str], on_text: OnText, eos: list[int]):
        self.tokenizer, self.labels, self.on_text, self.eos = tokenizer, labels, on_text, set(eos)
        self.tokens: list[list[int]] = [[] for _ in labels]
        self.done = [False] * len(labels)
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate first sends the prompt ids
            self.prompt_seen = True
            return
        column = value.reshape(len(self.labels), -1)[:, -1].tolist()
        for row, token in enumerate(column):
            if self.done[row]:
                continue
            if token in self.eos:
                self.done[row] = True
                continue
            self.tokens[row].append(token)
            text = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                self.on_text(self.labels[row], clean_text(text))

    def end(self) -> None:
        pass


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


def clean_text(text: str) -> str:
    """Generated text without control characters (an undertrained model can emit byte tokens)."""
    return text.translate(_CONTROL).replace("\ufffd", "").strip()


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """The token ids that end a caption: the model's own, plus the chat turn end and the tokenizer's EOS."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end, int) and end != tokenizer.unk_token_id and end not in ids:
        ids.append(end)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def compose_fallback(caption: StructuredCaption, max_words: int = 260) -> str:
    """The composer's extractive paragraph: what `Captioner.merge` returns once the model is unloaded."""
    from ..compose import ComposeOptions, compose

    return compose(caption, ComposeOptions(max_words=max_words)).prompt


def within_words(text: str, max_words: int) -> str:
    """Whole sentences of `text` up to `max_words` words (the model may overrun the budget it was
    asked for; the composer's hard cap holds for every mode)."""
    if word_count(text) <= max_words:
        return text
    kept, used = [], 0
    for sentence in split_sentences(text):
        n = word_count(sentence)
        if used + n > max_words:
            break
        kept.append(sentence)
        used += n
    return " ".join(kept) if kept else " ".join(text.split()[:max_words])
