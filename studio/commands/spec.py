"""`python -m studio spec`: print the CHAI vocabulary (aspects, sub-aspects, primitive groups)."""

from __future__ import annotations

import argparse
import json

from ..caption.vocabulary import Vocabulary, load_vocabulary

HELP = "Print the CHAI vocabulary: aspects, sub-aspects and primitive groups with definitions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the vocabulary as JSON instead of text")
    parser.add_argument("--aspect", metavar="NAME", default=None,
                        help="only this aspect (Subject, Scene, Motion, Spatial or Camera; any case)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown glossary instead of text")


def run(args: argparse.Namespace) -> int:
    vocab = load_vocabulary()
    if args.aspect is not None:
        vocab.aspect(args.aspect)  # raises InputError naming the valid aspects
    if args.json:
        print(json.dumps(vocab.to_dict(args.aspect), indent=2, ensure_ascii=False))
    elif args.markdown:
        print(vocab.glossary_markdown(args.aspect), end="")
    else:
        print(format_text(vocab, args.aspect), end="")
    return 0


def format_text(vocab: Vocabulary, aspect: str | None = None) -> str:
    """Readable outline: aspect -> sub-aspects -> the groups feeding each -> primitives."""
    lines: list[str] = []
    aspects = vocab.aspects if aspect is None else (vocab.aspect(aspect),)
    for info in aspects:
        groups = vocab.groups_for(info.name)
        count = sum(len(g.primitives) for g in groups)
        lines += [f"{info.name.upper()} — {info.description}",
                  f"  {len(info.sub_aspects)} sub-aspects, {len(groups)} primitive groups, {count} primitives", ""]
        for sub in info.sub_aspects:
            lines.append(f"  {sub.id} ({sub.name}): {sub.description}")
            for group in (g for g in groups if g.sub_aspect == sub.id):
                pick = "pick one" if group.exclusive else "pick any"
                lines.append(f"    [{group.id}] {group.name} ({pick}): {group.definition}")
                width = max(len(p.qualified_id) for p in group.primitives)
                lines += [f"      {p.qualified_id:<{width}}  {p.name}: {p.definition}" for p in group.primitives]
        lines.append("")
    return "\n".join(lines)
