from __future__ import annotations

import argparse
import json

HELP = "List the shots (cuts) PySceneDetect finds in a clip."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="video file")
    parser.add_argument("--threshold", type=float, default=27.0,
                        help="content-detector threshold; lower finds more cuts (default %(default)g)")
    parser.add_argument("--json", action="store_true", help="print JSON (clip info and shots)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=("max_clip_seconds",))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..video import detect_shots, probe

    config = StudioConfig.from_args(args)
    info = probe(args.clip, config.max_clip_seconds)
    shots = detect_shots(args.clip, threshold=args.threshold, info=info)
    if args.json:
        print(json.dumps({"clip": info.to_dict(), "shots": [
            {"number": s.index + 1, "index": s.index, "start": s.start, "end": s.end} for s in shots]}, indent=2))
        return 0
    print(f"{info.path}: {info.duration:.2f} s, {info.width}x{info.height}, {info.fps:.3g} fps, {len(shots)} shot(s)")
    for shot in shots:
        # Numbered from 1, as on the page; `caption --shot N` takes the same number.
        print(f"  shot {shot.index + 1}: {shot.start:8.2f} s - {shot.end:8.2f} s  ({shot.duration:.2f} s)")
    return 0
