"""The CHAI captioner on transformers: Qwen3-VL, one aspect per generated sequence.

CHAI's captioner writes one aspect per call (user turn = video + that aspect's instruction), judges
a caption with a Yes/No answer, and writes critiques. `Captioner` runs those calls with
`AutoProcessor` + `AutoModelForImageTextToText`; several calls on one clip go into one left-padded
batch, so the five aspects cost one `generate`.
"""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..caption.structured import ASPECTS, StructuredCaption, aspect_name
from ..errors import InputError, ModelLoadError, StudioError
from ..hub import resolve_model_location
from .candidates import Candidate, rank_candidates
from .decoding import BatchStreamer, OnText, clean_text, compose_fallback, eos_ids, within_words
from .inputs import as_clip, aspect_list, checked_text
from .packs import CONTEXT, PromptPack

DEFAULT_MAX_NEW_TOKENS = 512  # real aspect captions run to ~250 words
MERGE_MAX_NEW_TOKENS = 768
# CHAI's annotation order: Subject, Scene and Camera first; then Motion, written knowing the Subject
# caption, and Spatial, knowing Subject and Scene (the pack's add-ons hand those captions over).
STAGE_TWO_CONTEXT = {aspect: needs for aspect, (_, needs) in CONTEXT.items()}
SETTING_HINT = "set CHAI_STUDIO_CAPTIONER or --captioner"
log = logging.getLogger("studio.captioner")


