"""5 · History: past runs as cards (date, mode, preset, size, seed, steps, judge scores). A click
reloads a run's caption, prompt, settings, reference clip and range and its videos; a run.json or
a studio mp4 dropped here loads its settings."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...caption.editing import take_in
from ...session import RunView
from ..context import PageContext, shows_errors
from ..formatting import card_html, judge_markdown

MAX_CARDS = 24


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
            self.status = gr.Markdown("Click a run to reload it.", elem_id="history-status",
                                      elem_classes=["step-status"])
            self.cards = gr.Dataset(components=["image", "html"], headers=["", "Run"], samples=[], type="index",
                                    samples_per_page=MAX_CARDS, label="Past runs", elem_id="history-cards")
            self.run_ids = gr.State([])

    @property
    def outputs(self) -> list[Any]:
        return [self.cards, self.run_ids]

    def refreshed(self, request: Any) -> dict:
        cards = self.ctx.session.runs.cards(self.ctx.runs_of(request))[:MAX_CARDS]
        return {self.cards: gr.update(samples=[[card.poster, card_html(card)] for card in cards]),
                self.run_ids: [card.run_id for card in cards]}

    def wire(self, page: Any, blocks: gr.Blocks) -> None:
        self.page = page
        options = dict(api_visibility="undocumented")
        self.refresh_button.click(self.on_refresh, None, self.outputs, **options)
        blocks.load(self.on_refresh, None, self.outputs, **options)
        targets = self.reload_outputs
        self.cards.click(self.on_select, {self.cards, self.run_ids, *page.caption.inputs}, targets, **options)
        self.import_file.upload(self.on_import, {self.import_file, *page.caption.inputs}, targets, **options)

    @property
    def reload_outputs(self) -> list[Any]:
        page = self.page
        generate = page.generate
        return [self.status, *page.caption.outputs, page.prompt.prompt, *generate.settings, generate.downloads,
                *generate.player_outputs, generate.used_seed, generate.run_id, generate.start_image,
                generate.judge_button, generate.judge_result, page.reference.clip, page.reference.start,
                page.reference.end]

    def on_refresh(self, request: gr.Request = None) -> dict:
        return self.refreshed(request)

    @shows_errors
    def on_select(self, values: dict, request: gr.Request = None) -> dict:
        index, run_ids = values[self.cards], values[self.run_ids] or []
        if not isinstance(index, int) or not 0 <= index < len(run_ids):
            return {self.status: "That run is no longer listed; press Refresh."}
        allowed = self.ctx.runs_of(request)
        run_id = run_ids[index]
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
        shown: dict = {self.status: view.message, page.prompt.prompt: view.prompt,
                       generate.preset: s["preset"], generate.seconds: s["seconds"],
                       generate.resolution: s["resolution"], generate.steps: s["steps"],
                       generate.guidance: s["guidance"], generate.shift: s["shift"], generate.seed: s["seed"],
                       generate.used_seed: s["seed"], generate.negative: s["negative_prompt"],
                       generate.comparison: s["mode"], generate.short_prompt: s["short_prompt"],
                       generate.start_from_frame: s["start_from_frame"], generate.start_image: view.start_image,
                       generate.run_id: view.run_id, generate.downloads: view.downloads or None,
                       generate.judge_button: gr.update(interactive=view.run_id is not None),
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
        return shown
