"""The Gradio page: five sections, each a module of `studio/ui/sections`, over one `Session`.

`build_page` lays the sections out top to bottom (with a bar of links to each, so a phone reaches
Generate in one tap) and wires their events; every decision is in the session and the sections'
named handlers. Nothing here loads a model; models load on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from ..config import StudioConfig
from ..session import Session
from ..tiny.locations import model_locations
from .api import ScriptApi
from .context import COMPOSE_CONCURRENCY, PageContext, check_queue_internals
from .sections.caption import CaptionSection
from .sections.generate import GenerateSection
from .sections.history import HistorySection
from .sections.prompt import PromptSection
from .sections.reference import ReferenceSection
from .style import CSS, NAV, SYNC_JS

TITLE = "CHAI Cinematic Prompt Studio"


@dataclass
class Page:
    """The built page: its sections (each owns its components and handlers) and the script API."""

    blocks: gr.Blocks
    ctx: PageContext
    reference: ReferenceSection
    caption: CaptionSection
    prompt: PromptSection
    generate: GenerateSection
    history: HistorySection
    api: ScriptApi


def build_page(config: StudioConfig, session: Session | None = None, public: bool = False) -> Page:
    """Build the page. `public` (others can reach it) makes the run history per visitor unless the
    `history` setting says otherwise."""
    ctx = PageContext.create(config, session, public)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 24 * 3600)) as blocks:
        gr.Markdown(f"# {TITLE}\nCaption a reference shot aspect by aspect, refine it, compose one prompt and "
                    "compare the CHAI-finetuned Wan2.2 with the zero-shot Wan2.2 on the same seed.")
        gr.HTML(NAV, elem_id="section-nav")
        notice = model_locations(config).notice
        if notice:
            gr.Markdown(notice, elem_id="tiny-banner")
        gpu_banner = gr.Markdown("", visible=False, elem_id="gpu-banner")
        page = Page(blocks, ctx, ReferenceSection(ctx), CaptionSection(ctx), PromptSection(ctx),
                    GenerateSection(ctx), HistorySection(ctx), ScriptApi(ctx))
        for section in (page.reference, page.caption, page.prompt, page.generate, page.history):
            section.wire(page, blocks)
        page.api.wire(blocks)
        blocks.load(functools.partial(gpu_warning, config), None, gpu_banner, queue=False,
                    api_visibility="undocumented")
    # Gradio's own cap is a last guard over every queue; the model's queue has its own, smaller cap.
    blocks.queue(default_concurrency_limit=8, max_size=config.queue_size * 4 + COMPOSE_CONCURRENCY * 4)
    check_queue_internals(blocks)
    blocks.studio_head = SYNC_JS  # used by launch(head=...)
    blocks.studio_css = CSS
    return page


def gpu_warning(config: StudioConfig) -> dict:
    """The banner's text when `--device auto` would run the real models on the CPU: no GPU here, or
    one that torch cannot use (hidden otherwise, in tiny mode and with an explicit --device)."""
    from ..gpu_check import PAGE_MODELS, models_on_cpu_message

    message = models_on_cpu_message(config, PAGE_MODELS)
    return gr.update(value=f"**Warning:** {message}" if message else "", visible=bool(message))
