"""The structured CHAI caption and its vocabulary of primitives."""

from .structured import ASPECTS, AspectCaption, Provenance, Revision, StructuredCaption, aspect_name
from .vocabulary import Vocabulary, apply_primitive, load_vocabulary, remove_primitive, validate_primitives
from .vocabulary_parts import AspectInfo, Primitive, PrimitiveGroup, SubAspect

__all__ = [
    "ASPECTS", "AspectCaption", "Provenance", "Revision", "StructuredCaption", "aspect_name",
    "AspectInfo", "Primitive", "PrimitiveGroup", "SubAspect", "Vocabulary",
    "apply_primitive", "load_vocabulary", "remove_primitive", "validate_primitives",
]
