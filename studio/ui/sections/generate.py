"""4 · Generate: the comparison's settings, Generate/Cancel, the two players with live latent
previews, per-side progress and an ETA, downloads and the CHAI judge."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from ...errors import StudioError
from ...generation.presets import DEFAULT_PRESET, PRESETS, get_preset
from ...generation.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from ...session import Done, GenerateRequest, Plan, RunRequest, SideStep, Status
from ...session.finetunes import finetune_choices
from ...session.requests import FOLLOW_IMAGE
from ..context import (
    PageContext, log_failure, model_job, model_started, owner, shows_errors, takes_turns,
)
from ..formatting import error_line, eta_text, judge_markdown, step_bar
from ..zerogpu import CAPTION_DURATION, generation_seconds, gpu

COMPARISONS = [("Automatic", "auto"), ("Finetuned vs zero-shot", "finetuned"),
               ("CHAI prompt vs short prompt", "prompt"), ("Zero-shot only", "baseline")]
FOLLOW_IMAGE_CHOICE = ("Follow the start image (its aspect, the preset's area)", FOLLOW_IMAGE)
PREVIEW_EVERY = 1  # a latent preview each step: one small matrix product per step, no VAE decode


def preset_defaults(preset: str, tiny: bool) -> dict[str, Any]:
    spec = get_preset(preset, tiny=tiny)
    return dict(seconds=round(spec.duration, 2), max_seconds=round((spec.max_frames - 1) / spec.fps, 2),
                resolutions=list(spec.resolutions), steps=spec.steps, guidance=spec.guidance, shift=spec.shift)


def resolution_choices(preset: str, tiny: bool) -> list:
    """The preset's sizes, and for an image-start model the size that follows the start image."""
    spec = get_preset(preset, tiny=tiny)
    return list(spec.resolutions) + ([FOLLOW_IMAGE_CHOICE] if spec.supports_image else [])


def _gpu_seconds(section: Any, values: dict, *rest: Any, **kwargs: Any) -> int:
    """ZeroGPU: seconds to ask for, from the request's own settings."""
    frames = float(values.get(section.seconds) or 5) * 24 + 1
    chosen = str(values.get(section.resolution) or "1280x704")
    if chosen == FOLLOW_IMAGE:  # the same pixel area as the preset's size, whatever the aspect
        spec = get_preset(values.get(section.preset) or DEFAULT_PRESET, tiny=section.ctx.config.tiny)
        chosen = f"{spec.width}x{spec.height}"
    width, _, height = chosen.partition("x")
    return generation_seconds(values.get(section.steps), frames, width, height)


