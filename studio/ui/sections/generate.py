"""4 · Generate: the comparison's settings, Generate/Cancel, the two players with live latent
previews, per-side progress and an ETA, downloads and the CHAI judge."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from ...errors import StudioError
from ...generation.presets import DEFAULT_PRESET, PRESETS, Preset
from ...generation.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from ...research.explore import MAX_SEEDS, draw_seeds, explore, explore_one
from ...session import Done, GenerateRequest, Plan, RunRequest, SideStep, Status
from ...session.finetunes import finetune_choices
from ...session.requests import FOLLOW_IMAGE, request_again
from ...session.speed_adapters import speed_adapter_choices, speed_adapter_defaults, speed_adapter_location
from ..context import (
    PageContext, log_failure, model_job, model_started, owner, shows_errors, takes_turns,
)
from ..formatting import error_line, eta_text, judge_markdown, step_bar
from .. import zerogpu
from ..zerogpu import CAPTION_DURATION, gpu

COMPARISONS = [("Automatic", "auto"), ("Finetuned vs zero-shot", "finetuned"),
               ("CHAI prompt vs short prompt", "prompt"), ("Zero-shot only", "baseline")]
FOLLOW_IMAGE_CHOICE = ("Follow the start image (its aspect, the preset's area)", FOLLOW_IMAGE)
PREVIEW_EVERY = 1  # a latent preview each step: one small matrix product per step, no VAE decode


def preset_defaults(spec: Preset) -> dict[str, Any]:
    """A preset's defaults and limits, as the sliders and the size menu take them."""
    return dict(seconds=round(spec.duration, 2), max_seconds=round((spec.max_frames - 1) / spec.fps, 2),
                resolutions=list(spec.resolutions), steps=spec.steps, guidance=spec.guidance, shift=spec.shift)


def resolution_choices(spec: Preset) -> list:
    """The preset's sizes, and for an image-start model the size that follows the start image."""
    return list(spec.resolutions) + ([FOLLOW_IMAGE_CHOICE] if spec.supports_image else [])


def _render_seconds(section: Any, run: GenerateRequest, *rest: Any, **kwargs: Any) -> int:
    """ZeroGPU: seconds to ask for, from the checked request's own settings."""
    return zerogpu.request_seconds(run)


def _seed_seconds(section: Any, run: GenerateRequest, *rest: Any, **kwargs: Any) -> int:
    """ZeroGPU: one explored seed, rendered then judged."""
    return zerogpu.request_seconds(run) + CAPTION_DURATION


def profile_values(spec: Preset, profile: str) -> dict[str, Any]:
    """A profile's duration, resolution and steps for a preset, as the controls show them."""
    scaled = get_profile(profile).defaults(spec)
    return dict(seconds=round((scaled["frames"] - 1) / spec.fps, 2), steps=scaled["steps"],
                resolution=f"{scaled['width']}x{scaled['height']}")


def explore_label(count: Any) -> str:
    return f"Explore {count} seeds" if isinstance(count, (int, float)) and 1 <= count <= MAX_SEEDS else "Explore seeds"


def starting_profile(config: Any) -> str:
    """The profile the page opens with: draft on a ZeroGPU Space (the only one that fits its
    per-call limit), else the preset's own settings."""
    return "draft" if zerogpu.on_zerogpu() else DEFAULT_PROFILE


