from __future__ import annotations

import argparse
import sys

HELP = "Prompt packs: import CHAI's caption-policy folder as a pack, or show what a pack prompts the captioner with."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    importing = actions.add_parser(
        "import", allow_abbrev=False, help="build a pack from a checkout of CHAI's caption_policy/policy folder",
        description="Build a prompt pack from CHAI's caption-policy folder (clone CHAI's public annotation "
                    "repository and give its caption_policy/policy folder). Use it with --caption-prompts PACK_DIR.")
    importing.add_argument("policy_dir", metavar="POLICY_DIR", help="CHAI's caption_policy/policy folder")
    importing.add_argument("--out", required=True, metavar="PACK_DIR", help="folder to write the pack into")
    importing.add_argument("--name", default="chai-policy", help="the pack's name (default: chai-policy)")
    showing = actions.add_parser(
        "show", allow_abbrev=False, help="print each instruction and template the model would see",
        description="Print a pack: its manifest, sampling, no-change sentences, and every instruction and template "
                    "as the captioner receives it (placeholders shown in angle brackets).")
    showing.add_argument("pack", nargs="?", default=None, metavar="PACK",
                         help="pack folder (default: the active one: --caption-prompts, else the studio's own)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(showing, only=("caption_prompts", "tiny"))


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        from ..captioner.policy_import import import_policy

        pack, notes = import_policy(args.policy_dir, args.out, args.name)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {args.out}: {pack.label()}; use it with --caption-prompts {args.out}", file=sys.stderr)
        return 0
    print(describe(_chosen_pack(args)))
    return 0


def _chosen_pack(args: argparse.Namespace):
    from ..captioner.packs import PromptPack
    from ..config import StudioConfig

    if args.pack:
        return PromptPack.load(args.pack)
    return PromptPack.for_config(StudioConfig.from_args(args))


def describe(pack) -> str:
    """The pack as the captioner sees it, one titled block per prompt."""
    import dataclasses

    from ..caption.structured import ASPECTS
    from ..captioner.packs import CONTEXT

    sampling = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(pack.sampling).items())
    blocks = [f"# {pack.label()}\nfolder: {pack.folder}\nsource: {pack.source}\nsampling: {sampling}\n"
              "no-change sentences:\n" + "\n".join(f"  {s}" for s in pack.no_change)]
    for aspect in ASPECTS:
        context = {need: f"<the {need} caption>" for need in CONTEXT.get(aspect, ("", ()))[1]}
        title = f"{aspect} instruction" + (f" (two-stage: given {' and '.join(context)})" if context else "")
        blocks.append(f"## {title}\n{pack.instruction(aspect, context or None)}")
    markers = {"aspect": "<aspect>", "caption": "<caption>", "critique": "<critique>",
               "instruction": "<the aspect's instruction>", "captions": "<the five captions>",
               "max_words": "<word budget>"}
    for name in ("critique", "revise", "reward", "merge"):
        blocks.append(f"## {name} template\n{pack.render(name, **markers)}")
    return "\n\n".join(blocks)
