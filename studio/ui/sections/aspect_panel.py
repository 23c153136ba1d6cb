"""One aspect's refine tools: the CHAI loop (write or ask for a critique, revise, undo), the reward,
best-of-N, and the primitive picker grouped by sub-aspect with a glossary whose terms insert
themselves when clicked."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...caption.editing import primitives_of, revise, sub_aspect_choices, undo, with_primitive, with_rewards
from ...caption.vocabulary import load_vocabulary
from ...session import AspectRequest, BestOfRequest
from ..context import PageContext, model_job, model_started, shows_errors, takes_turns
from ..formatting import best_of_markdown, candidate_choices, glossary_html, reward_badge
from ..zerogpu import CAPTION_DURATION, gpu


def glossary_rows(aspect: str, sub_aspect: str | None) -> list[list[str]]:
    return [[label, glossary_html(definition)]
            for label, definition, _ in primitives_of(load_vocabulary(), aspect, sub_aspect)]


class AspectPanel:
    def __init__(self, ctx: PageContext, caption: Any, aspect: str) -> None:
        self.ctx, self.caption, self.aspect = ctx, caption, aspect
        key = aspect.lower()
        limits = ctx.session.limits
        subs = sub_aspect_choices(load_vocabulary(), aspect)
        first = subs[0][1] if subs else None
        # The text these tools change, shown here: the aspect's own box may be a screen away.
        self.mirror = gr.Textbox(label=f"{aspect} text now (edit it in the {aspect} box above)", lines=2, max_lines=6,
                                 interactive=False, elem_id=f"mirror-{key}", elem_classes=["aspect-mirror"])
        with gr.Row():
            with gr.Column(scale=3, min_width=280):
                self.critique = gr.Textbox(label=f"{aspect} critique", lines=2, max_length=limits.max_critique_chars,
                                           placeholder="What is wrong or missing? Write it, or ask the model.",
                                           elem_id=f"critique-{key}")
                with gr.Row():
                    self.suggest_button = gr.Button("Suggest critique", size="sm", elem_id=f"suggest-{key}")
                    self.revise_button = gr.Button("Revise", size="sm", variant="primary", elem_id=f"revise-{key}")
                    self.undo_button = gr.Button("Undo", size="sm", elem_id=f"undo-{key}")
                    self.score_button = gr.Button("Score", size="sm", elem_id=f"score-{key}")
                with gr.Row(equal_height=True):
                    self.best_of_n = gr.Slider(*limits.best_of, value=4, step=1, label="Candidates",
                                               elem_id=f"best-of-n-{key}", scale=2)
                    self.best_of_button = gr.Button("Best of N", size="sm", elem_id=f"best-of-{key}", scale=1)
                self.status = gr.Markdown("", elem_id=f"status-{key}", elem_classes=["step-status"])
                self.best_of_result = gr.Markdown("", elem_id=f"best-of-result-{key}")
                with gr.Row(equal_height=True):
                    self.candidates = gr.Radio([], label="Best-of-N candidates, best first", type="value",
                                               visible=False, scale=3, elem_id=f"best-of-pick-{key}")
                    self.use_candidate_button = gr.Button("Use this", size="sm", visible=False, scale=1,
                                                          elem_id=f"best-of-use-{key}")
                self.ranked = gr.State([])  # the last best-of-N's Candidates, best first
                with gr.Accordion(f"{aspect} revision history", open=False):
                    self.history = gr.Markdown("_No revisions yet._", elem_id=f"history-{key}")
            with gr.Column(scale=2, min_width=260):
                self.sub_aspect = gr.Dropdown(label=f"{aspect} primitives by sub-aspect", choices=subs, value=first,
                                              elem_id=f"sub-aspect-{key}")
                with gr.Row(equal_height=True):
                    self.primitive = gr.Dropdown(label="Primitive", choices=self._choices(first), value=None,
                                                 scale=3, elem_id=f"picker-{key}")
                    self.insert_button = gr.Button("Insert", size="sm", scale=1, elem_id=f"insert-{key}")
                self.glossary = gr.Dataset(components=["textbox", "html"], headers=["Term (click to insert)",
                                                                                        "Definition"],
                                           samples=glossary_rows(aspect, first), type="index", samples_per_page=40,
                                           label=f"{aspect} glossary", elem_id=f"glossary-{key}")
        self.aspect_state = gr.State(aspect)

    def _choices(self, sub_aspect: str | None) -> list[tuple[str, str]]:
        return [(label, qualified) for label, _, qualified in primitives_of(load_vocabulary(), self.aspect, sub_aspect)]

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        caption, reference = self.caption, page.reference
        clip = {reference.clip, reference.start, reference.end}
        edit = [*caption.outputs, self.status]
        options = dict(api_visibility="undocumented")
        model = dict(show_progress="minimal", **options, **model_job(self.ctx, blocks))
        # Typing in the aspect's box is mirrored in the browser, with no request per keystroke; every
        # handler's result reaches the mirror through `caption.show`.
        caption.texts[self.aspect].input(None, caption.texts[self.aspect], self.mirror, js="(text) => text",
                                         queue=False, show_progress="hidden", **options)
        self.sub_aspect.change(self.on_sub_aspect, {self.sub_aspect}, [self.primitive, self.glossary], **options)
        self.insert_button.click(self.on_insert, {self.primitive, *caption.inputs}, edit, **options)
        self.glossary.click(self.on_glossary, {self.glossary, self.sub_aspect, *caption.inputs}, edit, **options)
        self.undo_button.click(self.on_undo, set(caption.inputs), edit, **options)
        self.suggest_button.click(takes_turns(self.ctx, self.on_suggest), {*clip, *caption.inputs},
                                  [self.critique, self.status], **model)
        self.revise_button.click(takes_turns(self.ctx, self.on_revise), {*clip, self.critique, *caption.inputs},
                                 edit, **model)
        self.score_button.click(takes_turns(self.ctx, self.on_score), {*clip, *caption.inputs}, edit, **model)
        picker = [self.best_of_result, self.candidates, self.use_candidate_button, self.ranked]
        self.best_of_button.click(takes_turns(self.ctx, self.on_best_of), {*clip, self.best_of_n, *caption.inputs},
                                  [*edit, *picker], **model)
        self.use_candidate_button.click(self.on_use_candidate, {self.candidates, self.ranked, *caption.inputs}, edit,
                                        **options)

    def _request(self, values: dict, verb: str, critique: Any = None, needs_critique: bool = False):
        reference, session = self.page.reference, self.ctx.session
        caption = self.caption.read(values)
        clip = session.clip(values[reference.clip], values[reference.start], values[reference.end])
        request = AspectRequest.from_user(clip, session.limits, self.aspect, caption.aspects[self.aspect].text,
                                          critique, verb=verb, needs_critique=needs_critique)
        return caption, request

    # -- primitives --------------------------------------------------------------------------------
    def on_sub_aspect(self, values: dict) -> dict:
        sub = values[self.sub_aspect]
        return {self.primitive: gr.update(choices=self._choices(sub), value=None),
                self.glossary: gr.update(samples=glossary_rows(self.aspect, sub))}

    def _insert(self, values: dict, qualified_id: Any) -> dict:
        caption = with_primitive(self.caption.read(values), self.aspect, qualified_id, load_vocabulary())
        name = load_vocabulary().primitive(qualified_id).name
        return {**self.caption.show(caption), self.status: f"Inserted **{name}** into {self.aspect}."}

    @shows_errors
    def on_insert(self, values: dict) -> dict:
        return self._insert(values, values[self.primitive])

    @shows_errors
    def on_glossary(self, values: dict) -> dict:
        rows = primitives_of(load_vocabulary(), self.aspect, values[self.sub_aspect])
        index = values[self.glossary]
        if not isinstance(index, int) or not 0 <= index < len(rows):
            return {self.status: "That term is no longer listed; pick the sub-aspect again."}
        return self._insert(values, rows[index][2])

    @shows_errors
    def on_undo(self, values: dict) -> dict:
        caption, message = undo(self.caption.read(values), self.aspect)
        return {**self.caption.show(caption), self.status: message}

    # -- the CHAI loop (model steps) ----------------------------------------------------------------
    @gpu(duration=CAPTION_DURATION)
    @shows_errors
    def on_suggest(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        _, aspect_request = self._request(values, "critique")
        critique = self.ctx.session.critique(aspect_request)
        if not self.ctx.session.needs_change(critique):
            return {self.critique: critique, self.status: f"The model finds the {self.aspect} caption accurate: "
                                                          "nothing to revise."}
        return {self.critique: critique, self.status: "The model suggested a critique; edit it, then Revise."}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors
    def on_revise(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        caption, aspect_request = self._request(values, "revise", values[self.critique], needs_critique=True)
        if not self.ctx.session.needs_change(aspect_request.critique):
            return {self.status: f"Revise skipped: the critique says the {self.aspect} caption needs no change, so it "
                                 "stays exactly as it is."}
        revised = self.ctx.session.revise(aspect_request)
        caption = revise(caption, self.aspect, aspect_request.critique, revised)
        return {**self.caption.show(caption), self.status: "Revised (Undo restores the previous text)."}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors
    def on_score(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        caption, aspect_request = self._request(values, "score")
        caption = with_rewards(caption, {self.aspect: self.ctx.session.score(aspect_request)})
        return {**self.caption.show(caption), self.status: reward_badge(caption, self.aspect)}

    @gpu(duration=CAPTION_DURATION)
    @shows_errors
    def on_best_of(self, values: dict, request: gr.Request = None) -> dict:
        model_started(self.ctx, request)
        reference, session = self.page.reference, self.ctx.session
        caption = self.caption.read(values)
        clip = session.clip(values[reference.clip], values[reference.start], values[reference.end])
        request = BestOfRequest.from_user(clip, session.limits, self.aspect, values[self.best_of_n],
                                          caption.aspects[self.aspect].text)
        ranked = session.best_of_n(request)
        best = ranked[0]
        if best.current:  # the text already there scored highest: it stays, its score recorded
            caption = with_rewards(caption, {self.aspect: best.reward})
            status = (f"Your text scored highest ({best.reward * 100:.0f}%) against {request.n} candidates; "
                      "kept it.")
        else:
            caption = with_rewards(revise(caption, self.aspect, f"best of {request.n} candidates", best.text),
                                   {self.aspect: best.reward})
            status = f"Kept the best of {request.n} candidates ({best.reward * 100:.0f}%)."
        return {**self.caption.show(caption), self.best_of_result: best_of_markdown(self.aspect, ranked),
                self.candidates: gr.update(choices=candidate_choices(ranked), value=0, visible=True),
                self.use_candidate_button: gr.update(visible=True), self.ranked: ranked, self.status: status}

    @shows_errors
    def on_use_candidate(self, values: dict) -> dict:
        """The picked best-of-N candidate into the box (Undo restores the text it replaces)."""
        ranked, index = values[self.ranked] or [], values[self.candidates]
        if not isinstance(index, int) or not 0 <= index < len(ranked):
            return {self.status: f"Run Best of N on {self.aspect} first, then pick one of its candidates."}
        chosen = ranked[index]
        caption = self.caption.read(values)
        if caption.aspects[self.aspect].text.strip() == chosen.text.strip():
            return {self.status: f"Candidate {index + 1} is already the {self.aspect} text."}
        caption = with_rewards(revise(caption, self.aspect, f"picked candidate {index + 1} of best of N", chosen.text),
                               {self.aspect: chosen.reward})
        return {**self.caption.show(caption),
                self.status: f"Using candidate {index + 1} ({chosen.reward * 100:.0f}%); Undo restores the previous text."}
