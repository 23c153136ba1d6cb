"""`SideBySideGenerator`: one prompt, one seed, one set of settings, two Wan2.2 models.

Composed the way diffusers composes a pipeline from its components: `load_generator` (loading.py)
builds the `LoadedModels`, and this object hands them to a `SideBySideRenderer` (the denoising
stages) and a `RunWriter` (the run folder and its record). The prompt and negative prompt go
through the text encoder once for both sides, and both sides start from the same initial noise,
drawn on the CPU from the seed so it does not depend on the device. A LoRA finetune shares even
the base transformer weights: the adapter is disabled for the zero-shot run and enabled (at
`lora_scale`) for the finetuned one.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from ..video.framing import cover_crop
from . import outputs
from .comparison import Side, plan_sides, resolve_mode
from .loaded import LoadedModels
from .rendering import SideBySideRenderer, StepCallback
from .run_writing import RunResult, RunWriter
from .settings import GenerationSettings


class SideBySideGenerator:
    """The loaded models, the renderer over them and the writer of their runs."""

    def __init__(self, models: LoadedModels):
        self.models = models
        self.renderer = SideBySideRenderer(models)
        self.writer = RunWriter(models)

    def plan(self, prompt: str, mode: str | None = None, short_prompt: str | None = None) -> tuple[str, list[Side]]:
        """The mode these models run for these inputs, and its sides (left first)."""
        chosen = resolve_mode(mode, self.models.has_finetune, short_prompt)
        return chosen, plan_sides(chosen, prompt, short_prompt, self.models.has_finetune)

    def generate(self, prompt: str, settings: GenerationSettings, caption=None, image: Image.Image | None = None,
                 on_step: StepCallback | None = None, cancel: threading.Event | None = None,
                 out_dir: str | Path | None = None, image_source: str | None = None, mode: str | None = None,
                 short_prompt: str | None = None, reference: dict[str, Any] | None = None,
                 from_run: str | None = None, sides: list[Side] | None = None) -> RunResult:
        """Render the sides of `mode` and write a new run directory under `out_dir` (default: outputs/).

        `mode` None picks finetuned with a finetune, else prompt with a short prompt, else baseline;
        a caller that planned already (the session, which plans before loading) passes the mode
        and its `sides`. `reference` ({"clip": path, "start": s, "end": s}) names the clip the
        caption came from; its hash goes into the record and the judge uses it as the ceiling.
        """
        started = time.perf_counter()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        out_dir = out_dir or "outputs"
        if sides is None:
            mode, sides = self.plan(prompt, mode, short_prompt)
        outputs.check_writable(out_dir, outputs.estimate_run_bytes(settings))  # before the long render
        source_size = image.size if isinstance(image, Image.Image) else None
        # The image exactly as the models see it (covered and centre-cropped, never stretched) is the
        # one rendered from and the one written as start_image.png.
        if isinstance(image, Image.Image):
            image = cover_crop(image, settings.width, settings.height)
        frames, timings = self.renderer.render_sides(sides, settings, image=image, on_step=on_step, cancel=cancel)
        calibrations = {side.model: self.renderer.magcache_calibration(side.model, settings) for side in sides}
        return self.writer.write(out_dir, prompt, settings, sides, frames, timings, mode=mode, created=created,
                                 started=started, calibrations=calibrations, caption=caption, image=image,
                                 source_size=source_size, image_source=image_source, short_prompt=short_prompt,
                                 reference=reference, from_run=from_run)
