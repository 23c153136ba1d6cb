"""The dataset build on Ray Data: captioning and encoding as two `map_batches` stages.

Each stage is a pool of actors, one per GPU (each holding its model once), fed one shot at a time;
the driver plans the work exactly as the in-process build does and writes the manifest from the
stream of finished rows, in plan order, so the manifest is the same either way. Shards and caption
files are written by the actors straight into the dataset folder: on a cluster it must be on a
filesystem every node sees at the same path, as must the clips.

Ray is imported here only (and in `studio.ray_cluster`), never by the page or the Space.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..config import StudioConfig
from ..errors import StudioError
from .dataset import DatasetSpec, DatasetSummary, ShotTask, prepare
from .folder import Skip
from .stages import CaptionStage, EncodeStage


class RayCaptionStage:
    """`map_batches` callable: a batch of task JSON strings -> the same plus each caption (or an error)."""

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str):
        self.stage = CaptionStage(config, spec, root)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        captioned, errors = [], []
        for text in batch["task"]:
            try:
                captioned.append(json.dumps(self.stage(ShotTask.from_json(text))))
                errors.append("")
            except (StudioError, OSError) as exc:
                captioned.append("")
                errors.append(str(exc))
        return {"task": list(batch["task"]), "captioned": captioned, "error": errors}


class RayEncodeStage:
    """`map_batches` callable: captioned tasks -> manifest rows as JSON (or the error that stopped one)."""

    def __init__(self, config: StudioConfig, spec: DatasetSpec, root: str):
        self.stage = EncodeStage(config, spec, root)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows, errors = [], []
        for text, captioned, error in zip(batch["task"], batch["captioned"], batch["error"]):
            if error:  # captioning failed upstream: pass the reason through
                rows.append("")
                errors.append("caption-failed\t" + error)
                continue
            try:
                rows.append(json.dumps(self.stage(ShotTask.from_json(text), json.loads(captioned)),
                                       ensure_ascii=False))
                errors.append("")
            except (StudioError, OSError) as exc:
                rows.append("")
                errors.append("encode-failed\t" + str(exc))
        return {"task": list(batch["task"]), "row": rows, "error": errors}


def build_dataset_on_ray(config: StudioConfig, clips: str | Path, out: str | Path, spec: DatasetSpec,
                         address: str | None = None, workers: int | None = None,
                         progress: Callable[[str, int], Any] | None = None) -> DatasetSummary:
    began = time.perf_counter()
    folder, missing, skips, existing = prepare(config, clips, out, spec)
    summary = DatasetSummary(kept=existing, new=0)
    if not missing:  # nothing to do: no cluster is started or joined
        return summary.finish(folder, skips, began)
    import ray

    from ..ray_cluster import init_ray

    started_here = init_ray(address, num_cpus=workers)
    bar = progress("caption+encode", len(missing)) if progress else None
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # manifest rows in plan order, as in-process
        context.enable_progress_bars = False
        stage_options = {"batch_size": 1, "concurrency": workers or max(1, gpus), "num_gpus": 1 if gpus else 0,
                         "fn_constructor_args": (config, spec, str(folder.root))}
        rows = (ray.data.from_items([{"task": t.to_json()} for t in missing])
                .map_batches(RayCaptionStage, **stage_options)
                .map_batches(RayEncodeStage, **stage_options))
        summary.loaded_captioner = summary.loaded_encoders = True
        for result in rows.iter_rows():
            if result["row"]:
                folder.append_row(json.loads(result["row"]))
                summary.new += 1
            else:
                task = ShotTask.from_json(result["task"])
                reason, _, detail = result["error"].partition("\t")
                skips.append(Skip(task.clip, reason, detail, task.shot, task.start, task.end))
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
        if started_here:
            ray.shutdown()
    return summary.finish(folder, skips, began)
