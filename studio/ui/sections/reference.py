"""1 · Reference: upload a clip, pick a shot or a range, caption it (streamed into the Caption section)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ...caption.editing import take_in
from ...caption.structured import ASPECTS
from ...errors import StudioError
from ...resources import sample_clip
from ...session import CaptionRequest, CaptionText, Done, Status
from ..context import PageContext, model_job, model_started, shows_errors, takes_turns
from ..formatting import error_line, range_label, shot_label, without_paths
from ..zerogpu import CAPTION_DURATION, gpu


class ReferenceSection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        limits = ctx.session.limits
        with gr.Column(elem_id="section-reference", elem_classes=["studio-section"]):
            gr.Markdown("## 1 · Reference")
            with gr.Row():
                with gr.Column(scale=3, min_width=280):
                    self.clip = gr.Video(label=f"Reference clip ({limits.video_types_text}; at most "
                                               f"{limits.max_clip_seconds:g} s)", sources=["upload"], height=280,
                                         elem_id="reference-clip")
                    self.summary = gr.Markdown("", elem_id="reference-info")
                    self.range = gr.Markdown("", elem_id="reference-range")
                    # The shipped sample clip (two shots with a hard cut), from the package: a pip
                    # install has it too.
                    self.examples = gr.Examples([[str(sample_clip())]], inputs=[self.clip],
                                                label="Example clip (click to load)",
                                                example_labels=["Sample: a plaza, two shots"],
                                                elem_id="reference-examples")
                with gr.Column(scale=2, min_width=260):
                    self.shot = gr.Dropdown(label="Shot", choices=[], value=None, interactive=True,
                                            info="Detected shots, numbered as `python -m studio shots` lists them.",
                                            elem_id="shot-choice")
                    with gr.Row():
                        self.start = gr.Number(label="Start (s)", value=0.0, minimum=0, precision=2,
                                               elem_id="range-start")
                        self.end = gr.Number(label="End (s)", value=0.0, minimum=0, precision=2,
                                             elem_id="range-end", info="0: to the end of the clip")
                    self.frame = gr.Image(label="Frame at start", interactive=False, type="pil", height=150,
                                          elem_id="start-frame")
                    pack = ctx.session.pack
                    self.two_stage = gr.Checkbox(label="Two-stage captioning (CHAI order: Subject, Scene, Camera, "
                                                       "then Motion and Spatial given them)", value=True,
                                                 info=f"Prompt pack: {pack.label()}, {pack.sampling.fps:g} fps "
                                                      "(--caption-prompts)", elem_id="two-stage")
                    self.compare = gr.Checkbox(label="Also caption with the second captioner (A/B view)", value=False,
                                               visible=ctx.session.models.has_compare_captioner,
                                               elem_id="compare-captioner")
                    self.caption_button = gr.Button("Caption the shot", variant="primary", elem_id="caption-button")
                    self.status = gr.Markdown("Upload a clip to start, or open *Shot library, import and export* "
                                              "under Caption to start from a library shot.",
                                              elem_id="reference-status", elem_classes=["step-status"])
            self.shots = gr.State([])
            # A file the player's own type check would refuse (with a toast of its own, beside this
            # section's earlier status) is stopped by the page script and its name handed here, so
            # the refusal is said once, in the status line.
            self.refused_name = gr.Textbox(visible=False)
            self.refused_button = gr.Button("Refused upload", elem_id="refused-upload",
                                            elem_classes=["studio-hidden"])

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        caption = page.caption
        loaded = [self.summary, self.shot, self.start, self.end, self.frame, self.shots, self.status, self.range]
        self.clip.upload(self.on_upload, {self.clip}, loaded, api_visibility="undocumented")
        # Setting the video's value (an example) does not fire its upload event, so the shots are listed next.
        self.examples.load_input_event.then(self.on_upload, {self.clip}, loaded, api_visibility="undocumented")
        self.clip.clear(self.on_clear, None, [self.summary, self.shot, self.shots, self.frame, self.status,
                                              self.range], api_visibility="undocumented")
        self.refused_button.click(self.on_refused_upload, {self.refused_name}, [self.status], queue=False,
                                  js="() => [window.studioRefusedUpload || '']", api_visibility="undocumented")
        self.shot.input(self.on_shot, {self.clip, self.shot, self.shots},
                        [self.start, self.end, self.frame, self.status, self.range], api_visibility="undocumented")
        self.start.submit(self.on_start, {self.clip, self.start, self.end, self.shots},
                          [self.frame, self.status, self.range], api_visibility="undocumented")
        self.end.submit(self.on_end, {self.start, self.end, self.shots}, [self.range], queue=False,
                        api_visibility="undocumented")
        self.caption_button.click(
            takes_turns(self.ctx, self.on_caption),
            {self.clip, self.start, self.end, self.two_stage, self.compare, *caption.inputs},
            [self.status, self.caption_button, *caption.outputs, *caption.compare_texts.values()],
            api_visibility="undocumented", show_progress="hidden", **model_job(self.ctx, blocks))

    @shows_errors
    def on_upload(self, values: dict) -> dict:
        info = self.ctx.session.inspect(values[self.clip])
        choices = [(shot_label(n, lo, hi), str(n)) for n, (lo, hi) in enumerate(info.shots, start=1)]
        start, end = info.shots[0] if info.shots else (0.0, info.duration)
        return {self.summary: f"**{info.path.name}** · {info.duration:.2f} s · {info.width}×{info.height} · "
                              f"{len(info.shots)} shot(s)",
                self.shot: gr.update(choices=choices, value=choices[0][1] if choices else None),
                self.start: round(start, 2), self.end: round(end, 2), self.shots: info.shots,
                self.frame: self.ctx.session.frame(info.path, start),
                self.range: range_label(round(start, 2), round(end, 2), info.duration, info.shots),
                self.status: "Ready: press **Caption the shot**, or pick another shot first."}

    def on_refused_upload(self, values: dict) -> dict:
        """A file the browser does not read as a video, refused before it was uploaded."""
        name = str(values[self.refused_name] or "the file")
        try:
            self.ctx.session.limits.check_video_name(name)
        except StudioError as exc:
            return {self.status: error_line(exc)}
        return {self.status: error_line(StudioError(f"the browser does not read {name} as a video; convert it to "
                                                    "mp4 and upload that"))}

    def on_clear(self) -> dict:
        return {self.summary: "", self.shot: gr.update(choices=[], value=None), self.shots: [], self.frame: None,
                self.range: "", self.status: "Upload a clip to start."}

    @shows_errors
    def on_shot(self, values: dict) -> dict:
        shots, choice = values[self.shots], values[self.shot]
        if not choice or not shots:
            return {}
        start, end = shots[int(choice) - 1]
        return {self.start: round(start, 2), self.end: round(end, 2),
                self.frame: self.ctx.session.frame(Path(values[self.clip]), start), self.status: f"Shot {choice}.",
                self.range: range_label(round(start, 2), round(end, 2), shots=shots)}

    @shows_errors
    def on_start(self, values: dict) -> dict:
        clip = self.ctx.session.clip(values[self.clip], values[self.start])
        return {self.frame: self.ctx.session.frame(clip.path, clip.start or 0.0), self.status: "",
                **self.on_end(values)}

    def on_end(self, values: dict) -> dict:
        return {self.range: range_label(values[self.start], values[self.end], shots=values[self.shots])}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors
    def on_caption(self, values: dict, request: gr.Request = None):
        model_started(self.ctx, request)
        session, caption = self.ctx.session, self.page.caption
        base = caption.read(values)
        clip = session.clip(values[self.clip], values[self.start], values[self.end])
        request_ = CaptionRequest.from_user(clip, session.limits, two_stage=values[self.two_stage])
        idle = {self.caption_button: gr.update(interactive=True)}
        yield {self.caption_button: gr.update(interactive=False), self.status: "Starting…"}
        try:
            for event in session.caption(request_):
                if isinstance(event, Status):
                    yield {self.status: event.message}
                elif isinstance(event, CaptionText):
                    yield {self.status: event.message, **{caption.texts[a]: t for a, t in event.texts.items()}}
                elif isinstance(event, Done):
                    base = take_in(base, event.result, "captioned the clip", "model")
                    yield {**caption.show(base), self.status: event.message}
            if values[self.compare]:
                yield from self._compare(request_)
        except Exception:
            # A failed run puts back the texts from before it (the boxes may hold streamed text).
            yield {**caption.show(base), **idle}
            raise
        yield idle

    def _compare(self, request_: CaptionRequest):
        """The second captioner's caption of the same shot, into the A/B column."""
        boxes = self.page.caption.compare_texts
        for event in self.ctx.session.caption(request_, compare=True):
            if isinstance(event, Status):
                yield {self.status: event.message}
            elif isinstance(event, CaptionText):
                yield {self.status: event.message, **{boxes[a]: t for a, t in event.texts.items()}}
            elif isinstance(event, Done):
                other = event.result
                model = without_paths(str(other.provenance.models.get("captioner")))  # a folder shows by name
                yield {self.status: f"{event.message} Second captioner: {model}.",
                       **{boxes[a]: other.aspects[a].text for a in ASPECTS}}