class GenerateSection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        config = ctx.config
        spec = ctx.session.locations.preset(DEFAULT_PRESET)
        d = preset_defaults(spec)
        d["resolution"] = d["resolutions"][0]
        d["resolution_choices"] = resolution_choices(spec)
        opening = starting_profile(config)
        if opening != DEFAULT_PROFILE:
            d.update(profile_values(spec, opening))
        with gr.Column(elem_id="section-generate", elem_classes=["studio-section"]):
            gr.Markdown("## 4 · Generate")
            if not ctx.session.locations.finetuned(DEFAULT_PRESET, build=False):
                gr.Markdown("No CHAI-finetuned weights are set: *Automatic* compares the CHAI prompt with a short "
                            "plain prompt on the zero-shot model. Pick weights from the models folder (*Finetuned weights*), or "
                            "start with `--finetuned PATH`.", elem_id="finetuned-missing")
            # Two columns, as on the official Wan Space: the settings with Generate beside the players,
            # so a change and its result are on one screen. On a phone the settings column comes first.
            with gr.Row(elem_id="generate-columns"):
                with gr.Column(scale=2, min_width=320, elem_id="generate-settings"):
                    self._settings(ctx, d, opening)
                with gr.Column(scale=3, min_width=320, elem_id="generate-results"):
                    self._results()
            self.run_id = gr.State(None)  # the run shown in the players (what Judge scores)
            self.start_image = gr.State(None)  # a reloaded image-start run's own start image

    def _settings(self, ctx: PageContext, d: dict[str, Any], opening: str) -> None:
        config, limits = ctx.config, ctx.session.limits
        with gr.Row(equal_height=True):
            self.generate_button = gr.Button("Generate side by side", variant="primary", scale=2,
                                             elem_id="generate-button")
            self.cancel_button = gr.Button("Cancel", variant="stop", interactive=False, scale=1,
                                           elem_id="cancel-button")
        self.status = gr.Markdown("", elem_id="generate-status", elem_classes=["step-status"])
        self.profile = gr.Radio([(f"{p.name}: {p.description}", p.name) for p in PROFILES.values()],
                                value=opening, label="Speed profile", elem_id="speed-profile",
                                info="Sets the size, duration and steps below (then edit them freely) and "
                                     "the step cache the run uses. Draft to explore; final for the keeper.")
        with gr.Row():
            self.resolution = gr.Dropdown(d["resolution_choices"],
                                          value=d["resolution"], label="Resolution",
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
            self.refresh_finetunes = gr.Button("Refresh lists", size="sm", scale=1, elem_id="refresh-finetunes")
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
            self.speed_adapter = gr.Dropdown(
                speed_adapter_choices(config), value="", elem_id="speed-adapter-menu",
                label=f"Speed adapter (from {Path(config.models_dir).name}/)",
                info="A step-distilled LoRA under both sides: picking one sets the steps, guidance and "
                     "shift it was distilled for (then edit them freely).")
            self.short_prompt = gr.Textbox(label="Short plain prompt (prompt mode)", lines=1, elem_id="short-prompt",
                                           placeholder="e.g. a man walks down a street at night")
            with gr.Row():
                self.guidance = gr.Slider(*limits.guidance, value=d["guidance"], step=0.1, label="Guidance")
                self.shift = gr.Slider(*limits.shift, value=d["shift"], step=0.5, label="Shift")
            self.negative = gr.Textbox(label="Negative prompt", value="", lines=2,
                                       max_length=limits.max_negative_chars,
                                       placeholder="Empty: the studio's default list of artefacts to avoid.")

    def _results(self) -> None:
        # Explore sits above its grid: N judged drafts from the Seed box on, best first; a click keeps
        # one, and Render final renders the run shown at the final profile.
        with gr.Row(equal_height=True, elem_id="explore-row"):
            self.explore_seeds = gr.Number(label="Seeds", value=4, precision=0, minimum=1, maximum=MAX_SEEDS,
                                           scale=1, min_width=80, elem_id="explore-seeds")
            self.explore_button = gr.Button(explore_label(4), scale=2, elem_id="explore-button")
            self.final_button = gr.Button("Render final", interactive=False, scale=2, elem_id="render-final-button")
        self.explore_grid = gr.Gallery(label="Explored seeds, best first: click one to keep it", columns=2,
                                       visible=False, allow_preview=False, interactive=False, elem_id="explore-grid")
        self.explore_runs = gr.State([])  # the grid's run ids, in its order
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
        self.refresh_finetunes.click(self.on_refresh_finetunes, None, [self.finetune, self.speed_adapter],
                                     queue=False, **options)
        self.speed_adapter.change(self.on_speed_adapter, {self.speed_adapter, self.profile, self.preset},
                                  [self.steps, self.guidance, self.shift, self.status], queue=False, **options)
        run_outputs = [self.generate_button, self.explore_button, self.cancel_button, self.judge_button,
                       self.final_button, self.status, *self.player_outputs, self.downloads, self.used_seed,
                       self.run_id, self.judge_result, *page.history.outputs]
        self.generate_button.click(
            takes_turns(self.ctx, self.on_generate),
            {page.prompt.prompt, *self.settings, self.profile, self.finetune, self.speed_adapter, self.start_image,
             reference.clip,
             reference.start, reference.end, *page.caption.inputs},
            run_outputs,
            show_progress="hidden", **options, **model_job(self.ctx, blocks))
        self.cancel_button.click(self.on_cancel, None, [self.status], queue=False, **options)
        self.final_button.click(
            takes_turns(self.ctx, self.on_render_final), {self.run_id, self.finetune, self.speed_adapter}, run_outputs,
            show_progress="hidden", **options, **model_job(self.ctx, blocks))
        self.explore_seeds.change(lambda count: gr.update(value=explore_label(count)), self.explore_seeds,
                                  self.explore_button, queue=False, **options)
        self.explore_button.click(
            takes_turns(self.ctx, self.on_explore),
            {page.prompt.prompt, *self.settings, self.profile, self.finetune, self.speed_adapter, self.start_image,
             self.explore_seeds, reference.clip, reference.start, reference.end, *page.caption.inputs},
            [self.generate_button, self.explore_button, self.cancel_button, self.status, self.explore_grid,
             self.explore_runs, *page.history.outputs],
            show_progress="hidden", **options, **model_job(self.ctx, blocks))
        self.explore_grid.select(self.on_keep, {self.explore_runs, *page.caption.inputs},
                                 [*page.history.reload_outputs(page), self.status], **options)
        self.profile.change(self.on_profile, {self.profile, self.preset, self.speed_adapter},
                            [self.seconds, self.resolution, self.steps],
                            api_visibility="undocumented")
        self.judge_button.click(takes_turns(self.ctx, self.on_judge), {self.run_id}, [self.judge_result, self.status,
                                                                                     *page.history.outputs],
                                show_progress="minimal", **options, **model_job(self.ctx, blocks))

    def on_preset(self, values: dict) -> dict:
        spec = self.ctx.session.locations.preset(values[self.preset])
        d = preset_defaults(spec)
        return {self.seconds: gr.update(value=d["seconds"], maximum=d["max_seconds"]),
                self.resolution: gr.update(choices=resolution_choices(spec),
                                           value=d["resolutions"][0]),
                self.steps: d["steps"], self.guidance: d["guidance"], self.shift: d["shift"]}

    def on_profile(self, values: dict) -> dict:
        """The chosen profile's size, duration and steps for the preset, shown in the controls."""
        shown = profile_values(self.ctx.session.locations.preset(values[self.preset] or DEFAULT_PRESET),
                               values[self.profile])
        try:  # a picked speed adapter's steps stay ahead of the profile's
            steps = speed_adapter_defaults(self.ctx.config, values[self.speed_adapter]).get("steps", shown["steps"])
        except StudioError:
            steps = shown["steps"]
        return {self.seconds: shown["seconds"], self.resolution: shown["resolution"], self.steps: steps}

    def on_speed_adapter(self, values: dict) -> dict:
        """The picked adapter's steps, guidance and shift in the sliders; without one, the profile's and
        the preset's again."""
        spec = self.ctx.session.locations.preset(values[self.preset] or DEFAULT_PRESET)
        try:
            wanted = speed_adapter_defaults(self.ctx.config, values[self.speed_adapter])
        except StudioError as exc:
            return {self.status: error_line(exc)}
        steps = get_profile(values[self.profile]).defaults(spec)["steps"]
        return {self.steps: wanted.get("steps", steps), self.guidance: wanted.get("guidance", spec.guidance),
                self.shift: wanted.get("shift", spec.shift), self.status: ""}

    def on_refresh_finetunes(self) -> dict:
        return {self.finetune: gr.update(choices=finetune_choices(self.ctx.config)),
                self.speed_adapter: gr.update(choices=speed_adapter_choices(self.ctx.config))}

    def request(self, values: dict, at_profile: str | None = None) -> GenerateRequest:
        """The run the settings describe (checked once, by the session's rules). `at_profile`: the
        same prompt, mode and guidance with that profile's size, length and steps (Explore's drafts)."""
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
        sized = at_profile is None
        return GenerateRequest.from_user(
            session.limits, values[self.page.prompt.prompt], values[self.preset],
            locations=session.locations,
            seconds=values[self.seconds] if sized else None, resolution=values[self.resolution] if sized else None,
            steps=values[self.steps] if sized else None,
            guidance=values[self.guidance], shift=values[self.shift], seed=values[self.seed],
            negative_prompt=values[self.negative], mode=values[self.comparison],
            short_prompt=values[self.short_prompt], finetuned=values[self.finetune], start_image=start_image,
            caption=self.page.caption.read(values), preview_every=PREVIEW_EVERY,
            profile=at_profile or values[self.profile], reference=described,
            speed_adapter=speed_adapter_location(self.ctx.config, values[self.speed_adapter]))

    def on_generate(self, values: dict, request: gr.Request = None):
        """Streams the run: buttons swap, previews and progress per side, then the videos."""
        yield from self._checked_render(lambda: self.request(values), request)

    def on_render_final(self, values: dict, request: gr.Request = None):
        """The run shown (a kept draft) again at the final profile: same prompt, seed, mode, guidance
        and start image, with the weights now picked; the history links the two."""
        def final() -> GenerateRequest:
            from ...generation import load_run_by_id

            shown = RunRequest.from_user(values[self.run_id]).run_id
            run = load_run_by_id(self.ctx.config.output_dir, shown)
            return dataclasses.replace(request_again(run, run["run_dir"], "final"), finetuned=values[self.finetune] or "",
                                       speed_adapter=speed_adapter_location(self.ctx.config, values[self.speed_adapter]))

        yield from self._checked_render(final, request)

    def _checked_render(self, build, request: Any):
        """The request built and checked (and sized against ZeroGPU's per-call limit) before a GPU
        is asked for; a refusal is one status line and changes nothing else."""
        model_started(self.ctx, request)  # first: a refused job must not stay counted as pending
        try:
            run = build()
            if zerogpu.on_zerogpu():
                zerogpu.check_fits(run, self.ctx.config.zerogpu_seconds, self.ctx.session.locations)
        except Exception as exc:  # noqa: BLE001 - shown in place
            log_failure(exc)
            yield {**self._buttons(busy=False), self.status: error_line(exc)}
            return
        yield from self._render(run, request)

    def _buttons(self, busy: bool) -> dict:
        """Generate and Explore off and Cancel on while a run is going; the reverse after it."""
        return {self.generate_button: gr.update(interactive=not busy), self.explore_button:
                gr.update(interactive=not busy), self.cancel_button: gr.update(interactive=busy)}

    @gpu(duration=_render_seconds)
    def _render(self, run: GenerateRequest, request: Any = None):
        idle = self._buttons(busy=False)
        planned: list = []
        with self.ctx.cancellable(request) as cancel:
            try:
                yield {**self._buttons(busy=True), self.status: "Starting…", self.judge_result: ""}
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

    def on_explore(self, values: dict, request: gr.Request = None):
        """N draft runs of the prompt, judged and ranked; the grid shows them best first."""
        config = self.ctx.config
        model_started(self.ctx, request)
        try:
            run = self.request(values, at_profile="draft")
            seed = values[self.seed]
            seeds = draw_seeds(values[self.explore_seeds], None if seed in (None, -1) else seed)
            if zerogpu.on_zerogpu():  # a seed per GPU call: each must fit on its own
                zerogpu.check_fits(run, config.zerogpu_seconds - CAPTION_DURATION, self.ctx.session.locations)
        except Exception as exc:  # noqa: BLE001 - shown in place
            log_failure(exc)
            yield {**self._buttons(busy=False), self.status: error_line(exc)}
            return
        busy, idle = self._buttons(busy=True), self._buttons(busy=False)
        def one(session: Any, draft: GenerateRequest, seed: int, cancel: Any = None) -> dict:
            return self._explore_seed(draft, seed, cancel, request)

        with self.ctx.cancellable(request) as cancel:
            try:
                yield {**busy, self.status: f"Exploring {len(seeds)} seeds at the draft profile…",
                       self.explore_grid: gr.update(value=None, visible=False)}
                for event in explore(self.ctx.session, run, seeds, cancel, one=one):
                    if isinstance(event, Status):
                        yield {self.status: event.message}
                    elif isinstance(event, Done):
                        ranking = event.result["ranking"]
                        yield {**idle, self.status: event.message + " Click one to keep it.",
                               self.explore_grid: gr.update(value=[(e["video"], grid_caption(place, e)) for place, e
                                                                   in enumerate(ranking, 1)], visible=True),
                               self.explore_runs: [e["run"] for e in ranking], **self.page.history.refreshed(request)}
            except Exception as exc:  # noqa: BLE001 - shown in place; the seeds already judged stay in the history
                if not cancel.is_set():
                    log_failure(exc)
                cancel.set()
                yield {**idle, self.status: error_line(exc), **self.page.history.refreshed(request)}

    @gpu(duration=_seed_seconds)
    def _explore_seed(self, run: GenerateRequest, seed: int, cancel: Any = None, request: Any = None) -> dict:
        """One seed rendered and judged, its run added to this visitor's history."""
        entry = explore_one(self.ctx.session, run, seed, cancel)
        self.ctx.session_runs.add(owner(request), entry["run"])
        return entry

    def on_keep(self, values: dict, selected: gr.SelectData, request: gr.Request = None) -> dict:
        """A grid entry clicked: that run in the players (as a history reload), ready for Render final."""
        runs = values[self.explore_runs] or []
        index = selected.index if isinstance(selected.index, int) else -1
        if not 0 <= index < len(runs):
            return {self.status: "That seed is no longer in the grid; explore again."}
        shown = self.page.history.on_pick(values, runs[index], request)
        return {**shown, self.status: f"Kept run {runs[index]}: *Render final* renders it at the final profile."}

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
                self.judge_button: gr.update(interactive=True), self.final_button: gr.update(interactive=True)}

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


def grid_caption(place: int, entry: dict) -> str:
    margin = "" if entry["margin"] is None else f" ({entry['margin']:+.3f} over zero-shot)"
    return f"#{place} · seed {entry['seed']} · {entry['ranked_side']} {entry['score']:.3f}{margin}"


def _turn(key: str, order: tuple[str, ...], labels: dict[str, str]) -> str:
    """Where a side stands before its first step, so the second player is never just 'waiting'."""
    if not order:
        return "runs alongside the other side"
    position = order.index(key)
    return "runs first" if position == 0 else f"runs after {labels[order[position - 1]]}"
