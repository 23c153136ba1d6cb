"""The shapes of the JSON the studio is sent: pydantic checks the keys and their types, and a
refusal is said again as the one-line `InputError` the rest of the studio raises, naming the field.

pydantic decides shape only (which keys, text or number or list, unknown keys refused, nothing
coerced: true is not 1 and "3" is not 3). What a number may be (whole, finite, in range) is
`studio.values`' rule, applied by the code that uses it, so a value means the same whichever door
it came through. (run.json, which the studio writes and reads back, has its models beside its
reader in `studio.generation.run_records`.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, StrictStr, ValidationError
from pydantic_core import PydanticCustomError

from .errors import InputError
from .values import kind_of

Model = TypeVar("Model", bound=BaseModel)


def _json_number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "expected a number")
    return value


def _number_or_text(value: Any) -> int | float | str:
    return value if isinstance(value, str) else _json_number(value)


# A JSON number (never true/false): its wholeness and range are checked where it is used.
Number = Annotated[Union[int, float], PlainValidator(_json_number)]
# What a page box or a script may send for a number: a JSON number or numeric text.
NumberOrText = Annotated[Union[int, float, str], PlainValidator(_number_or_text)]

# pydantic's error types, in the words a message uses for what was expected.
EXPECTED = {"string_type": "text", "int_type": "a number", "float_type": "a number", "number_type": "a number",
            "dict_type": "a JSON object", "model_type": "a JSON object", "list_type": "a list",
            "bool_type": "true or false"}
# The names pydantic puts in an error's location for the member of a union it tried.
UNION_TAGS = {"str", "int", "float", "bool"}


class Strict(BaseModel):
    """A JSON object with exactly these keys, each of its declared type."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def given(self) -> dict[str, Any]:
        """The keys the sender wrote (a key sent as null counts as written)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def read(model: type[Model], data: Any, field: str, *, unknown: Callable[[str, list[str]], InputError],
         wrong: Mapping[str, str] | None = None, by_path: bool = False) -> Model:
    """`data` checked as `model`. `field` names the whole object in a message about its kind;
    `unknown(where, names)` words a refusal of unknown keys (`where` is "" at the top, else the
    key holding them, named as the field is); `wrong` gives a key's own sentence for a value of
    the wrong type. A field is named by its innermost key, or with `by_path` by its whole path
    ("aspects.Camera.history[0]"), for a nested file where one key name means several places."""
    if not isinstance(data, Mapping):
        raise InputError(f"expected a JSON object, got {kind_of(data)}", field, "not-an-object")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise refusal(model, exc, unknown, wrong or {}, by_path) from None


def refusal(model: type[BaseModel], exc: ValidationError, unknown: Callable[[str, list[str]], InputError],
            wrong: Mapping[str, str], by_path: bool = False) -> InputError:
    """One InputError for pydantic's list of errors: unknown keys first (all of them named), else
    the value of the wrong type that pydantic got furthest into (for a union, the member that
    fitted best), named by its key."""
    errors = exc.errors(include_url=False)
    extra = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        where = extra[0][:-1]
        names = sorted(str(loc[-1]) for loc in extra if loc[:-1] == where)
        return unknown(_path(where) if by_path else _key_at(model, where)[0], names)
    deepest = max(len(_path_parts(e["loc"])) for e in errors)
    first = next(e for e in errors if len(_path_parts(e["loc"])) == deepest)
    key, nested = _key_at(model, first["loc"])
    field = _path(first["loc"]) if by_path else key
    if key in wrong and not nested:
        return InputError(f"{wrong[key]}, got {kind_of(first['input'])}", field, "wrong-type")
    # A union's members each refuse: say every kind it takes ("text or a JSON object").
    alike = [e for e in errors if _path_parts(e["loc"]) == _path_parts(first["loc"])]
    kinds = list(dict.fromkeys(EXPECTED.get(e["type"]) for e in alike))
    if None in kinds:  # a constraint other than the type (none of the shapes here has one yet)
        return InputError(first["msg"], field or None, "invalid")
    return InputError(f"expected {' or '.join(kinds)}, got {kind_of(first['input'])}", field or None, "wrong-type")


def _path_parts(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error's location without the union members pydantic tried on the way."""
    models = {kind.__name__ for kind in Strict.__subclasses__()}
    return tuple(part for part in loc if isinstance(part, int) or part not in UNION_TAGS | models)


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in _path_parts(loc):
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


