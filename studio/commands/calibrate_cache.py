from __future__ import annotations

import argparse
import sys

HELP = ("Measure MagCache's magnitude ratios for the configured checkpoints of a preset (one plain generation per "
        "model, the finetune included) and save them for `--step-cache magcache`.")

DEFAULT_PROMPT = ("A slow dolly forward down a rain-soaked street at night, neon signs reflected in the puddles, a "
                  "woman in a red coat walking away from the camera, shallow depth of field.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation import DEFAULT_PRESET, PRESETS

    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                        help=f"baseline model family (default: {DEFAULT_PRESET})")
    parser.add_argument("--steps", metavar="N", default=None,
                        help="denoising steps to measure over (default: the preset's); runs at other step counts "
                             "use the nearest calibration, interpolated")
    parser.add_argument("--prompt", metavar="TEXT", default=DEFAULT_PROMPT,
                        help="the prompt the calibration generation renders (default: a generic cinematic shot)")
    parser.add_argument("--seed", metavar="N", default="0", help="seed of the calibration generation (default 0)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=(
        "baseline", "finetuned", "lora_scale", "device", "dtype", "memory_mode", "attention", "precision", "tiny", "tiny_dir",
        "settings_dir"))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..errors import InputError
    from ..generation.settings import GenerationSettings
    from ..tiny.locations import model_locations

    config = StudioConfig.from_args(args)
    preset = model_locations(config).preset(args.preset)
    # Every value is checked before the generator loads: a bad flag costs no model load.
    settings = GenerationSettings.from_user(preset, steps=args.steps, seed=args.seed, step_cache="none")
    if not str(args.prompt or "").strip():
        raise InputError("is empty; give the calibration generation a prompt", "--prompt")
    from ..generation.precision import check_precision

    check_precision(config.precision)
    if config.finetuned.strip():
        from ..generation.finetune import classify_finetuned

        classify_finetuned(config.finetuned)

    from ..generation.calibration import save_calibration
    from ..generation.comparison import BASELINE_MODEL, FINETUNED_MODEL
    from ..logging_setup import quiet_loaded_libraries
    from ..session.models import SharedModels

    generator = SharedModels(config).generator(args.preset)
    quiet_loaded_libraries()
    loaded, renderer = generator.models, generator.renderer
    models = [BASELINE_MODEL] + ([FINETUNED_MODEL] if loaded.has_finetune else [])
    for model in models:
        print(f"calibrating MagCache on the {model} model ({settings.steps} steps)", file=sys.stderr, flush=True)
        ratios = renderer.calibrate_magcache(model, args.prompt, settings)
        details = {"shift": settings.shift, "guidance": settings.guidance, "seed": settings.seed,
                   "size": [settings.width, settings.height, settings.num_frames],
                   "expert_steps": renderer.expert_steps(settings)}
        if model == FINETUNED_MODEL and loaded.shares_base:
            details["lora_scale"] = loaded.lora_scale  # the adapter's strength changes the ratios too
        path = save_calibration(config.settings_dir, preset.name, preset.tiny, model, loaded.model_location(model),
                                settings.steps, ratios, details)
        print(path)
    return 0
