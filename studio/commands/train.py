from __future__ import annotations

import argparse
import sys

HELP = ("Train a LoRA on the Wan2.2 transformer from a `studio dataset` folder; the result loads with "
        "--finetuned LORA_DIR. Data-parallel on several GPUs with `accelerate launch -m studio train ...`.")
MODELS = ("trainer",)  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation.presets import PRESETS
    from ..training.options import DEFAULT_TARGETS, LR_SCHEDULES, MIXED_PRECISION, TrainOptions

    d = TrainOptions()
    parser.add_argument("dataset", metavar="DATASET", help="folder written by `python -m studio dataset`")
    parser.add_argument("--out", metavar="LORA_DIR", required=True, help="where the LoRA, metrics and checkpoints go")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="Wan2.2 family (default: the dataset's; must match it)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in LORA_DIR")
    parser.add_argument("--stop-after", metavar="N", type=int, default=None,
                        help="train N steps of the run, checkpoint and stop (for time-limited jobs; --resume later)")
    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--rank", metavar="R", help=f"LoRA rank (default: {d.rank})")
    lora.add_argument("--alpha", metavar="A", help="LoRA alpha; the update is scaled by alpha/rank (default: rank)")
    lora.add_argument("--target-modules", metavar="NAMES",
                      help=f"comma-separated module names to adapt (default: {','.join(DEFAULT_TARGETS)})")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--steps", metavar="N", help=f"optimizer steps (default: {d.steps})")
    opt.add_argument("--learning-rate", "--lr", dest="learning_rate", metavar="LR",
                     help=f"AdamW learning rate (default: {d.learning_rate:g})")
    opt.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None, help=f"(default: {d.lr_schedule})")
    opt.add_argument("--warmup-steps", metavar="N", help=f"linear warm-up steps (default: {d.warmup_steps})")
    opt.add_argument("--batch-size", metavar="N", help=f"shots per micro-batch and process (default: {d.batch_size})")
    opt.add_argument("--gradient-accumulation", metavar="N",
                     help=f"micro-batches per optimizer step (default: {d.gradient_accumulation})")
    opt.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false",
                     default=None, help="keep activations (faster, much more memory)")
    opt.add_argument("--mixed-precision", choices=MIXED_PRECISION, default=None,
                     help="bf16 autocast with bf16 base weights (default: auto = bf16 on CUDA, float32 on CPU)")
    opt.add_argument("--seed", metavar="N", help=f"fixes LoRA init, data order and noise (default: {d.seed})")
    opt.add_argument("--shift", metavar="S", help="timestep shift for the sigmas (default: the preset's)")
    opt.add_argument("--first-frame-prob", metavar="P",
                     help=f"TI2V: share of samples trained as image starts (default: {d.first_frame_prob:g})")
    opt.add_argument("--max-grad-norm", metavar="N", help=f"gradient clipping (default: {d.max_grad_norm:g})")
    opt.add_argument("--weight-decay", metavar="W", help=f"AdamW weight decay (default: {d.weight_decay:g})")
    check = parser.add_argument_group("checkpoints and validation")
    check.add_argument("--checkpoint-every", metavar="N", help=f"(default: {d.checkpoint_every})")
    check.add_argument("--keep-checkpoints", metavar="N", help=f"newest checkpoints kept (default: {d.keep_checkpoints})")
    check.add_argument("--validate-every", metavar="N", help=f"validation loss every N steps (default: {d.validate_every})")
    check.add_argument("--render-every", metavar="N",
                       help=f"side-by-side renders of fixed prompts every N steps; 0 = never (default: {d.render_every})")
    check.add_argument("--render-steps", metavar="N", help=f"denoising steps per render (default: {d.render_steps})")
    check.add_argument("--validation-prompts", metavar="N",
                       help=f"held-back prompts rendered (default: {d.validation_prompts})")
    check.add_argument("--val-fraction", metavar="F", help=f"share of shots held back (default: {d.val_fraction:g})")
    check.add_argument("--log-every", metavar="N", help=f"metrics row every N steps (default: {d.log_every})")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=("baseline", "device", "tiny", "tiny_dir"))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..training.options import TrainOptions

    config = StudioConfig.from_args(args)
    options = TrainOptions.from_user(**{name: getattr(args, name, None) for name in TrainOptions.__dataclass_fields__})
    from ..training.plan import plan_training

    plan = plan_training(config, args.dataset, args.out, options, preset=args.preset, resume=args.resume,
                         stop_after=args.stop_after)
    from ..logging_setup import quiet_loaded_libraries
    from ..progress import progress_bar
    from ..training.trainer import train

    quiet_loaded_libraries()
    shots = len(plan.train_rows)
    print(f"training a rank-{options.rank} LoRA for {plan.preset.label} on {shots} shot{'s' * (shots != 1)} "
          f"({len(plan.val_rows)} held back), {options.steps} steps", file=sys.stderr)
    result = train(plan, progress=progress_bar)
    if not result.main_process:
        return 0
    if not result.finished:
        print(f"stopped at step {result.step} of {options.steps}; continue with --resume", file=sys.stderr)
    else:
        print(f"wrote {', '.join(str(p) for p in result.lora_files)}", file=sys.stderr)
    print(args.out)
    return 0
