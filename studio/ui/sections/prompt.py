"""3 · Prompt: compose the five aspects into one prompt within the text encoder's token limit; the
meter counts words and umT5 tokens as the prompt is edited, and "Fit to the limit" recomposes the
longest prompt that fits. A prompt over the limit is refused at Generate, never silently cut."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...compose.text import word_count
from ...session import COMPOSE_MODES, ComposeRequest
from ...session.latest import LatestRequests
from ..context import PageContext, compose_job, session_id, shows_errors
from ..formatting import compose_summary, composition_meter, prompt_meter
from ..zerogpu import CAPTION_DURATION, gpu


class PromptSection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        # Compose, Fit, the LLM merge and typing in the box all write the prompt: the newest wins.
        self.requests = LatestRequests()
        limits = ctx.session.limits
        with gr.Column(elem_id="section-prompt", elem_classes=["studio-section"]):
            gr.Markdown("## 3 · Prompt")
            with gr.Row(equal_height=True):
                self.mode = gr.Radio(list(COMPOSE_MODES), value="Extractive", label="Composer", scale=2,
                                     info="Extractive keeps your wording; LLM merge asks the captioner to rewrite.")
                self.words = gr.Slider(*limits.words, value=limits.default_words, step=10, label="Word budget",
                                       scale=2, elem_id="word-budget")
            with gr.Row():
                self.compose_button = gr.Button("Compose prompt", variant="primary", elem_id="compose-button")
                self.fit_button = gr.Button(f"Fit to the limit ({limits.token_limit} tokens)", elem_id="fit-button")
            self.status = gr.Markdown("", elem_id="prompt-status", elem_classes=["step-status"])
            self.prompt = gr.Textbox(label="Prompt (editable)", lines=6, max_lines=20,
                                     max_length=limits.max_prompt_chars, elem_id="prompt")
            self.meter = gr.Markdown(prompt_meter(0, 0, False, limits.token_limit), elem_id="prompt-meter")
            self.report = gr.Markdown("", elem_id="compose-report")

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        caption = page.caption
        options = dict(api_visibility="undocumented")
        outputs = [self.prompt, self.meter, self.report, self.status, *caption.outputs]
        self.compose_button.click(self.on_compose, {self.mode, self.words, *caption.inputs}, outputs, **options,
                                  **compose_job())
        self.fit_button.click(self.on_fit, {self.mode, self.words, *caption.inputs}, outputs, **options,
                              **compose_job())
        self.prompt.change(self.on_edit, {self.prompt}, [self.meter], queue=False, show_progress="hidden", **options)
        self.prompt.input(self.on_typed, None, None, queue=False, show_progress="hidden", **options)

    def _request(self, values: dict) -> tuple[Any, ComposeRequest]:
        caption = self.page.caption.read(values)
        return caption, ComposeRequest.from_user(caption, self.ctx.session.limits, values[self.mode],
                                                 values[self.words])

    def _shown(self, caption: Any, composed: Any, message: str) -> dict:
        return {self.prompt: composed.prompt, self.meter: composition_meter(composed),
                self.report: compose_summary(composed.report), self.status: message,
                **self.page.caption.show(caption)}

    def on_compose(self, values: dict, request: gr.Request = None) -> dict:
        ticket = self.requests.begin(session_id(request))
        return self._if_latest(request, ticket, self._compose(values))

    def on_fit(self, values: dict, request: gr.Request = None) -> dict:
        ticket = self.requests.begin(session_id(request))
        return self._if_latest(request, ticket, self._fit(values))

    def on_typed(self, request: gr.Request = None) -> None:
        """Typing in the prompt box is the newest request: a merge still running will not overwrite it."""
        self.requests.begin(session_id(request))

    def _if_latest(self, request: Any, ticket: int, shown: dict) -> dict:
        """The result, or no change at all when a later Compose, Fit or edit has already answered."""
        return shown if self.requests.is_latest(session_id(request), ticket) else {}

    @shows_errors
    def _compose(self, values: dict) -> dict:
        caption, request = self._request(values)
        if request.mode == "LLM merge":
            composed = self._merge(request)
        else:
            composed = self.ctx.session.compose(request)
        note = " ⚠ Over the limit: press **Fit to the limit**." if composed.over_limit else ""
        return self._shown(caption, composed, f"Composed ({request.mode}).{note}")

    @gpu(duration=CAPTION_DURATION)
    def _merge(self, request: ComposeRequest) -> Any:
        with self.ctx.model_lock:  # the LLM merge runs the captioner: it takes its turn with the model steps
            return self.ctx.session.compose(request)

    @shows_errors
    def _fit(self, values: dict) -> dict:
        caption, request = self._request(values)
        composed = self.ctx.session.fit_to_limit(request)
        words = word_count(composed.prompt)
        return self._shown(caption, composed, f"Fitted: {words} words, {composed.tokens} tokens "
                                              f"(limit {composed.token_limit}).")

    def on_edit(self, values: dict) -> dict:
        prompt = values[self.prompt] or ""
        tokens, exact = self.ctx.session.count_tokens(prompt, load=False)
        return {self.meter: prompt_meter(word_count(prompt), tokens, exact, self.ctx.session.limits.token_limit)}
