"""The page's API for scripts (gradio_client): one endpoint per session step, plain JSON in and out.

    client.predict(handle_file("clip.mp4"), 0, 3.2, None, False, api_name="/caption")  # -> caption JSON

A bad value fails the call with the same one-line message the page and the command line give
(the session's request objects check it). The page's own events are separate and undocumented.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gradio as gr

from .. import schemas
from ..errors import InputError
from ..session import (
    AspectRequest, BestOfRequest, CaptionRequest, ComposeRequest, Done, GenerateRequest, RunRequest, RunView,
    caption_from_user,
)
from ..research.explore import draw_seeds, explore, explore_one
from ..session.finetunes import finetune_choices, finetune_location
from ..session.requests import request_again
from ..session.speed_adapters import speed_adapter_location
from . import zerogpu
from .context import PageContext, model_job, model_started, owner, raises_errors, session_id, takes_turns
from .zerogpu import CAPTION_DURATION, gpu

GENERATE_FIELDS = schemas.field_names(schemas.GenerateSettings)


def run_json(view: RunView) -> dict[str, Any]:
    # Scripts get file names: where the server keeps uploads and runs is not theirs to know.
    reference = dict(view.reference or {}) or None
    if reference and reference.get("clip"):
        reference["clip"] = Path(reference["clip"]).name
    return {"run_id": view.run_id, "prompt": view.prompt, "settings": view.settings,
            "caption": view.caption.to_dict() if view.caption else None, "reference": reference,
            "videos": [{"label": label, "file": Path(video).name if video else None} for label, video in view.videos],
            "message": view.message}


def _settings(model: type[schemas.Strict], settings: Any) -> dict[str, Any]:
    """A `settings` payload checked as `model`: the keys the script sent (null is "not set")."""
    fields = schemas.field_names(model)

    def unknown(where: str, names: list[str]) -> InputError:
        return InputError(f"unknown field(s) {', '.join(names)}; the fields are {', '.join(sorted(fields))}",
                          "settings", "unknown-key")

    if settings is None:
        return {}
    checked = schemas.read(model, settings, "settings", unknown=unknown)
    return {name: value for name, value in checked.given().items() if value is not None}


class ScriptApi:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.finetune_picks: dict[str, str] = {}
        with gr.Column(visible=False):
            # Named as the endpoints' parameters are (gradio_client accepts them as keywords). No
            # Number has a precision: gradio would round 2.5 to 2 and turn true into 1 before the
            # handler saw them, where the session's number rule refuses both.
            self.field = {
                "clip": gr.File(label="clip", type="filepath"), "start": gr.Number(label="start", value=None),
                "end": gr.Number(label="end", value=None), "shot": gr.Number(label="shot", value=None),
                "two_stage": gr.Checkbox(label="two_stage", value=True), "aspect": gr.Textbox(label="aspect"),
                "text": gr.Textbox(label="text"), "critique": gr.Textbox(label="critique"),
                "n": gr.Number(label="n", value=4), "caption": gr.JSON(label="caption"),
                "mode": gr.Textbox(label="mode", value="Extractive"),
                "max_words": gr.Number(label="max_words", value=None), "prompt": gr.Textbox(label="prompt"),
                "settings": gr.JSON(label="settings"), "run_id": gr.Textbox(label="run_id"),
                "run_file": gr.File(label="run_file", type="filepath"), "finetuned": gr.Textbox(label="finetuned"),
                "seeds": gr.Number(label="seeds", value=4),
            }
            self.result = gr.JSON(label="result")
            self.text_result = gr.Textbox(label="result")
            self.number_result = gr.Number(label="result")
            self.files = gr.File(label="files", file_count="multiple")
            self.buttons = {name: gr.Button(name) for name in (
                "caption", "critique", "revise", "score", "score_all", "best_of_n", "compose", "generate",
                "explore", "render_final", "cancel", "reload_run", "judge", "import_run", "list_finetunes", "pick_finetune", "history")}

    def wire(self, blocks: gr.Blocks) -> None:
        model = model_job(self.ctx, blocks)
        both = [self.result, self.files]
        endpoints = {  # name: (parameters, outputs, event options)
            "caption": ("clip start end shot two_stage", self.result, model),
            "critique": ("clip start end aspect text", self.text_result, model),
            "revise": ("clip start end aspect text critique", self.text_result, model),
            "score": ("clip start end aspect text", self.number_result, model),
            "score_all": ("clip start end caption", self.result, model),
            "best_of_n": ("clip start end aspect n", self.result, model),
            "compose": ("caption mode max_words", self.result, {}),
            "generate": ("prompt settings clip start caption", both, model),
            "explore": ("prompt settings clip start caption seeds", self.result, model),
            "render_final": ("run_id settings", both, model),
            "judge": ("run_id", self.result, model),
            "cancel": ("", self.text_result, dict(queue=False)),
            "reload_run": ("run_id", both, {}),
            "import_run": ("run_file", self.result, {}),
            "list_finetunes": ("", self.result, dict(queue=False)),
            "pick_finetune": ("finetuned", self.text_result, dict(queue=False)),
            "history": ("", self.result, {}),
        }
        for name, (parameters, outputs, options) in endpoints.items():
            inputs = [self.field[p] for p in parameters.split()]
            handler = raises_errors(getattr(self, f"on_{name}"))
            if options is model:
                handler = takes_turns(self.ctx, handler)
            handler.__name__ = name  # the MCP server names each tool after its function: the endpoint's name
            self.buttons[name].click(handler, inputs, outputs, api_name=name, **options)

    def _clip(self, clip: Any, start: Any, end: Any, shot: Any = None):
        return self.ctx.session.clip(clip, start, end, shot)

    # -- captioning ------------------------------------------------------------------------------
    @gpu(duration=CAPTION_DURATION)
    def on_caption(self, clip: Any, start: Any, end: Any, shot: Any, two_stage: bool, request: gr.Request = None):
        model_started(self.ctx, request)
        session = self.ctx.session
        caption_request = CaptionRequest.from_user(self._clip(clip, start, end, shot), session.limits,
                                                   two_stage=two_stage)
        for event in session.caption(caption_request):
            if isinstance(event, Done):
                return event.result.to_dict()
        return None

    @gpu(duration=CAPTION_DURATION)
    def on_critique(self, clip: Any, start: Any, end: Any, aspect: Any, text: Any, request: gr.Request = None) -> str:
        model_started(self.ctx, request)
        limits = self.ctx.session.limits
        return self.ctx.session.critique(AspectRequest.from_user(self._clip(clip, start, end), limits, aspect, text,
                                                                 verb="critique"))

    @gpu(duration=CAPTION_DURATION)
    def on_revise(self, clip: Any, start: Any, end: Any, aspect: Any, text: Any, critique: Any,
               request: gr.Request = None) -> str:
        model_started(self.ctx, request)
        limits = self.ctx.session.limits
        return self.ctx.session.revise(AspectRequest.from_user(self._clip(clip, start, end), limits, aspect, text,
                                                               critique, verb="revise", needs_critique=True))

    @gpu(duration=CAPTION_DURATION)
    def on_score(self, clip: Any, start: Any, end: Any, aspect: Any, text: Any, request: gr.Request = None) -> float:
        model_started(self.ctx, request)
        limits = self.ctx.session.limits
        return self.ctx.session.score(AspectRequest.from_user(self._clip(clip, start, end), limits, aspect, text))

    @gpu(duration=CAPTION_DURATION)
    def on_score_all(self, clip: Any, start: Any, end: Any, caption: Any, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        session = self.ctx.session
        return session.score_all(self._clip(clip, start, end), caption_from_user(caption, session.limits))

    @gpu(duration=CAPTION_DURATION)
    def on_best_of_n(self, clip: Any, start: Any, end: Any, aspect: Any, n: Any, request: gr.Request = None) -> list:
        model_started(self.ctx, request)
        session = self.ctx.session
        ranked = session.best_of_n(BestOfRequest.from_user(self._clip(clip, start, end), session.limits, aspect, n))
        return [{"text": c.text, "reward": c.reward, "current": c.current} for c in ranked]

    # -- prompt and generation ---------------------------------------------------------------------
    def on_compose(self, caption: Any, mode: Any, max_words: Any) -> dict:
        session = self.ctx.session
        composed = session.compose(ComposeRequest.from_user(caption_from_user(caption, session.limits),
                                                            session.limits, mode or "Extractive", max_words))
        return {"prompt": composed.prompt, "tokens": composed.tokens, "exact_tokens": composed.exact_tokens,
                "token_limit": composed.token_limit, "report": composed.report}

    def _request(self, prompt: Any, settings: Any, clip: Any, start: Any, caption: Any,
                 request: Any) -> GenerateRequest:
        session, config = self.ctx.session, self.ctx.config
        settings = _settings(schemas.GenerateSettings, settings)
        settings.setdefault("finetuned", self.finetune_picks.get(session_id(request), ""))
        settings["speed_adapter"] = speed_adapter_location(config, settings.get("speed_adapter", ""))
        if zerogpu.on_zerogpu():  # the profile that fits one GPU call unless the script asks otherwise
            settings.setdefault("profile", "draft")
        start_image = self._clip(clip, start, None) if clip else None
        structured = None if caption is None else caption_from_user(caption, session.limits)
        return GenerateRequest.from_user(session.limits, prompt, settings.pop("preset", "ti2v-5b"),
                                         locations=session.locations,
                                         start_image=start_image, caption=structured, **settings)

    def _fits(self, run: GenerateRequest, reserve: int = 0) -> GenerateRequest:
        """On ZeroGPU, refused before the GPU is asked for when one call cannot hold it."""
        if zerogpu.on_zerogpu():
            config = self.ctx.config
            zerogpu.check_fits(run, config.zerogpu_seconds - reserve, self.ctx.session.locations)
        return run

    def on_generate(self, prompt: Any, settings: Any, clip: Any, start: Any, caption: Any = None,
                    request: gr.Request = None):
        """`settings`: {preset, seconds, resolution, steps, guidance, shift, seed, negative_prompt, mode,
        short_prompt, finetuned, speed_adapter, profile, step_cache}; all optional (`speed_adapter`: a
        name from the page's speed adapter menu, "none", or "" for the server's own). With a clip, its frame at `start`
        starts the video (and the clip is the judge's reference). `caption` (optional): the structured
        caption the prompt came from, recorded with the run so `/judge` scores it aspect by aspect."""
        model_started(self.ctx, request)  # first: a refused job must not stay counted as pending
        yield from self._generate(self._fits(self._request(prompt, settings, clip, start, caption, request)), request)

    def on_render_final(self, run_id: Any, settings: Any, request: gr.Request = None):
        """A run (a kept draft) again at `settings.profile` (default final), same prompt and seed;
        `settings` may also name `step_cache` and `finetuned`."""
        from ..generation import load_run_by_id

        model_started(self.ctx, request)  # first: a refused job must not stay counted as pending
        given = _settings(schemas.RenderFinalSettings, settings)
        run = load_run_by_id(self.ctx.config.output_dir, self._visible_run(run_id, request))
        again = request_again(run, run["run_dir"], given.get("profile") or "final", given.get("step_cache"))
        finetuned = given.get("finetuned", self.finetune_picks.get(session_id(request), ""))
        yield from self._generate(self._fits(dataclasses.replace(again, finetuned=finetuned or "")), request)

    def on_explore(self, prompt: Any, settings: Any, clip: Any, start: Any, caption: Any = None, seeds: Any = 4,
                   request: gr.Request = None) -> dict:
        """`seeds` draft runs (profile draft unless `settings.profile` says otherwise; `settings.seed`
        is the first seed, else they are drawn), each judged; the ranking, best first."""
        model_started(self.ctx, request)  # first: a refused job must not stay counted as pending
        given = _settings(schemas.GenerateSettings, settings)
        given.setdefault("profile", "draft")
        run = self._request(prompt, given, clip, start, caption, request)
        first = given.get("seed")
        chosen = draw_seeds(seeds, None if first in (None, -1) else first)
        self._fits(run, reserve=CAPTION_DURATION)

        def one(session: Any, draft: GenerateRequest, seed: int, cancel: Any = None) -> dict:
            return self._explore_seed(draft, seed, cancel, request)

        with self.ctx.cancellable(request) as cancel:
            for event in explore(self.ctx.session, run, chosen, cancel, one=one):
                if isinstance(event, Done):
                    return {**event.result, "ranking": [{k: v for k, v in entry.items() if k not in ("run_dir", "video")}
                                                        for entry in event.result["ranking"]]}
        return {}

    @gpu(duration=lambda self, run, *rest, **kw: zerogpu.request_seconds(run) + CAPTION_DURATION)
    def _explore_seed(self, run: GenerateRequest, seed: int, cancel: Any = None, request: Any = None) -> dict:
        entry = explore_one(self.ctx.session, run, seed, cancel)
        self.ctx.session_runs.add(owner(request), entry["run"])
        return entry

    @gpu(duration=lambda self, run, *rest, **kw: zerogpu.request_seconds(run))
    def _generate(self, run: GenerateRequest, request: Any = None):
        with self.ctx.cancellable(request) as cancel:
            for event in self.ctx.session.generate(run, cancel):
                if isinstance(event, Done):
                    result = event.result
                    self.ctx.session_runs.add(owner(request), Path(result.run_dir).name)
                    files = [str(result.side_by_side_video or result.left_video), str(result.run_json)]
                    yield ({"run_id": Path(result.run_dir).name, "seed": result.seed, "mode": result.mode,
                            "sides": [side.to_dict() | {"video": Path(result.videos[side.key]).name}
                                      for side in result.sides],
                            "timings": result.timings}, files)
                else:
                    yield gr.update(), gr.update()

    def on_cancel(self, request: gr.Request = None) -> str:
        return self.ctx.cancel_run(request)

    # -- runs ----------------------------------------------------------------------------------------
    def _visible_run(self, run_id: Any, request: Any) -> str | None:
        allowed = self.ctx.runs_of(request)
        name = RunRequest.from_user(run_id).run_id
        return None if allowed is not None and name not in allowed else name

    def on_reload_run(self, run_id: Any, request: gr.Request = None):
        view = self.ctx.session.runs.reload(self._visible_run(run_id, request))
        return run_json(view), [video for _, video in view.videos if video] + view.downloads[-1:]

    @gpu(duration=CAPTION_DURATION)
    def on_judge(self, run_id: Any, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        return self.ctx.session.judge(self._visible_run(run_id, request))

    def on_import_run(self, run_file: Any) -> dict:
        return run_json(self.ctx.session.runs.import_file(run_file))

    def on_history(self, request: gr.Request = None) -> list:
        return [{"run_id": c.run_id, "created": c.created, "prompt": c.prompt, "seed": c.seed, "mode": c.mode,
                 "preset": c.preset, "size": c.size, "steps": c.steps, "judged": c.judged}
                for c in self.ctx.session.runs.cards(self.ctx.runs_of(request))]

    def on_list_finetunes(self) -> list:
        return [{"label": label, "value": value} for label, value in finetune_choices(self.ctx.config)]

    def on_pick_finetune(self, finetuned: Any, request: gr.Request = None) -> str:
        finetune_location(self.ctx.config, finetuned)  # refuses anything not in the models folder
        self.finetune_picks[session_id(request)] = finetuned or ""
        return f"Finetuned slot: {finetuned or 'as started'}."