def _logged(task: str):
    """Log a captioner call's start and end (its aspect or aspects, seconds) at INFO."""

    def wrap(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def logged(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            aspects = arguments.arguments.get("aspect", arguments.arguments.get("aspects", ""))
            what = aspects if isinstance(aspects, str) else ", ".join(map(str, aspects))
            log.info("%s %s: start", task, what)
            started = time.perf_counter()
            result = method(*args, **kwargs)
            log.info("%s %s: done in %.1f s", task, what, time.perf_counter() - started)
            return result

        return logged

    return wrap


class Captioner:
    """A loaded captioner. Build it with `from_pretrained` or `from_config`; free it with `unload`."""

    def __init__(self, model: Any, processor: Any, model_id: str, pack: PromptPack | None = None,
                 max_new_tokens: int | None = None):
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.pack = pack or PromptPack.load()  # every prompt's words; swapped without reloading the model
        self._max_new_tokens = max_new_tokens
        self._lock = threading.RLock()  # one generate at a time on a shared model
        if processor is not None:
            processor.tokenizer.padding_side = "left"

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, device: str = "auto", dtype: Any = None,
                        attn_implementation: str | None = None, pack: PromptPack | None = None,
                        max_new_tokens: int | None = None) -> "Captioner":
        """Load processor and model once. bf16 on CUDA (flash-attention-2 when installed, else sdpa),
        float32 on CPU. Failures raise `ModelLoadError` naming the setting to change."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        name = str(path_or_id)
        if not name.strip():
            raise ModelLoadError(f"no captioner given; {SETTING_HINT} to a Qwen3-VL folder or hub id")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("device is cuda but no CUDA GPU is visible; set CHAI_STUDIO_DEVICE=cpu or --device cpu")
        if isinstance(dtype, str):
            dtype = None if dtype == "auto" else getattr(torch, dtype)
        dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
        attn = attn_implementation or _best_attention(device)
        local = Path(name).expanduser()
        if local.exists() and not (local / "config.json").is_file():
            raise ModelLoadError(f"{local} has no config.json, so it is not a model folder; {SETTING_HINT} "
                                 "to a Qwen3-VL checkpoint folder or hub id")
        if not local.exists() and name.startswith(("/", ".", "~")):
            raise ModelLoadError(f"no such captioner folder: {local}; {SETTING_HINT} to a Qwen3-VL checkpoint "
                                 "folder or hub id")
        where = resolve_model_location(str(local) if local.exists() else name, "CHAI_STUDIO_CAPTIONER or --captioner")
        log.info("loading captioner %s on %s (%s)", where, device, dtype)
        started = time.perf_counter()
        try:
            processor = AutoProcessor.from_pretrained(where)
            # On CUDA the weights load straight onto the GPU instead of staging 17 GB in host memory.
            model = AutoModelForImageTextToText.from_pretrained(
                where, dtype=dtype, attn_implementation=attn, device_map=device if device != "cpu" else None)
            if device == "cpu":
                model.to(device)
            model.eval()
        except torch.cuda.OutOfMemoryError:
            _free_memory()
            # `from None` on purpose: a kept cause holds the failed load's frames, and with them the
            # GPU tensors just freed, for as long as the error is alive.
            raise ModelLoadError(
                f"out of GPU memory loading the captioner {name!r} (an 8B captioner needs about 17 GB in "
                "bfloat16 plus activations); unload the generator first, pick a smaller captioner "
                f"({SETTING_HINT}), or run it on the CPU (CHAI_STUDIO_DEVICE=cpu)") from None
        except StudioError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors, hub and config errors alike; named by folder
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            offline = "offline" in reason.lower() or "connect" in reason.lower() or "resolve" in reason.lower()
            hint = " (the hub cannot be reached: download it first, or point to a local folder)" if offline else ""
            if "deserializ" in reason or "header" in reason or "incomplete" in reason.lower():
                hint += " (its weights look truncated or corrupt: copy or download them again)"
            raise ModelLoadError(
                f"could not load the captioner {name!r}{hint}: {reason[:300]}. Set CHAI_STUDIO_CAPTIONER or --captioner to a "
                "local Qwen3-VL folder or hub id; `python -m studio tiny-models DIR` writes a tiny one for "
                "offline checks") from exc
        if processor is None or not hasattr(processor, "video_processor"):
            raise ModelLoadError(f"{name!r} has no video processor, so it is not a Qwen3-VL captioner; {SETTING_HINT}")
        log.info("captioner %s loaded on %s in %.1f s", name, device, time.perf_counter() - started)
        return cls(model, processor, name, pack=pack, max_new_tokens=max_new_tokens)

    @classmethod
    def from_config(cls, config: Any) -> "Captioner":
        """Load the captioner a `StudioConfig` names (where its model locations find it), prompted with
        the config's prompt pack."""
        return cls.from_pretrained(captioner_path(config), device=config.resolved_device(),
                                   dtype=config.resolved_dtype(), pack=PromptPack.for_config(config))

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def unload(self) -> None:
        """Drop the weights and free their (GPU) memory; `merge` falls back to the composer afterwards."""
        with self._lock:
            self.model = None
            self.processor = None
        _free_memory()

    def _require(self) -> None:
        if self.model is None:
            raise StudioError(f"the captioner {self.model_id!r} was unloaded; load it again to caption")

    @property
    def max_new_tokens(self) -> int:
        return self._max_new_tokens or self._checkpoint_max_new_tokens or DEFAULT_MAX_NEW_TOKENS

    @property
    def _checkpoint_max_new_tokens(self) -> int | None:
        """The cap the checkpoint's own generation config sets, if any (the real Qwen3-VL sets none)."""
        configured = getattr(getattr(self.model, "generation_config", None), "max_new_tokens", None)
        return int(configured) if configured else None

    # -- tasks ------------------------------------------------------------------------------------
    @_logged("caption")
    def caption(self, clip: Any, aspects: Sequence[str] = ASPECTS, two_stage: bool = False,
                on_text: OnText | None = None, max_new_tokens: int | None = None,
                instructions: dict[str, str] | None = None) -> dict[str, str]:
        """Caption each aspect of `clip` (a SampledClip or a path), all in one batched generate.

        With `two_stage`, Subject, Scene and Camera are written first; then Motion sees the Subject
        caption and Spatial sees Subject and Scene (CHAI's annotation order). `on_text(aspect,
        text_so_far)` is called as tokens arrive. `instructions`, when given, is filled with the
        exact instruction each aspect was written from (for the caption's provenance).
        """
        self._require()
        clip = as_clip(clip)
        aspects = aspect_list(aspects)
        sent = instructions if instructions is not None else {}

        def write(names: list[str], context: Mapping[str, str] | None, stream: OnText | None) -> dict[str, str]:
            prompts = [self.pack.instruction(a, context) for a in names]
            sent.update(zip(names, prompts))
            return dict(zip(names, self._generate(clip, prompts, names, stream, max_new_tokens)))

        if not two_stage:
            return write(aspects, None, on_text)
        first = [a for a in aspects if a not in STAGE_TWO_CONTEXT]
        second = [a for a in aspects if a in STAGE_TWO_CONTEXT]
        done = write(first, None, on_text) if first else {}
        if second:
            missing = sorted({c for a in second for c in STAGE_TWO_CONTEXT[a]} - set(done))
            if missing:  # the context aspects were not requested: write them first, not shown
                done.update(write(missing, None, None))
                for aspect in missing:
                    sent.pop(aspect, None)
            done.update(write(second, done, on_text))
        return {a: done[a] for a in aspects}

    @_logged("critique")
    def critique(self, clip: Any, aspect: str, caption: str, max_new_tokens: int | None = None,
                 on_text: OnText | None = None) -> str:
        """The model's critique of one aspect caption, judged against the aspect's instruction; when
        nothing needs changing it answers with the pack's no-change sentence (`says_no_change`)."""
        self._require()
        aspect, caption = aspect_name(aspect), checked_text(caption, "caption")
        prompt = self.pack.render("critique", aspect=aspect, caption=caption,
                                  instruction=self.pack.instruction(aspect))
        return self._generate(as_clip(clip), [prompt], [aspect], on_text, max_new_tokens)[0]

    def says_no_change(self, critique: str) -> bool:
        """Whether `critique` is the pack's no-change sentence (the caption should stay as it is)."""
        return self.pack.says_no_change(critique)

    @_logged("revise")
    def revise(self, clip: Any, aspect: str, caption: str, critique: str,
               structured: StructuredCaption | None = None, max_new_tokens: int | None = None,
               on_text: OnText | None = None) -> str:
        """Rewrite a caption to answer a critique. CHAI's revisions were written from the original
        caption with the critique as feedback; the prompt gives both, with the aspect's instruction
        as context. A critique that asks for no change returns the caption unchanged without a
        model call. With `structured`, the revision is recorded in that caption's history (source
        "model") so it can be undone."""
        self._require()
        aspect = aspect_name(aspect)
        caption, critique = checked_text(caption, "caption"), checked_text(critique, "critique")
        if self.says_no_change(critique):
            return caption
        prompt = self.pack.render("revise", aspect=aspect, caption=caption, critique=critique,
                                  instruction=self.pack.instruction(aspect))
        revised = self._generate(as_clip(clip), [prompt], [aspect], on_text, max_new_tokens)[0].strip()
        if structured is not None:
            structured.record_revision(aspect, critique, revised, source="model")
        return revised

    def reward(self, clip: Any, aspect: str, caption: str) -> float:
        """P(Yes) that `caption` matches the clip for `aspect` (see `rewards`)."""
        return self.rewards(clip, aspect, [caption])[0]

    @_logged("score")
    def rewards(self, clip: Any, aspect: str, captions: Sequence[str]) -> list[float]:
        """P(Yes) for each caption, as t2v_metrics (CHAI's released evaluation) computes it for
        Qwen3-VL: the softmax over the full vocabulary of the first answer token's logits, read at
        the "Yes" token. Mass the model puts on other tokens lowers the score, so it is comparable
        with CHAI's reported numbers. One batched forward pass (left padding keeps every row's last
        position the answer position).
        """
        import torch

        self._require()
        aspect = aspect_name(aspect)
        if not captions:
            return []
        prompts = [self.pack.render("reward", aspect=aspect, caption=checked_text(c, "caption")) for c in captions]
        clip = as_clip(clip)
        with self._lock:
            self._require()
            batch = self._encode(clip, prompts)
            with torch.inference_mode():
                logits = self.model(**batch).logits[:, -1, :].float()
        return [float(p) for p in torch.softmax(logits, dim=-1)[:, self._yes_id()]]

    def best_of_n(self, clip: Any, aspect: str, n: int = 4, temperature: float = 0.8, top_p: float = 0.95,
                  seed: int | None = None, max_new_tokens: int | None = None) -> list[tuple[str, float]]:
        """Sample `n` captions for one aspect (one batch) and rank them by reward, best first."""
        return [(c.text, c.reward) for c in self.candidates(clip, aspect, n, temperature, top_p, seed,
                                                            max_new_tokens)]

    @_logged("best_of_n")
    def candidates(self, clip: Any, aspect: str, n: int = 4, temperature: float = 0.8, top_p: float = 0.95,
                   seed: int | None = None, max_new_tokens: int | None = None,
                   current: str | None = None) -> list[Candidate]:
        """`best_of_n` with the aspect's `current` text scored in the same reward batch as the
        samples and ranked among them (marked `current`), so it is kept unless beaten."""
        import torch

        self._require()
        aspect = aspect_name(aspect)
        if not isinstance(n, int) or not 1 <= n <= 16:
            raise InputError(f"must be a whole number from 1 to 16, got {n!r}", "n")
        if not 0 < temperature <= 2:
            raise InputError(f"must be in (0, 2], got {temperature!r}", "temperature")
        clip = as_clip(clip)
        if seed is not None:
            torch.manual_seed(seed)
        prompts = [self.pack.instruction(aspect)] * n
        captions = self._generate(clip, prompts, [aspect] * n, None, max_new_tokens,
                                  sample=dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0))
        current = current.strip() if current else None
        scored = ([current] if current else []) + list(captions)
        scores = self.rewards(clip, aspect, [c if c.strip() else " " for c in scored])
        return rank_candidates(current, captions, scores)

    @_logged("merge")
    def merge(self, caption: StructuredCaption | Mapping[str, str], max_words: int = 260,
              max_new_tokens: int | None = None) -> str:
        """One paragraph from the five aspects, written by the model from text alone (no video).

        When the model is not loaded (e.g. after `unload`), the deterministic composer writes it.
        """
        structured = caption if isinstance(caption, StructuredCaption) else StructuredCaption.from_plain(caption)
        if structured.is_empty():
            raise InputError("every aspect is empty; caption the clip or write at least one aspect", "caption")
        if self.model is None:
            return compose_fallback(structured, max_words)
        texts = structured.texts()
        listed = "\n\n".join(f"{a}: {texts[a].strip()}" for a in ASPECTS if texts[a].strip())
        prompt = self.pack.render("merge", captions=listed, max_words=max_words)
        # About 1.3 tokens a word: twice the word budget leaves room without letting a rambling
        # model run on; a checkpoint that caps its own generation is held to that cap too.
        budget = max_new_tokens or min(MERGE_MAX_NEW_TOKENS, 2 * max_words,
                                       self._checkpoint_max_new_tokens or MERGE_MAX_NEW_TOKENS)
        merged = self._generate(None, [prompt], ["merge"], None, budget)[0].strip()
        return within_words(merged, max_words)

    # -- internals --------------------------------------------------------------------------------
    def _yes_id(self) -> int:
        """The first token of "Yes", as t2v_metrics encodes its answer."""
        encoded = self.processor.tokenizer.encode("Yes", add_special_tokens=False)
        if not encoded:
            raise ModelLoadError(f"the captioner's tokenizer cannot encode 'Yes'; {SETTING_HINT}")
        return encoded[0]

    def _encode(self, clip: Any, prompts: Sequence[str]):
        """Chat-format each prompt (with the clip's video when given) into one left-padded batch."""
        from transformers.video_utils import VideoMetadata

        content = [{"type": "video"}] if clip is not None else []
        texts = [
            self.processor.apply_chat_template(
                [{"role": "user", "content": content + [{"type": "text", "text": p}]}],
                add_generation_prompt=True, tokenize=False)
            for p in prompts
        ]
        kwargs: dict[str, Any] = {}
        if clip is not None:
            frames = clip.as_array()
            # Frame indices at the sampling rate give the prompt's "<t seconds>" stamps relative to
            # the start of the chosen range, which is what the captioner sees during training.
            metadata = VideoMetadata(total_num_frames=len(frames), fps=clip.fps,
                                     frames_indices=list(range(len(frames))), duration=clip.end - clip.start,
                                     width=frames.shape[2], height=frames.shape[1])
            # Frames sampled at the model's input size (qwen-vl-utils sizing) must not be resized again.
            video_kwargs = dict(video_metadata=[metadata] * len(texts), do_sample_frames=False)
            if clip.sized_for_model:
                video_kwargs["do_resize"] = False
            kwargs = dict(videos=[frames] * len(texts), videos_kwargs=video_kwargs)
        batch = self.processor(text=texts, padding=True, return_tensors="pt", **kwargs)
        batch = batch.to(self.model.device)
        if "pixel_values_videos" in batch:
            batch["pixel_values_videos"] = batch["pixel_values_videos"].to(self.model.dtype)
        return batch

    def _generate(self, clip: Any, prompts: Sequence[str], labels: Sequence[str], on_text: OnText | None,
                  max_new_tokens: int | None, sample: dict | None = None) -> list[str]:
        import torch

        self._require()
        with self._lock:
            self._require()
            batch = self._encode(clip, prompts)
            tokenizer = self.processor.tokenizer
            eos = eos_ids(self.model, tokenizer)
            streamer = BatchStreamer(tokenizer, list(labels), on_text, eos) if on_text else None
            options = sample or dict(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                output = self.model.generate(
                    **batch, max_new_tokens=max_new_tokens or self.max_new_tokens, eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id, streamer=streamer, **options)
            new = output[:, batch["input_ids"].shape[1]:]
            return [clean_text(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def _best_attention(device: str) -> str:
    if device == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def captioner_path(config: Any) -> str:
    """The captioner folder or id a config selects; tiny mode builds the tiny one on first use."""
    from ..tiny.locations import model_locations

    return model_locations(config).captioner()
