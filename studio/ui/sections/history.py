"""5 · History: past runs as cards (date, mode, preset, size, seed, steps, judge scores), filtered
by mode and model and searched by words. A click reloads a run's caption, prompt, settings,
reference clip and range and its videos, and offers to delete it; a run.json or a studio mp4
dropped here loads its settings."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gradio as gr

from ...caption.editing import take_in
from ...errors import InputError
from ...generation.presets import PRESETS
from ...session import HistoryFilter, RunView
from ..context import PageContext, session_id, shows_errors
from ..formatting import card_html, judge_markdown, range_label
from .generate import COMPARISONS

MAX_CARDS = 24
MODE_CHOICES = [("All modes", ""), *((label, mode) for label, mode in COMPARISONS if mode != "auto")]
MAX_FILTERS = 4096  # visitors whose filter is remembered (the oldest forgotten first: they see every run)


class HistorySection:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        with gr.Column(elem_id="section-history", elem_classes=["studio-section"]):
            gr.Markdown("## 5 · History")
            with gr.Row(equal_height=True):
                self.refresh_button = gr.Button("Refresh", size="sm", scale=0, elem_id="refresh-history")
                # No file_types, as for the caption import: a wrong file is refused in the status line only.
                self.import_file = gr.File(label="Drop a run.json or a studio mp4 to load its settings",
                                           type="filepath", height=130, scale=3, elem_id="import-run")
            with gr.Row(equal_height=True, elem_id="history-filters"):
                self.mode = gr.Dropdown(MODE_CHOICES, value="", label="Mode", scale=1, elem_id="history-mode")
                self.model = gr.Dropdown([("All models", ""), *((p.label, name) for name, p in PRESETS.items())],
                                         value="", label="Model", scale=1, elem_id="history-model")
                self.search = gr.Textbox(label="Search", placeholder="words of the prompt, a seed, a date…", scale=2,
                                         elem_id="history-search")
            self.status = gr.Markdown("Click a run to reload it.", elem_id="history-status",
                                      elem_classes=["step-status"])
            self.cards = gr.Dataset(components=["image", "html"], headers=["", "Run"], samples=[], type="index",
                                    samples_per_page=MAX_CARDS, label="Past runs", elem_id="history-cards")
            self.delete_button = gr.Button("Delete the selected run", variant="stop", size="sm", interactive=False,
                                           elem_id="delete-run")
            self.run_ids = gr.State([])
            self.selected = gr.State(None)  # the run last clicked: what Delete removes
        # Kept on the server, so a run finished by Generate or Judge refreshes the list as filtered.
        self.filters: OrderedDict[str, HistoryFilter] = OrderedDict()

    @property
    def outputs(self) -> list[Any]:
        return [self.cards, self.run_ids]

    def refreshed(self, request: Any) -> dict:
        shown = self.filters.get(session_id(request), HistoryFilter())
        cards = self.ctx.session.runs.cards(self.ctx.runs_of(request), shown)[:MAX_CARDS]
        label = f"Past runs matching the filter ({len(cards)})" if shown.active else "Past runs"
        return {self.cards: gr.update(samples=[[card.poster, card_html(card)] for card in cards], label=label),
                self.run_ids: [card.run_id for card in cards]}

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        options = dict(api_visibility="undocumented")
        self.refresh_button.click(self.on_refresh, None, self.outputs, **options)
        blocks.load(self.on_refresh, None, self.outputs, **options)
        targets = self.reload_outputs(page)
        self.cards.click(self.on_select, {self.cards, self.run_ids, *page.caption.inputs}, targets, **options)
        self.import_file.upload(self.on_import, {self.import_file, *page.caption.inputs}, targets, **options)
        filtered = [*self.outputs, self.status]
        for event in (self.mode.change, self.model.change, self.search.submit):
            event(self.on_filter, {self.mode, self.model, self.search}, filtered, **options)
        self.delete_button.click(self.on_delete, {self.selected}, [*filtered, self.selected, self.delete_button],
                                 **options)

    def reload_outputs(self, page: Any) -> list[Any]:
        """Everything a reload sets (read from the built page: the sections wire in any order)."""
        generate = page.generate
        return [self.status, *page.caption.outputs, page.prompt.prompt, *generate.settings, generate.downloads,
                *generate.player_outputs, generate.used_seed, generate.run_id, generate.start_image,
                generate.judge_button, generate.final_button, generate.judge_result, page.reference.clip,
                page.reference.start, page.reference.end, page.reference.range, self.selected, self.delete_button]

    def on_refresh(self, request: gr.Request = None) -> dict:
        return self.refreshed(request)

    @shows_errors
    def on_filter(self, values: dict, request: gr.Request = None) -> dict:
        shown = HistoryFilter.from_user(values[self.mode], values[self.model], values[self.search])
        visitor = session_id(request)
        self.filters.pop(visitor, None)
        self.filters[visitor] = shown
        while len(self.filters) > MAX_FILTERS:
            self.filters.popitem(last=False)
        refreshed = self.refreshed(request)
        count = len(refreshed[self.run_ids])
        message = (f"{count} run(s) match." if count else "No run matches; clear the search or pick all modes "
                   "and models.") if shown.active else "Click a run to reload it."
        return {**refreshed, self.status: message}

    @shows_errors
    def on_delete(self, values: dict, request: gr.Request = None) -> dict:
        run_id, allowed = values[self.selected], self.ctx.runs_of(request)
        if not run_id:
            raise InputError("click the run to delete first", "run")
        if allowed is not None and run_id not in allowed:
            run_id = None  # another visitor's run reads exactly like a missing one
        message = self.ctx.session.runs.delete(run_id)
        return {**self.refreshed(request), self.status: message, self.selected: None,
                self.delete_button: gr.update(interactive=False, value="Delete the selected run")}

    @shows_errors
    def on_select(self, values: dict, request: gr.Request = None) -> dict:
        index, run_ids = values[self.cards], values[self.run_ids] or []
        if not isinstance(index, int) or not 0 <= index < len(run_ids):
            return {self.status: "That run is no longer listed; press Refresh."}
        return self.on_pick(values, run_ids[index], request)

    @shows_errors
    def on_pick(self, values: dict, run_id: str, request: Any = None) -> dict:
        """A run by id back on the page (a history card, or an explored seed kept)."""
        allowed = self.ctx.runs_of(request)
        if allowed is not None and run_id not in allowed:
            run_id = None  # another visitor's run reads exactly like a missing one
        return self.restored(values, self.ctx.session.runs.reload(run_id))

    @shows_errors
    def on_import(self, values: dict) -> dict:
        return self.restored(values, self.ctx.session.runs.import_file(values[self.import_file]))

    def restored(self, values: dict, view: RunView) -> dict:
        """Everything a run recorded, back on the page; the previous caption stays one Undo away."""
        page, generate = self.page, self.page.generate
        s = view.settings
        deletable = gr.update(interactive=view.run_id is not None, value=f"Delete run {view.run_id}"
                              if view.run_id else "Delete the selected run")
        shown: dict = {self.status: view.message, page.prompt.prompt: view.prompt,
                       self.selected: view.run_id, self.delete_button: deletable,
                       generate.preset: s["preset"], generate.seconds: s["seconds"],
                       generate.resolution: s["resolution"], generate.steps: s["steps"],
                       generate.guidance: s["guidance"], generate.shift: s["shift"], generate.seed: s["seed"],
                       generate.used_seed: s["seed"], generate.negative: s["negative_prompt"],
                       generate.comparison: s["mode"], generate.short_prompt: s["short_prompt"],
                       generate.start_from_frame: s["start_from_frame"], generate.start_image: view.start_image,
                       generate.run_id: view.run_id, generate.downloads: view.downloads or None,
                       generate.judge_button: gr.update(interactive=view.run_id is not None),
                       generate.final_button: gr.update(interactive=view.run_id is not None),
                       generate.judge_result: judge_markdown(view.judgement) if view.judgement else ""}
        if view.caption is not None:
            shown.update(page.caption.show(take_in(page.caption.read(values), view.caption, "reloaded a run",
                                                   "import")))
        for (label, video), slot in zip(view.videos + [("(not used)", None)] * 2, ("left", "right")):
            player = generate.players[slot]
            shown[player["video"]] = gr.update(value=video, label=label)
            shown[player["preview"]] = gr.update(visible=False)
            shown[player["progress"]] = ""
        if view.reference:
            reference = page.reference
            if view.reference.get("clip"):
                shown[reference.clip] = view.reference["clip"]
            shown[reference.start] = view.reference.get("start") or 0.0
            shown[reference.end] = view.reference.get("end") or 0.0
            shown[reference.range] = range_label(shown[reference.start], shown[reference.end])
        return shown
