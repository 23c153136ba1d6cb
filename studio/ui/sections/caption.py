"""2 · Caption: the five aspect texts (streamed in by the Reference section), the shot library,
import/export, "score all aspects", and the captioner A/B column. Each aspect's refine tools (CHAI
critique/revise loop, primitives, best-of-N) live in `aspect_panel.py`."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...caption.editing import (
    export_caption, import_caption, preset_caption, preset_choices, take_in, with_edits, with_rewards,
)
from ...caption.structured import ASPECTS, StructuredCaption
from ...errors import StudioError
from ...session import caption_from_user
from ..context import PageContext, model_job, model_started, shows_errors, takes_turns
from ..formatting import ASPECT_HINTS, history_markdown, reward_badge
from ..zerogpu import CAPTION_DURATION, gpu
from .aspect_panel import AspectPanel


def _library() -> list[tuple[str, str]]:
    try:
        return preset_choices()
    except StudioError:
        return []  # an unreadable library never stops the page from building


class CaptionSection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        limits = ctx.session.limits
        has_compare = ctx.session.models.has_compare_captioner
        with gr.Column(elem_id="section-caption", elem_classes=["studio-section"]):
            gr.Markdown("## 2 · Caption")
            with gr.Accordion("Shot library, import and export", open=False, elem_id="caption-files"), \
                    gr.Row(equal_height=True):
                self.library = gr.Dropdown(label="Shot library", choices=_library(), value=None, scale=3,
                                           elem_id="library-choice")
                self.load_button = gr.Button("Load shot", scale=1, elem_id="load-library")
                # No file_types: Gradio would refuse another file with a red toast before the handler
                # runs, leaving this section's last status ("Loaded …") beside it. The handler refuses it
                # in the status line instead, the one place a failure is said.
                self.import_file = gr.File(label="Import caption JSON (.json)", type="filepath", scale=2, height=130,
                                           elem_id="import-caption")
                self.export_button = gr.Button("Export JSON", scale=1, elem_id="export-button")
                self.export_file = gr.File(label="Exported caption", interactive=False, scale=2, height=130,
                                           elem_id="export-file")
            self.library_examples = None
            if _library():  # the library one click away; the accordion's dropdown and Load button stay
                self.library_examples = gr.Examples([[name] for _, name in _library()], inputs=[self.library],
                                                    example_labels=[label for label, _ in _library()],
                                                    label="Shot library (click a shot to load its caption)",
                                                    examples_per_page=16, elem_id="library-examples")
            self.status = gr.Markdown("", elem_id="caption-status", elem_classes=["step-status"])
            self.state = gr.State(StructuredCaption().to_dict())
            self.texts: dict[str, gr.Textbox] = {}
            self.badges: dict[str, gr.Markdown] = {}
            self.compare_texts: dict[str, gr.Textbox] = {}
            with gr.Row():
                with gr.Column(scale=3, min_width=300):
                    for aspect in ASPECTS:
                        self.texts[aspect] = gr.Textbox(label=aspect, info=ASPECT_HINTS[aspect], lines=3,
                                                        max_lines=12, max_length=limits.max_aspect_chars,
                                                        elem_id=f"text-{aspect.lower()}")
                        self.badges[aspect] = gr.Markdown("Reward: not scored", elem_id=f"reward-{aspect.lower()}",
                                                          elem_classes=["reward-badge"])
                with gr.Column(scale=2, min_width=260, visible=has_compare, elem_id="compare-column"):
                    gr.Markdown("**Second captioner** (same shot; read-only)")
                    for aspect in ASPECTS:
                        self.compare_texts[aspect] = gr.Textbox(label=f"{aspect} (second captioner)", lines=3,
                                                                interactive=False,
                                                                elem_id=f"compare-{aspect.lower()}")
            with gr.Row():
                self.score_all_button = gr.Button("Score all aspects", elem_id="score-all")
                self.score_all_status = gr.Markdown("", elem_id="score-all-status", elem_classes=["step-status"])
            gr.Markdown("### Refine one aspect")
            self.panels: dict[str, AspectPanel] = {}
            # "wrap": on a phone the five tabs take two rows instead of hiding Spatial and Camera in a menu.
            with gr.Tabs(elem_id="aspect-tabs", overflow_behavior="wrap"):
                for aspect in ASPECTS:
                    with gr.Tab(aspect, elem_id=f"tab-{aspect.lower()}"):
                        self.panels[aspect] = AspectPanel(ctx, self, aspect)

    # -- the caption as the components hold it -------------------------------------------------------
    @property
    def inputs(self) -> list[Any]:
        return [self.state, *self.texts.values()]

    @property
    def outputs(self) -> list[Any]:
        return [self.state, *self.texts.values(), *self.badges.values(),
                *(panel.history for panel in self.panels.values()), *(panel.mirror for panel in self.panels.values())]

    def read(self, values: dict) -> StructuredCaption:
        """The caption with what the boxes show now (each changed box becomes one undoable revision)."""
        limits = self.ctx.session.limits
        return with_edits(caption_from_user(values[self.state], limits),
                          {a: values[self.texts[a]] for a in ASPECTS}, limits.max_aspect_chars)

    def show(self, caption: StructuredCaption) -> dict:
        return {self.state: caption.to_dict(), **{self.texts[a]: caption.aspects[a].text for a in ASPECTS},
                **{self.badges[a]: reward_badge(caption, a) for a in ASPECTS},
                **{self.panels[a].history: history_markdown(caption, a) for a in ASPECTS},
                **{self.panels[a].mirror: caption.aspects[a].text for a in ASPECTS}}

    # -- events ------------------------------------------------------------------------------------
    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        reference = page.reference
        options = dict(api_visibility="undocumented")
        self.load_button.click(self.on_library, {self.library, *self.inputs}, [*self.outputs, self.status], **options)
        if self.library_examples is not None:
            self.library_examples.load_input_event.then(self.on_library, {self.library, *self.inputs},
                                                        [*self.outputs, self.status], **options)
        self.import_file.upload(self.on_import, {self.import_file, *self.inputs}, [*self.outputs, self.status],
                                **options)
        self.export_button.click(self.on_export, set(self.inputs), [self.export_file, self.status, *self.outputs],
                                 **options)
        self.score_all_button.click(
            takes_turns(self.ctx, self.on_score_all), {reference.clip, reference.start, reference.end, *self.inputs},
            [*self.outputs, self.score_all_status], show_progress="minimal", **options,
            **model_job(self.ctx, blocks))
        for panel in self.panels.values():
            panel.wire(page, blocks)

    @shows_errors
    def on_library(self, values: dict) -> dict:
        name = values[self.library]
        caption = take_in(self.read(values), preset_caption(name), f"loaded library shot {name}", "preset")
        return {**self.show(caption), self.status: f"Loaded **{name}**; each aspect's previous text is one Undo away."}

    @shows_errors
    def on_import(self, values: dict) -> dict:
        path = values[self.import_file]
        new = import_caption(path, self.ctx.session.limits.max_aspect_chars)
        caption = take_in(self.read(values), new, "imported a caption file", "import")
        return {**self.show(caption), self.status: "Imported; each aspect's previous text is one Undo away."}

    @shows_errors
    def on_export(self, values: dict) -> dict:
        caption = self.read(values)
        path = export_caption(caption, self.ctx.work_dir)
        return {self.export_file: str(path), self.status: f"Exported **{path.name}**.", **self.show(caption)}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors(status="score_all_status")
    def on_score_all(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        reference, session = self.page.reference, self.ctx.session
        caption = self.read(values)
        clip = session.clip(values[reference.clip], values[reference.start], values[reference.end])
        rewards = session.score_all(clip, caption)
        caption = with_rewards(caption, rewards)
        scored = ", ".join(f"{a} {r * 100:.0f}%" for a, r in rewards.items())
        return {**self.show(caption), self.score_all_status: f"Scored: {scored}."}
