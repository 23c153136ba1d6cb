"""`RunWriter`: rendered sides in, one run folder out, with its videos and `run.json` record.

Apart from rendering because a run is also its provenance: the record says which weights (with
content hashes), which libraries and which settings made the videos, so `--from-run` can redo it
and the judge can find the reference clip. The writer is handed the `LoadedModels` (for the
record) and the frames the renderer made; the folder itself is written by `outputs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import outputs, provenance
from . import speed_adapter as sa
from .calibration import Calibration
from .comparison import BASELINE_MODEL, FINETUNED_MODEL, Side
from .loaded import LoadedModels
from .settings import GenerationSettings

log = logging.getLogger("studio.generation")


@dataclass
class RunResult:
    run_dir: Path
    baseline_video: Path | None  # None in prompt mode (its sides are chai_prompt and short_prompt)
    finetuned_video: Path | None  # None outside finetuned mode
    side_by_side_video: Path | None  # None for a one-sided (baseline) run
    run_json: Path
    posters: dict[str, Path]
    seed: int
    settings: GenerationSettings
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = "finetuned"
    sides: list[Side] = field(default_factory=list)
    videos: dict[str, Path] = field(default_factory=dict)  # side key -> video, left first
    missing_sides: list[str] = field(default_factory=list)  # planned sides a cancel stopped (a partial run)

    @property
    def partial(self) -> bool:
        return bool(self.missing_sides)

    @property
    def left_video(self) -> Path:
        return self.videos[self.sides[0].key]

    @property
    def right_video(self) -> Path | None:
        return self.videos[self.sides[1].key] if len(self.sides) > 1 else None


class RunWriter:
    """Writes the runs of one `LoadedModels`; the content hashes of its weights are computed once."""

    def __init__(self, models: LoadedModels):
        self.models = models
        self._hashes: dict[str, str | None] | None = None

    def write(self, out_dir: str | Path, prompt: str, settings: GenerationSettings, sides: list[Side],
              frames: dict[str, np.ndarray], timings: dict[str, float], *, mode: str, created: str, started: float,
              calibrations: dict[str, Calibration | None], caption=None, image: Image.Image | None = None,
              source_size: tuple[int, int] | None = None, image_source: str | None = None,
              short_prompt: str | None = None, reference: dict[str, Any] | None = None,
              from_run: str | None = None) -> RunResult:
        """One run folder from the frames of `sides` that finished (`frames` keyed by side) and the
        start `image` exactly as the models saw it; `calibrations` is each model's MagCache file."""
        # A cancel during a later side keeps the finished ones: the run is written with them and
        # marked partial, the planned-but-missing sides named (a finished video is never thrown away).
        missing = [side for side in sides if side.key not in frames]
        sides = [side for side in sides if side.key in frames]
        begin = time.perf_counter()
        videos = {side.key: outputs.to_uint8(frames[side.key]) for side in sides}
        if len(sides) == 2:
            videos["side_by_side"] = outputs.side_by_side(videos[sides[0].key], videos[sides[1].key],
                                                          labels=(sides[0].label, sides[1].label))
        record = self.run_record(prompt, settings, caption, created, image_source if image is not None else None)
        calibrated = {model: {} if found is None else {"step_cache_calibration": str(found.path)}
                      for model, found in calibrations.items()}
        record["comparison"] = {"mode": mode, "short_prompt": (short_prompt or "").strip() or None,
                                "sides": [{**side.to_dict(), "video": outputs.video_file(side.key),
                                           "frames_sha256": frames_hash(videos[side.key]),
                                           **calibrated.get(side.model, {})} for side in sides]}
        if missing:
            record["partial"] = True
            record["comparison"]["missing_sides"] = [side.to_dict() for side in missing]
            log.warning("cancelled: writing the finished %s side; %s missing", sides[0].key,
                        ", ".join(side.key for side in missing))
        record["reference"] = _reference_record(reference)
        if from_run:  # a kept draft rendered again at another profile: the history links the two
            record["from_run"] = from_run
        if image is not None:
            record["image"].update(file="start_image.png", fit="cover-crop", source_size=list(source_size))
        comment = json.dumps(record, ensure_ascii=False)
        with outputs.staged_run(out_dir, prompt) as run:
            if image is not None:
                image.convert("RGB").save(run.path("start_image.png"))
            names = {key: (run.video(key, video, settings.fps, comment), run.poster(key, video))
                     for key, video in videos.items()}
            timings["write_s"] = time.perf_counter() - begin
            timings["total_s"] = time.perf_counter() - started
            record["timings"] = {k: round(v, 4) for k, v in timings.items()}
            run_dir = run.commit(record)
        log.info("run %s written (%s mode) in %.1f s", run_dir.name, mode, timings["total_s"])
        paths = {key: run_dir / video for key, (video, _) in names.items()}
        posters = {key: run_dir / poster for key, (_, poster) in names.items()}
        return RunResult(run_dir, paths.get(BASELINE_MODEL), paths.get(FINETUNED_MODEL), paths.get("side_by_side"),
                         run_dir / "run.json", posters, settings.seed, settings, timings, mode=mode, sides=sides,
                         videos={side.key: paths[side.key] for side in sides},
                         missing_sides=[side.key for side in missing])

    def content_hashes(self) -> dict[str, str | None]:
        """sha256 of the local baseline folder and finetuned weights (computed once per generator)."""
        if self._hashes is None:
            finetuned = None
            finetune = self.models.finetune
            if finetune is not None:
                finetuned = provenance.local_content_hash(
                    str(finetune.weight_file) if finetune.weight_file else finetune.location)
            self._hashes = {"baseline": provenance.local_content_hash(self.models.baseline_location),
                            "finetuned": finetuned}
            if self.models.speed_adapter is not None:
                self._hashes["speed_adapter"] = provenance.local_content_hash(
                    str(self.models.speed_adapter.source.weight_file))
        return self._hashes

    def run_record(self, prompt: str, settings: GenerationSettings, caption, created: str,
                   image_source: str | None) -> dict[str, Any]:
        models = self.models
        caption_dict = caption.to_dict() if caption is not None and hasattr(caption, "to_dict") else caption
        finetuned = None if models.finetune is None else {
            "location": models.finetune.location, "kind": models.finetune.kind,
            "lora_scale": models.lora_scale if models.shares_base else None}
        return {
            "schema": outputs.RUN_SCHEMA, "version": outputs.RUN_SCHEMA_VERSION, "created": created,
            "prompt": prompt, "caption": caption_dict, "seed": settings.seed, "preset": models.preset.name,
            **({"preset_tiny": True} if models.preset.tiny else {}),
            "settings": settings.to_dict(),
            "models": {
                "baseline": {"location": models.baseline_location, "revision": models.baseline_revision,
                             "label": models.preset.label},
                "finetuned": finetuned,
            },
            "speed_adapter": self.speed_adapter_record(settings),
            "image": {"source": image_source} if image_source is not None else None,
            "runtime": {"memory_mode": models.placement.mode,
                        "devices": [models.placement.shared_device, models.placement.finetuned_device],
                        "concurrent": models.placement.concurrent,
                        "attention": models.attention, "attention_backend": models.attention_backend,
                        "compiled": models.compiled, "first_block_cache": models.first_block_cache,
                        "vae_tiling": models.vae_tiling, "dtype": str(models.baseline_transformers[0].dtype),
                        "precision": models.precision},
            "versions": {**provenance.library_versions(), "ffmpeg": provenance.ffmpeg_version()},
            "studio": provenance.studio_version(),
            "hashes": self.content_hashes(),
            "gpu": provenance.gpu_info(),
        }

    def speed_adapter_record(self, settings: GenerationSettings) -> dict[str, Any] | None:
        """Which speed LoRA ran, its content hash, the sampling it asked for and the values that ran."""
        speed = self.models.speed_adapter
        if speed is None:
            return None
        return {"location": speed.location, "adapter_name": sa.ADAPTER_NAME,
                "sha256": self.content_hashes().get("speed_adapter"),
                "sidecar": str(speed.sidecar) if speed.sidecar else None, "defaults": speed.defaults(),
                "used": {"steps": settings.steps, "guidance": settings.guidance, "guidance_2": settings.guidance_2,
                         "shift": settings.shift}}


def frames_hash(frames: np.ndarray) -> str:
    """sha256 of the uint8 frames before encoding: what `--from-run` compares (H.264 encoding on a
    shared machine is not always bit-stable, the model's output is)."""
    digest = hashlib.sha256(str(frames.shape).encode())
    digest.update(np.ascontiguousarray(frames).tobytes())
    return digest.hexdigest()


def _reference_record(reference: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reference clip's path, range and content hash, when the prompt came from one."""
    if not reference or not reference.get("clip"):
        return None
    clip = Path(reference["clip"])
    return {"clip": str(clip), "start": reference.get("start"), "end": reference.get("end"),
            "shot": reference.get("shot"), "sha256": provenance.content_hash(clip) if clip.is_file() else None}
