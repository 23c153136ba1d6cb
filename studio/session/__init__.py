"""The studio's one typed API: request objects checked once, steps that run models through one
`Worker`, and the limits every caller shares. The page (`studio/ui`) and the command line
(`studio/commands`) are both thin adapters over `Session`."""

from .events import CaptionText, Done, Event, Plan, SideStep, Status, Worker
from .limits import Limits
from .models import SharedModels
from .requests import (
    COMPARISON_CHOICES, COMPOSE_MODES, AspectRequest, BestOfRequest, CaptionRequest, ClipRange, ComposeRequest,
    GenerateRequest, RunRequest, caption_from_user,
)
from .runs import HistoryFilter, RunCard, RunHistory, RunView
from .session import Composition, ReferenceInfo, Session, clean_model_text

__all__ = [
    "COMPARISON_CHOICES", "COMPOSE_MODES", "AspectRequest", "BestOfRequest", "CaptionRequest", "CaptionText",
    "ClipRange", "ComposeRequest", "Composition", "Done", "Event", "GenerateRequest", "HistoryFilter", "Limits", "Plan", "ReferenceInfo", "RunCard",
    "RunHistory", "RunRequest", "RunView", "Session", "SharedModels", "SideStep", "Status", "Worker",
    "caption_from_user", "clean_model_text",
]
