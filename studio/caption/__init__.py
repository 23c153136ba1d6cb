"""The structured CHAI caption and its vocabulary of primitives."""

from .structured import ASPECTS, AspectCaption, Provenance, Revision, StructuredCaption

__all__ = ["ASPECTS", "AspectCaption", "Provenance", "Revision", "StructuredCaption"]
