"""Prompt packs: every word the captioner is prompted with, and how it samples the video.

A pack is one folder:

    pack.json                          name, version, source; the no-change sentence(s); the video
                                       sampling settings; optionally `base`, a pack whose files fill
                                       in the ones this folder lacks
    subject.txt ... camera.txt         the instruction sent with the video for each aspect
    motion_given_subject.txt           appended to the Motion instruction, with {subject}
    spatial_given_subject_scene.txt    appended to the Spatial instruction, with {subject} and {scene}
    critique.txt  revise.txt  reward.txt  merge.txt

The studio ships its own pack (`prompts/captioner/default`, in its own words, laid out as CHAI's
caption policy is) and a tiny one (the same texts, a small frame budget). `python -m studio prompts
import` builds a pack from a user's checkout of CHAI's policy folder (see `policy_import`).
Placeholders are written `{name}`; only the names listed for a template are filled in, so any other
braces in a text are left as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..caption.structured import ASPECTS, MAX_TEMPLATE_CHARS, aspect_name
from ..errors import InputError
from ..resources import prompts_dir
from ..tiny.locations import model_locations
from ..video.sampling import FrameSampling

PACKS_DIR = prompts_dir() / "captioner"
DEFAULT_PACK = PACKS_DIR / "default"
TINY_PACK = PACKS_DIR / "tiny"
MANIFEST = "pack.json"
FIELD = "caption_prompts"
SETTING_HINT = "set --caption-prompts / CHAI_STUDIO_CAPTION_PROMPTS"

# Template file stem -> the placeholders it must contain (and may contain, after the bar).
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{aspect.lower(): ((), ()) for aspect in ASPECTS},
    "motion_given_subject": (("subject",), ()),
    "spatial_given_subject_scene": (("subject", "scene"), ()),
    "critique": (("aspect", "caption"), ("instruction",)),
    "revise": (("aspect", "caption", "critique"), ("instruction",)),
    "reward": (("aspect", "caption"), ()),
    "merge": (("captions", "max_words"), ()),
}
# CHAI's annotation order: Subject, Scene and Camera first; then Motion, written knowing the Subject
# caption, and Spatial, knowing Subject and Scene. Aspect -> (add-on template, the aspects it is given).
CONTEXT: dict[str, tuple[str, tuple[str, ...]]] = {
    "Motion": ("motion_given_subject", ("Subject",)),
    "Spatial": ("spatial_given_subject_scene", ("Subject", "Scene")),
}
MANIFEST_KEYS = {"name", "version", "source", "base", "no_change", "sampling"}


@dataclass(frozen=True)
class PromptPack:
    name: str
    version: str
    source: str
    texts: dict[str, str]
    no_change: tuple[str, ...]
    sampling: FrameSampling
    folder: str = ""

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path | None = None) -> "PromptPack":
        """The pack in `folder` (the studio's default pack when None)."""
        return cls._load(Path(folder).expanduser() if folder else DEFAULT_PACK, seen=())

    @classmethod
    def for_config(cls, config: Any) -> "PromptPack":
        """The pack a config selects: `caption_prompts`, else its model locations' own (the tiny
        pack for the tiny checkpoints), else the default."""
        chosen = str(getattr(config, "caption_prompts", "") or "").strip()
        return cls.load(chosen or PACKS_DIR / model_locations(config).prompt_pack)

    @classmethod
    def _load(cls, folder: Path, seen: tuple[Path, ...]) -> "PromptPack":
        if not folder.is_dir():
            raise InputError(f"no such prompt pack folder: {folder}; {SETTING_HINT} to a folder that "
                             "`python -m studio prompts import` wrote", FIELD)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise InputError(f"{folder} has no {MANIFEST}, so it is not a prompt pack; `python -m studio prompts "
                             f"import POLICY_DIR --out {folder}` builds one from CHAI's policy folder", FIELD)
        manifest = _read_manifest(manifest_path)
        base = None
        if manifest.get("base"):
            base_folder = (folder / str(manifest["base"])).resolve()
            if base_folder in seen or base_folder == folder.resolve():
                raise InputError(f"{manifest_path}: base {manifest['base']!r} leads back to this pack", FIELD)
            base = cls._load(base_folder, seen + (folder.resolve(),))
        texts = {}
        for name, (required, optional) in TEMPLATES.items():
            path = folder / f"{name}.txt"
            if path.is_file():
                texts[name] = _read_template(path, required)
            elif base is not None:
                texts[name] = base.texts[name]
            else:
                raise InputError(f"{path} is missing; a prompt pack needs every one of "
                                 f"{', '.join(n + '.txt' for n in TEMPLATES)}", FIELD)
        no_change = manifest.get("no_change", list(base.no_change) if base else None)
        if (not isinstance(no_change, list) or not no_change
                or not all(isinstance(s, str) and s.strip() for s in no_change)):
            raise InputError(f"{manifest_path}: no_change must be a list of one or more sentences", FIELD)
        sampling = _sampling(manifest.get("sampling"), base.sampling if base else None, manifest_path)
        for key in ("name", "version", "source"):
            value = manifest.get(key, getattr(base, key, None) if base and key != "name" else None)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{manifest_path}: {key} must be non-empty text", FIELD)
        return cls(name=manifest["name"].strip(), version=str(manifest.get("version", base.version if base else "")),
                   source=str(manifest.get("source", base.source if base else "")), texts=texts,
                   no_change=tuple(s.strip() for s in no_change), sampling=sampling, folder=str(folder))

    # -- identity ---------------------------------------------------------------------------------
    @property
    def sha256(self) -> str:
        """A hash of everything the model is prompted with and how the video is sampled: two packs
        with the same hash caption the same way (the name and the folder do not count)."""
        content = {"texts": self.texts, "no_change": list(self.no_change),
                   "sampling": dataclasses.asdict(self.sampling)}
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def manifest(self) -> dict[str, str]:
        """What a caption file records about the pack it was made with."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def label(self) -> str:
        return f"{self.name} v{self.version} (sha256 {self.sha256[:12]})"

    # -- texts ------------------------------------------------------------------------------------
    def instruction(self, aspect: str, context: Mapping[str, str] | None = None) -> str:
        """The exact text sent with the video to write `aspect`. With `context` (earlier captions by
        aspect), Motion and Spatial get their add-on after the instruction, as CHAI's policy does."""
        aspect = aspect_name(aspect)
        text = self.texts[aspect.lower()]
        if context and aspect in CONTEXT:
            template, needs = CONTEXT[aspect]
            values = {need.lower(): context[need].strip() for need in needs}
            text = text + "\n\n" + self.render(template, **values)
        return text

    def render(self, name: str, **values: object) -> str:
        required, optional = TEMPLATES[name]
        allowed = set(required) | set(optional)
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in allowed else m.group(0),
                      self.texts[name])

    def says_no_change(self, critique: str) -> bool:
        """True when a critique is (or starts with) one of the pack's no-change sentences: the
        model was trained to answer exactly that when a caption is right, sometimes with more after it."""
        said = _normalised(critique)
        return any(said.startswith(_normalised(sentence).rstrip(".!")) for sentence in self.no_change)

    def save(self, folder: str | Path) -> Path:
        """Write this pack as a self-contained folder (no base)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.texts.items():
            (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        manifest = {"name": self.name, "version": self.version, "source": self.source,
                    "no_change": list(self.no_change), "sampling": dataclasses.asdict(self.sampling)}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return folder


def _normalised(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"^[\W_]+", "", text.strip())  # a leading quote, bullet or "**"
    return " ".join(text.lower().split())


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text", FIELD) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})", FIELD) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object", FIELD)
    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}; a pack.json has {', '.join(sorted(MANIFEST_KEYS))}",
                         FIELD)
    return data


def _read_template(path: Path, required: tuple[str, ...]) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text", FIELD) from exc
    if not text or len(text) > MAX_TEMPLATE_CHARS:
        raise InputError(f"{path} must hold 1 to {MAX_TEMPLATE_CHARS} characters", FIELD)
    missing = [p for p in required if "{" + p + "}" not in text]
    if missing:
        raise InputError(f"{path} must contain the placeholder(s) {', '.join('{' + p + '}' for p in missing)}", FIELD)
    return text


def _sampling(data: Any, base: FrameSampling | None, path: Path) -> FrameSampling:
    if data is None:
        if base is None:
            raise InputError(f"{path}: sampling is missing (fps, resize and the pixel budgets)", FIELD)
        return base
    if not isinstance(data, dict):
        raise InputError(f"{path}: sampling must be an object", FIELD)
    known = {f.name for f in dataclasses.fields(FrameSampling)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown sampling key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                         FIELD)
    try:
        return dataclasses.replace(base, **data) if base else FrameSampling(**data)
    except InputError as exc:
        raise InputError(f"{path}: sampling.{exc}", FIELD) from exc
    except TypeError as exc:
        raise InputError(f"{path}: sampling: {exc}", FIELD) from exc
