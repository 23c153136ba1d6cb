"""The two per-shot stages of a dataset build, shared by the in-process and the Ray runs.

`CaptionStage`: task -> caption (cached, hand-written, or the CHAI captioner's, with rewards).
`EncodeStage`: captioned task -> manifest row, writing the shot's shard of latents and embeddings.
Each holds its model once and loads it on the first shot that needs it. `build_dataset` runs both
in this process, one model at a time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..caption.structured import ASPECTS, StructuredCaption
from ..config import StudioConfig
from ..errors import InputError, StudioError
from ..generation.presets import get_preset
from .dataset import DatasetSpec, DatasetSummary, ShotTask, prepare
from .folder import DatasetFolder, Skip

log = logging.getLogger("studio.training.dataset")


class CaptionStage:
    """Task -> task with its caption: the cached one, the hand-written one, or the captioner's.

    The captioner is loaded on the first shot that needs it, so a resumed run whose captions are all
    cached (or hand-written) never loads it.
    """

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str | Path):
        self.config, self.spec, self.folder = config, spec, DatasetFolder(root)
        self.captioner = None

    def __call__(self, task: ShotTask) -> dict[str, Any]:
        cached = self.folder.caption_path(task.caption_key)
        if cached.is_file():
            return json.loads(cached.read_text())
        if task.caption_file:
            caption = StructuredCaption.load(task.caption_file, self.config.max_aspect_chars)
            result = {"caption": caption.to_dict(), "rewards": {a: None for a in ASPECTS}, "source": "user"}
        else:
            result = self._model_caption(task)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(cached.name + ".partial")
            partial.write_text(json.dumps(result, ensure_ascii=False))
            partial.replace(cached)
        return result

    def _model_caption(self, task: ShotTask) -> dict[str, Any]:
        from ..captioner import PromptPack, caption_clip
        from ..session.models import SharedModels
        from ..video import sample_clip

        if self.captioner is None:
            self.captioner = SharedModels(self.config).captioner()
        # A source may be far longer than a reference clip: the shot is sampled here, without the
        # page's length limit, and captioned on the same road as every other clip.
        clip = sample_clip(task.clip, task.start, task.end, max_seconds=None, check_cuts=False,
                           sampling=PromptPack.for_config(self.config).sampling)
        caption = caption_clip(self.config, task.clip, aspects=ASPECTS, two_stage=self.spec.two_stage,
                               captioner=self.captioner, max_new_tokens=self.spec.max_new_tokens,
                               best_of=self.spec.best_of, seed=int(task.caption_key[:8], 16), score=True, clip=clip)
        caption.provenance.clip, caption.provenance.start, caption.provenance.end = task.clip, task.start, task.end
        caption.title = ""
        rewards = {a: caption.aspects[a].reward for a in ASPECTS}
        return {"caption": caption.to_dict(), "rewards": rewards, "source": "captioner"}

    def close(self) -> None:
        """Free the captioner before the encoders load (both may not fit in GPU memory at once)."""
        if self.captioner is not None:
            from ..session.models import unload_captioner

            self.captioner = None
            unload_captioner()


class EncodeStage:
    """Captioned task -> manifest row, writing the shot's shard (latents + prompt embeddings)."""

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str | Path):
        self.config, self.spec, self.folder = config, spec, DatasetFolder(root)
        self.encoders = None

    def __call__(self, task: ShotTask, captioned: dict[str, Any]) -> dict[str, Any]:
        from ..compose import ComposeOptions, compose
        from ..video import MAX_FRAME_PIXELS, sample_clip
        from .encoders import TrainingEncoders, fit_frames, write_shard

        if self.encoders is None:
            self.encoders = TrainingEncoders.from_config(self.config, get_preset(self.spec.preset))
        caption = StructuredCaption.from_dict(captioned["caption"], self.config.max_aspect_chars)
        prompt = compose(caption, ComposeOptions(max_words=self.spec.prompt_words),
                         tokenizer=self.encoders.tokenizer).prompt
        if not prompt.strip():
            raise InputError("the caption has no text to compose a prompt from", "caption")
        clip = sample_clip(task.clip, task.start, task.end, fps=self.spec.fps, max_seconds=None, check_cuts=False,
                           max_pixels=self.spec.frames * MAX_FRAME_PIXELS)
        frames = clip.frames[: self.spec.frames]
        if len(frames) < self.spec.frames:
            raise InputError(f"only {len(frames)} of {self.spec.frames} frames could be read", "clip")
        latents = self.encoders.encode_video(fit_frames(frames, self.spec.width, self.spec.height))
        embeds = self.encoders.encode_prompt(prompt)
        shard = self.folder.shard_name(task.key)
        write_shard(self.folder.root / shard, {"latents": latents, "prompt_embeds": embeds},
                    {"clip_sha256": task.clip_sha256, "key": task.key})
        return {
            "key": task.key, "clip": task.clip, "clip_sha256": task.clip_sha256, "shot": task.shot,
            "start": task.start, "end": task.end, "shot_start": task.shot_start, "shot_end": task.shot_end,
            "caption": captioned["caption"], "caption_source": captioned["source"], "prompt": prompt,
            "rewards": captioned["rewards"],
            "latents": {"shard": shard, "key": "latents", "shape": list(latents.shape)},
            "embeddings": {"shard": shard, "key": "prompt_embeds", "tokens": int(embeds.shape[0]),
                           "dim": int(embeds.shape[1])},
            "preset": self.spec.preset, "height": self.spec.height, "width": self.spec.width,
            "frames": self.spec.frames, "fps": self.spec.fps,
        }

    def close(self) -> None:
        self.encoders = None


def build_dataset(config: StudioConfig, clips: str | Path, out: str | Path, spec: DatasetSpec,
                  progress: Callable[[str, int], Any] | None = None) -> DatasetSummary:
    """Caption and encode every missing shot in this process: all captions first (one model at a
    time in memory), then all encodings. `progress(stage, total)` returns a bar with `update()`."""
    began = time.perf_counter()
    folder, missing, skips, existing = prepare(config, clips, out, spec)
    log.info("dataset %s: %d shots to build, %d already built, %d skipped", folder.root, len(missing), existing,
             len(skips))
    summary = DatasetSummary(kept=existing, new=0)
    captioned: dict[str, dict] = {}
    captions = CaptionStage(config, spec, folder.root)
    try:
        _each(missing, lambda task: captioned.__setitem__(task.key, captions(task)), "caption-failed", skips,
              progress and (lambda total: progress("caption", total)))
    finally:
        summary.loaded_captioner = captions.captioner is not None
        captions.close()
    encoder = EncodeStage(config, spec, folder.root)

    def encode(task: ShotTask) -> None:
        folder.append_row(encoder(task, captioned[task.key]))
        summary.new += 1

    try:
        _each([t for t in missing if t.key in captioned], encode, "encode-failed", skips,
              progress and (lambda total: progress("encode", total)))
    finally:
        summary.loaded_encoders = encoder.encoders is not None
        encoder.close()
    return summary.finish(folder, skips, began)


def _each(tasks: list[ShotTask], work: Callable[[ShotTask], None], reason: str, skips: list[Skip],
          progress: Callable[[int], Any] | None) -> None:
    """`work` on every task; a task it refuses (a `StudioError`) becomes a skip, and the run goes on."""
    bar = progress(len(tasks)) if progress else None
    try:
        for task in tasks:
            try:
                work(task)
            except (StudioError, OSError) as exc:  # a file that vanished or broke mid-run is one skip
                skips.append(Skip(task.clip, reason, str(exc), task.shot, task.start, task.end))
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