# -- batch jobs ---------------------------------------------------------------------------------------


class JobSettings(Strict):
    """A job's overrides, named as `generate`'s flags."""

    duration: Optional[NumberOrText] = None
    frames: Optional[NumberOrText] = None
    height: Optional[NumberOrText] = None
    width: Optional[NumberOrText] = None
    steps: Optional[NumberOrText] = None
    guidance: Optional[NumberOrText] = None
    guidance_2: Optional[NumberOrText] = None
    shift: Optional[NumberOrText] = None
    negative_prompt: Optional[StrictStr] = None
    profile: Optional[StrictStr] = None
    step_cache: Optional[StrictStr] = None


class JobLine(Strict):
    """One line of a jobs file: exactly one of clip, caption and prompt (checked by the reader)."""

    clip: Optional[StrictStr] = None
    caption: Optional[StrictStr] = None
    prompt: Optional[StrictStr] = None
    shot: Optional[Number] = None
    start: Optional[Number] = None
    end: Optional[Number] = None
    seeds: Optional[list[Number]] = None
    settings: Optional[JobSettings] = None
    mode: Optional[StrictStr] = None
    short_prompt: Optional[StrictStr] = None
    id: Optional[StrictStr] = None
    profile: Optional[StrictStr] = None


# -- the script API's `settings` ---------------------------------------------------------------------


class GenerateSettings(Strict):
    """`/generate` and `/explore`'s settings: every key optional, the preset's own value when left out."""

    preset: Optional[StrictStr] = None
    seconds: Optional[NumberOrText] = None
    resolution: Optional[StrictStr] = None
    steps: Optional[NumberOrText] = None
    guidance: Optional[NumberOrText] = None
    shift: Optional[NumberOrText] = None
    seed: Optional[NumberOrText] = None
    negative_prompt: Optional[StrictStr] = None
    mode: Optional[StrictStr] = None
    short_prompt: Optional[StrictStr] = None
    finetuned: Optional[StrictStr] = None
    speed_adapter: Optional[StrictStr] = None
    profile: Optional[StrictStr] = None
    step_cache: Optional[StrictStr] = None


class RenderFinalSettings(Strict):
    """`/render_final`'s settings: the profile and step cache to render at, and the finetuned slot."""

    profile: Optional[StrictStr] = None
    step_cache: Optional[StrictStr] = None
    finetuned: Optional[StrictStr] = None


def _key_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, bool]:
    """The innermost object key in an error's location (past it: list positions and union
    members), and whether it lies inside a nested object."""
    key, depth = "", 0
    for part in loc:
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        if part not in fields:
            break
        key, depth = str(part), depth + 1
        model = next((kind for kind in getattr(fields[part].annotation, "__args__", (fields[part].annotation,))
                      if isinstance(kind, type) and issubclass(kind, BaseModel)), None)
    return key, depth > 1


# -- caption files (the studio's own schema; plain {aspect: text} and CHAI records are read as such) ---


class RevisionRecord(Strict):
    before: StrictStr = ""
    critique: StrictStr = ""
    after: StrictStr = ""
    source: Optional[StrictStr] = None
    created: Optional[StrictStr] = None


class AspectRecord(Strict):
    text: StrictStr = ""
    primitives: list[StrictStr] = []
    reward: Optional[Number] = None
    reward_text: Optional[StrictStr] = None
    history: list[RevisionRecord] = []


class ProvenanceRecord(Strict):
    clip: Optional[StrictStr] = None
    start: Optional[Number] = None
    end: Optional[Number] = None
    models: dict[str, StrictStr] = {}
    source: Optional[StrictStr] = None
    created: Optional[StrictStr] = None
    prompt_pack: dict[str, StrictStr] = {}
    instructions: dict[str, StrictStr] = {}


class CaptionFile(Strict):
    """A structured caption as `StructuredCaption.to_dict` writes it; an aspect may be given as
    its text alone ({"aspects": {"Camera": "text"}}). Aspect names are checked by the reader."""

    # "schema" would shadow BaseModel.schema, so the attribute is named for what it holds.
    schema_name: Optional[StrictStr] = Field(None, alias="schema")
    schema_version: Optional[StrictInt] = None
    title: Optional[StrictStr] = None
    aspects: dict[str, Union[StrictStr, AspectRecord]] = {}
    provenance: ProvenanceRecord = ProvenanceRecord()


def field_names(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)
