"""A prompt pack from a checkout of CHAI's caption-policy folder (`caption_policy/policy/`).

The CHAI captioner was post-trained on pre-captions prompted with that folder's texts, so a pack
built from it prompts the model in the words it was trained on. The studio never ships those texts:
this reads them from the user's own copy. Per aspect:

    instruction = <folder>/policy.txt, then format_instruction.txt where the folder has one
    Motion add-on = subject_motion_dynamics/has_subject_description.txt
    Spatial add-on = spatial_framing_dynamics/has_subject_scene_description.txt

with the add-ons' placeholders `{subject_description}` / `{scene_description}` renamed to the
studio's `{subject}` / `{scene}`. The critique, revise, reward and merge templates, the no-change
sentences and the sampling settings come from the studio's default pack (the policy folder has none).
The label-specific paragraphs (framing, movement, point of view, shot size) were added per clip from
human labels the studio does not have, so they are left out and listed as such.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from ..caption.structured import ASPECTS
from ..errors import InputError
from .packs import MANIFEST, PromptPack

FIELD = "POLICY_DIR"
ASPECT_FOLDERS = {
    "Subject": "subject_description",
    "Scene": "scene_composition_dynamics",
    "Motion": "subject_motion_dynamics",
    "Spatial": "spatial_framing_dynamics",
    "Camera": "camera_framing_dynamics",
}
ADD_ONS = {  # template -> (file in the aspect's folder, CHAI placeholder -> the studio's)
    "motion_given_subject": ("Motion", "has_subject_description.txt", {"subject_description": "subject"}),
    "spatial_given_subject_scene": ("Spatial", "has_subject_scene_description.txt",
                                    {"subject_description": "subject", "scene_description": "scene"}),
}
# Files the policy folder has that a pack does not use, and why.
LABEL_PARAGRAPHS = {
    "subject_description": ("has_shot_size_description.txt",),
    "scene_composition_dynamics": ("has_pov_info.txt",),
    "spatial_framing_dynamics": ("framing_subject.txt", "framing_scene.txt", "movement.txt"),
    "subject_motion_dynamics": (),
    "camera_framing_dynamics": (),
}
IMAGE_VARIANTS = ("format_instruction_image.txt", "policy_image.txt")  # for still images, not video
# Caption types in that folder the CHAI captioner was not trained on.
EXTRA_FOLDERS = ("camera_motion", "color_composition_dynamics", "lighting_effects_dynamics",
                 "lighting_setup_dynamics")


def import_policy(policy_dir: str | Path, out: str | Path, name: str = "chai-policy") -> tuple[PromptPack, list[str]]:
    """Build a pack from `policy_dir` into `out`; returns it and one note per file left out."""
    root = _policy_root(Path(policy_dir).expanduser())
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise InputError(f"{out} exists and is not an empty folder or a prompt pack; choose a new --out", "--out")
    studio = PromptPack.load()
    texts = dict(studio.texts)
    read: list[Path] = []
    for aspect in ASPECTS:
        folder = root / ASPECT_FOLDERS[aspect]
        if not folder.is_dir():
            raise InputError(f"{folder} is missing: the {aspect} policy folder; point POLICY_DIR at CHAI's "
                             "caption_policy/policy folder", FIELD)
        parts = [_read(folder / "policy.txt", read).rstrip()]
        if (folder / "format_instruction.txt").is_file():
            parts.append(_read(folder / "format_instruction.txt", read).strip())
        texts[aspect.lower()] = "\n\n".join(parts).rstrip()
    for template, (aspect, filename, renames) in ADD_ONS.items():
        text = _read(root / ASPECT_FOLDERS[aspect] / filename, read).strip()
        for theirs, ours in renames.items():
            if "{" + theirs + "}" not in text:
                raise InputError(f"{root / ASPECT_FOLDERS[aspect] / filename} has no {{{theirs}}} placeholder; "
                                 "it is not the add-on this import expects", FIELD)
            text = text.replace("{" + theirs + "}", "{" + ours + "}")
        texts[template] = text
    notes = _left_out(root, read)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in read)).hexdigest()
    pack = dataclasses.replace(
        studio, name=name, version=digest[:12], texts=texts, folder=str(out),
        source=f"CHAI caption policy folder {root.resolve()} (policy.txt and format_instruction.txt per aspect, "
               f"the Motion and Spatial add-ons); critique, revise, reward and merge templates and sampling from "
               f"{studio.name} v{studio.version}")
    pack.save(out)
    return PromptPack.load(out), notes


def _policy_root(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"no such folder: {path}; give the caption_policy/policy folder of a CHAI checkout", FIELD)
    if not (path / ASPECT_FOLDERS["Camera"]).is_dir() and (path / "policy").is_dir():
        return path / "policy"  # the caption_policy folder above it
    return path


def _read(path: Path, read: list[Path]) -> str:
    if not path.is_file():
        raise InputError(f"{path} is missing; a CHAI policy folder has it", FIELD)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text", FIELD) from exc
    if not text.strip():
        raise InputError(f"{path} is empty", FIELD)
    read.append(path)
    return text


def _left_out(root: Path, read: list[Path]) -> list[str]:
    """One line per file or folder of the policy folder that the pack does not use."""
    notes = []
    used = set(read)
    for child in sorted(root.iterdir()):
        if child.name in EXTRA_FOLDERS:
            notes.append(f"skipped {child.name}/: a caption type the CHAI captioner was not trained on")
            continue
        if child.name not in LABEL_PARAGRAPHS:
            notes.append(f"ignored unknown {'folder' if child.is_dir() else 'file'} {child}")
            continue
        for file in sorted(child.iterdir()):
            if file in used:
                continue
            if file.name in IMAGE_VARIANTS:
                notes.append(f"skipped {child.name}/{file.name}: the variant for still images")
            elif file.name in LABEL_PARAGRAPHS[child.name]:
                notes.append(f"skipped {child.name}/{file.name}: a paragraph added per clip from human labels")
            else:
                notes.append(f"ignored unknown file {file}")
    return notes