class GenerateSection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        config = ctx.config
        d = preset_defaults(DEFAULT_PRESET, config.tiny)
        with gr.Column(elem_id="section-generate", elem_classes=["studio-section"]):
            gr.Markdown("## 4 · Generate")
            if not config.finetuned and not config.tiny:
                gr.Markdown("No CHAI-finetuned weights are set: *Automatic* compares the CHAI prompt with a short "
                            "plain prompt on the zero-shot model. Pick weights from the models folder (*Finetuned weights*), or "
                            "start with `--finetuned PATH`.", elem_id="finetuned-missing")
            # Two columns, as on the official Wan Space: the settings with Generate beside the players,
            # so a change and its result are on one screen. On a phone the settings column comes first.
            with gr.Row(elem_id="generate-columns"):
                with gr.Column(scale=2, min_width=320, elem_id="generate-settings"):
                    self._settings(ctx, d)
                with gr.Column(scale=3, min_width=320, elem_id="generate-results"):
                    self._results()
            self.run_id = gr.State(None)  # the run shown in the players (what Judge scores)
            self.start_image = gr.State(None)  # a reloaded image-start run's own start image

    def _settings(self, ctx: PageContext, d: dict[str, Any]) -> None:
        config, limits = ctx.config, ctx.session.limits
        with gr.Row(equal_height=True):
            self.generate_button = gr.Button("Generate side by side", variant="primary", scale=2,
                                             elem_id="generate-button")
            self.cancel_button = gr.Button("Cancel", variant="stop", interactive=False, scale=1,
                                           elem_id="cancel-button")
        self.status = gr.Markdown("", elem_id="generate-status", elem_classes=["step-status"])
        self.profile = gr.Radio([(f"{p.name}: {p.description}", p.name) for p in PROFILES.values()],
                                value=DEFAULT_PROFILE, label="Speed profile", elem_id="speed-profile",
                                info="Sets the size, duration and steps below (then edit them freely) and "
                                     "the step cache the run uses. Draft to explore; final for the keeper.")
        with gr.Row():
            self.resolution = gr.Dropdown(resolution_choices(DEFAULT_PRESET, config.tiny),
                                          value=d["resolutions"][0], label="Resolution",
                                          allow_custom_value=True, elem_id="resolution", min_width=140)
            self.seconds = gr.Slider(0.1, d["max_seconds"], value=d["seconds"], step=0.1,
                                     label="Duration (s)", elem_id="duration", min_width=140)
            self.steps = gr.Slider(*limits.steps, value=d["steps"], step=1, label="Steps", elem_id="steps",
                                   min_width=140)
        self.comparison = gr.Radio(COMPARISONS, value="auto", label="Compare", elem_id="comparison-mode",
                                   info="Automatic: finetuned vs zero-shot when finetuned weights are "
                                        "set, else CHAI prompt vs short prompt.")
        with gr.Row(equal_height=True):
            self.finetune = gr.Dropdown(finetune_choices(config), value="", scale=3, elem_id="finetune-menu",
                                        label=f"Finetuned weights (from {Path(config.models_dir).name}/)")
            self.refresh_finetunes = gr.Button("Refresh list", size="sm", scale=1, elem_id="refresh-finetunes")
        with gr.Row():
            self.seed = gr.Number(label="Seed", value=42, precision=0, minimum=-1, maximum=limits.max_seed,
                                  info="-1: random", elem_id="seed", min_width=120)
            self.used_seed = gr.Number(label="Seed used", interactive=False, precision=0, elem_id="used-seed",
                                       min_width=120)
        with gr.Row():
            self.preset = gr.Radio([(p.label, name) for name, p in PRESETS.items()], value=DEFAULT_PRESET,
                                   label="Model", elem_id="model-preset")
            self.start_from_frame = gr.Checkbox(label="Start from the reference frame at Start (TI2V-5B)",
                                                value=False, elem_id="start-from-frame")
        with gr.Accordion("More settings", open=False, elem_id="generate-more-settings"):
            self.short_prompt = gr.Textbox(label="Short plain prompt (prompt mode)", lines=1, elem_id="short-prompt",
                                           placeholder="e.g. a man walks down a street at night")
            with gr.Row():
                self.guidance = gr.Slider(*limits.guidance, value=d["guidance"], step=0.1, label="Guidance")
                self.shift = gr.Slider(*limits.shift, value=d["shift"], step=0.5, label="Shift")
            self.negative = gr.Textbox(label="Negative prompt", value="", lines=2,
                                       max_length=limits.max_negative_chars,
                                       placeholder="Empty: the studio's default list of artefacts to avoid.")

    def _results(self) -> None:
        self.players: dict[str, dict[str, Any]] = {}
        with gr.Row(equal_height=True, elem_id="players"):
            for slot, label, elem in (("left", "CHAI-finetuned Wan2.2", "finetuned"),
                                      ("right", "Zero-shot Wan2.2", "zeroshot")):
                with gr.Column(min_width=150, elem_classes=["player"]):
                    self.players[slot] = dict(
                        preview=gr.Image(label=f"{label}: live preview", visible=False, interactive=False,
                                         height=240, elem_id=f"preview-{elem}"),
                        video=gr.Video(label=label, interactive=False, height=280, loop=True,
                                       elem_id=f"video-{elem}"),
                        progress=gr.Markdown("", elem_id=f"progress-{elem}"))
        with gr.Row(equal_height=True):
            self.downloads = gr.File(label="Downloads: side_by_side.mp4 and run.json", file_count="multiple",
                                     interactive=False, scale=3, elem_id="downloads")
            with gr.Column(scale=2, min_width=200):
                self.judge_button = gr.Button("Judge this run (CHAI reward per aspect)", interactive=False,
                                              elem_id="judge-button")
                self.judge_result = gr.Markdown("", elem_id="judge-result", elem_classes=["step-status"])

    @property
    def settings(self) -> list[Any]:
        return [self.preset, self.seconds, self.resolution, self.steps, self.guidance, self.shift, self.seed,
                self.negative, self.comparison, self.short_prompt, self.start_from_frame]

    @property
    def player_outputs(self) -> list[Any]:
        return [c for player in self.players.values() for c in player.values()]

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        reference, options = page.reference, dict(api_visibility="undocumented")
        self.preset.change(self.on_preset, {self.preset}, [self.seconds, self.resolution, self.steps, self.guidance,
                                                           self.shift], queue=False, **options)
        self.refresh_finetunes.click(self.on_refresh_finetunes, None, [self.finetune], queue=False, **options)
        self.generate_button.click(
            takes_turns(self.ctx, self.on_generate),
            {page.prompt.prompt, *self.settings, self.profile, self.finetune, self.start_image, reference.clip,
             reference.start, reference.end, *page.caption.inputs},
            [self.generate_button, self.cancel_button, self.judge_button, self.status, *self.player_outputs,
             self.downloads, self.used_seed, self.run_id, self.judge_result, *page.history.outputs],
            show_progress="hidden", **options, **model_job(self.ctx, blocks))
        self.cancel_button.click(self.on_cancel, None, [self.status], queue=False, **options)
        self.profile.change(self.on_profile, {self.profile, self.preset}, [self.seconds, self.resolution, self.steps],
                            api_visibility="undocumented")
        self.judge_button.click(takes_turns(self.ctx, self.on_judge), {self.run_id}, [self.judge_result, self.status,
                                                                                     *page.history.outputs],
                                show_progress="minimal", **options, **model_job(self.ctx, blocks))

    def on_preset(self, values: dict) -> dict:
        d = preset_defaults(values[self.preset], self.ctx.config.tiny)
        return {self.seconds: gr.update(value=d["seconds"], maximum=d["max_seconds"]),
                self.resolution: gr.update(choices=resolution_choices(values[self.preset], self.ctx.config.tiny),
                                           value=d["resolutions"][0]),
                self.steps: d["steps"], self.guidance: d["guidance"], self.shift: d["shift"]}

    def on_profile(self, values: dict) -> dict:
        """The chosen profile's size, duration and steps for the preset, shown in the controls."""
        spec = get_preset(values[self.preset] or DEFAULT_PRESET, tiny=self.ctx.config.tiny)
        scaled = get_profile(values[self.profile]).defaults(spec)
        return {self.seconds: round((scaled["frames"] - 1) / spec.fps, 2),
                self.resolution: f"{scaled['width']}x{scaled['height']}", self.steps: scaled["steps"]}

    def on_refresh_finetunes(self) -> dict:
        return {self.finetune: gr.update(choices=finetune_choices(self.ctx.config))}

    def request(self, values: dict) -> GenerateRequest:
        """The run the settings describe (checked once, by the session's rules)."""
        session, reference = self.ctx.session, self.page.reference
        start_image = described = None
        if values[reference.clip] and not values[self.start_from_frame]:
            # A text-start run still records the clip its caption describes: the judge's ceiling,
            # and what a reload of the run puts back in the Reference section.
            described = session.clip(values[reference.clip], values[reference.start], values[reference.end])
        if values[self.start_from_frame]:
            if values[reference.clip]:
                start_image = session.clip(values[reference.clip], values[reference.start])
            elif values[self.start_image]:
                start_image = Path(values[self.start_image])
            else:
                raise StudioError("starting from the reference frame needs a reference clip; upload one or untick "
                                  "the option")
        return GenerateRequest.from_user(
            session.limits, values[self.page.prompt.prompt], values[self.preset], tiny=self.ctx.config.tiny,
            seconds=values[self.seconds], resolution=values[self.resolution], steps=values[self.steps],
            guidance=values[self.guidance], shift=values[self.shift], seed=values[self.seed],
            negative_prompt=values[self.negative], mode=values[self.comparison],
            short_prompt=values[self.short_prompt], finetuned=values[self.finetune], start_image=start_image,
            caption=self.page.caption.read(values), preview_every=PREVIEW_EVERY,
            profile=values[self.profile], reference=described)

    @gpu(duration=_gpu_seconds)
    def on_generate(self, values: dict, request: gr.Request = None):
        """Streams the run: buttons swap, previews and progress per side, then the videos."""
        model_started(self.ctx, request)
        idle = {self.generate_button: gr.update(interactive=True), self.cancel_button: gr.update(interactive=False)}
        planned: list = []
        with self.ctx.cancellable(request) as cancel:
            try:
                run = self.request(values)
                yield {self.generate_button: gr.update(interactive=False),
                       self.cancel_button: gr.update(interactive=True), self.status: "Starting…",
                       self.judge_result: ""}
                yield from self._stream(run, cancel, request, planned)
                yield idle
            except Exception as exc:  # noqa: BLE001 - shown in place, calmly when it was a cancel
                cancelled = cancel.is_set()
                cancel.set()  # whatever failed, the model must not run on
                if cancelled:
                    message = "Cancelled: nothing was written. Your caption, prompt and settings are as they were."
                else:
                    log_failure(exc)
                    message = error_line(exc)
                # Refused before the run began: nothing else changes. Stopped during it: the players say so.
                players = self._players_reset("cancelled" if cancelled else "stopped") if planned else {}
                yield {**idle, self.status: message, **players}

    def _players_reset(self, state: str) -> dict:
        """Players back to their videos (previews hidden), progress lines saying how the run ended."""
        return {c: update for player in self.players.values() for c, update in (
            (player["preview"], gr.update(visible=False)), (player["video"], gr.update(visible=True)),
            (player["progress"], state))}

    def _stream(self, run: GenerateRequest, cancel: threading.Event, request: Any, planned: list):
        slots: dict[str, str] = {}
        labels: dict[str, str] = {}
        order: tuple[str, ...] = ()
        progress: dict[str, str] = {}
        for event in self.ctx.session.generate(run, cancel):
            if isinstance(event, Status):
                yield {self.status: event.message}
            elif isinstance(event, Plan):
                planned.append(event)
                slots = dict(zip((key for key, _ in event.sides), ("left", "right")))
                labels, order = dict(event.sides), event.order
                progress = {key: step_bar(labels[key], 0, run.settings.steps, _turn(key, order, labels))
                            for key in slots}
                yield {self.used_seed: event.seed,
                       self.status: f"{event.mode} mode · seed {event.seed} · {' | '.join(labels.values())}",
                       **{self.players[slots[k]]["progress"]: v for k, v in progress.items()},
                       **{self.players[slot]["video"]: gr.update(value=None, label=labels[key], visible=False)
                          for key, slot in slots.items()},
                       **{self.players[slot]["preview"]: gr.update(value=None, visible=True, label=f"{labels[key]}: "
                                                                   "live preview") for key, slot in slots.items()}}
            elif isinstance(event, SideStep):
                player = self.players[slots[event.side]]
                state = "done" if event.step >= event.total else "denoising"
                update = {player["progress"]: step_bar(event.label, event.step, event.total, state),
                          self.status: f"Generating {event.label}: step {event.step}/{event.total} · "
                                       f"{eta_text(event.eta_s)}"}
                if event.preview is not None:
                    update[player["preview"]] = gr.update(value=event.preview)
                yield update
            elif isinstance(event, Done):
                result = event.result
                self.ctx.session_runs.add(owner(request), Path(result.run_dir).name)
                yield {**self._shown_result(result, slots, labels), self.status: event.message,
                       **self.page.history.refreshed(request)}

    def _shown_result(self, result: Any, slots: dict[str, str], labels: dict[str, str]) -> dict:
        shown = {}
        for key, slot in slots.items():
            player = self.players[slot]
            shown[player["preview"]] = gr.update(visible=False)
            if key not in result.videos:  # a partial run: cancelled before this side finished
                shown[player["video"]] = gr.update(value=None, label=f"{labels[key]}: cancelled", visible=True)
                shown[player["progress"]] = "cancelled"
                continue
            shown[player["video"]] = gr.update(value=str(result.videos[key]), label=labels[key], visible=True)
            shown[player["progress"]] = step_bar(labels[key], result.settings.steps, result.settings.steps,
                                                     "done")
        if len(slots) == 1:
            shown[self.players["right"]["video"]] = gr.update(value=None, label="(not used in this mode)",
                                                               visible=True)
        files = [str(p) for p in (result.side_by_side_video or result.left_video, result.run_json)]
        return {**shown, self.downloads: files, self.used_seed: result.seed, self.run_id: Path(result.run_dir).name,
                self.judge_button: gr.update(interactive=True)}

    def on_cancel(self, request: gr.Request = None) -> dict:
        return {self.status: self.ctx.cancel_run(request)}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors(status="judge_result")
    def on_judge(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        run = RunRequest.from_user(values[self.run_id])
        judgement = self.ctx.session.judge(run.run_id)
        return {self.judge_result: judge_markdown(judgement), self.status: f"Judged run {run.run_id}.",
                **self.page.history.refreshed(request)}


def _turn(key: str, order: tuple[str, ...], labels: dict[str, str]) -> str:
    """Where a side stands before its first step, so the second player is never just 'waiting'."""
    if not order:
        return "runs alongside the other side"
    position = order.index(key)
    return "runs first" if position == 0 else f"runs after {labels[order[position - 1]]}"
