"""The CHAI captioner: caption, critique, revise, score and merge reference shots.

    Captioner.from_pretrained(path_or_id, device="auto", dtype=None) / Captioner.from_config(config)
    captioner.caption(clip, aspects=ASPECTS, two_stage=False, on_text=None) -> {aspect: text}
    captioner.critique(clip, aspect, caption) -> str
    captioner.revise(clip, aspect, caption, critique, structured=None) -> str
    captioner.reward(clip, aspect, caption) -> float      (P(Yes), full-vocabulary softmax)
    captioner.best_of_n(clip, aspect, n) -> [(caption, reward)], best first
    captioner.merge(caption) -> str                        (composer fallback when unloaded)
    captioner.unload()

    load_clip(config, path, start, end, shot) -> SampledClip   (sampled as the config's pack says)
    caption_clip(config, path, start, end, ...) -> StructuredCaption
    PromptPack.for_config(config)                          the words of every prompt (`packs`)

`clip` is a `studio.video.SampledClip` (or a path, sampled with the defaults). This module imports
torch and transformers only when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..caption.structured import ASPECTS, Provenance, StructuredCaption
from .model import Captioner, OnText, captioner_path
from .packs import PromptPack

__all__ = ["ASPECTS", "Captioner", "PromptPack", "caption_clip", "captioner_path", "load_clip"]


def load_clip(config: Any, path: str | Path, start: float | None = None, end: float | None = None,
              shot: int | None = None, fps: float | None = None, check_cuts: bool = True, sampling: Any = None):
    """Probe `path` against the config's length limit and sample the chosen shot or range as
    `sampling` (by default the config's prompt pack) says; `fps` overrides its rate."""
    from ..video import detect_shots, probe, resolve_range, sample_clip

    info = probe(path, config.max_clip_seconds)
    shots = detect_shots(path, info=info) if (check_cuts or shot is not None) else None
    lo, hi = resolve_range(info, start, end, shot, shots)
    return sample_clip(path, lo, hi, fps=fps, info=info, shots=shots, check_cuts=check_cuts,
                       sampling=sampling or PromptPack.for_config(config).sampling)


def caption_clip(config: Any, path: str | Path, start: float | None = None, end: float | None = None,
                 shot: int | None = None, *, captioner: Captioner, aspects: Sequence[str] = ASPECTS,
                 two_stage: bool = False, on_text: OnText | None = None,
                 on_warning: Callable[[str], None] | None = None, fps: float | None = None,
                 max_new_tokens: int | None = None, best_of: int = 1, seed: int | None = None,
                 score: bool = False, clip: Any = None) -> StructuredCaption:
    """Caption one shot of a clip into a StructuredCaption: the one road from a clip to a caption,
    for the page, the command line and the training dataset. Its provenance records the clip, the
    range, the model, the prompt pack (name, version, sha256) and the exact instruction each aspect
    was written from, so the caption can be reproduced and audited.

    Range warnings (a cut inside the range) go to `on_warning`. `captioner` is the loaded one (the
    process's shared one is `studio.session.SharedModels(config).captioner()`).
    `best_of` > 1 keeps, per aspect, the highest-reward of that many sampled captions; `score` (or
    `best_of`) records each aspect's reward. `clip` is an already sampled clip of `path` (the dataset
    samples long sources itself); without it the range is probed and sampled here.
    """
    # Sampled as the captioner's own pack says: the frames and the words come from one pack.
    clip = clip if clip is not None else load_clip(config, path, start, end, shot, fps,
                                                   sampling=captioner.pack.sampling)
    for warning in clip.warnings:
        if on_warning is not None:
            on_warning(warning)
    rewards: dict[str, float] = {}
    instructions: dict[str, str] = {}
    if best_of > 1:
        best = {a: captioner.best_of_n(clip, a, n=best_of, seed=seed, max_new_tokens=max_new_tokens)[0]
                for a in aspects}
        texts = {aspect: text for aspect, (text, _) in best.items()}
        rewards = {aspect: reward for aspect, (_, reward) in best.items()}
        instructions = {aspect: captioner.pack.instruction(aspect) for aspect in texts}
    else:
        texts = captioner.caption(clip, aspects, two_stage=two_stage, on_text=on_text, max_new_tokens=max_new_tokens,
                                  instructions=instructions)
    caption = StructuredCaption(provenance=Provenance(
        clip=str(path), start=round(clip.start, 3), end=round(clip.end, 3),
        models={"captioner": captioner.model_id}, source="captioner",
        prompt_pack=captioner.pack.manifest(), instructions=instructions))
    for aspect, text in texts.items():
        caption.set_text(aspect, text, config.max_aspect_chars)
    if score and not rewards:
        rewards = {a: captioner.rewards(clip, a, [caption.aspects[a].text or " "])[0] for a in texts}
    for aspect, reward in rewards.items():
        caption.aspects[aspect].reward, caption.aspects[aspect].reward_text = reward, caption.aspects[aspect].text
    caption.title = Path(path).stem
    return caption
