"""`python -m studio train`: a LoRA on the Wan2.2 transformer from a cached dataset.

Stages, in order: check the request (dataset, options, output folder; no model loaded) ->
load the transformer(s) alone and add the LoRA -> train with accelerate (data-parallel under
`accelerate launch`) -> validate, render, checkpoint along the way -> save the LoRA and its card.

Reproducibility is by construction: which rows a step sees, its noise and its sigmas are pure
functions of (seed, step, micro-batch, rank), never of an RNG's running state, so `--resume`
from a checkpoint (LoRA + optimizer + schedule) continues exactly as if never stopped.

A14B has two experts split at the boundary timestep (high noise above, low noise below). Each
expert gets its own LoRA trained only on its side of the boundary, the way each is used when
sampling: every optimizer step draws its side with the probability the shifted sigma
distribution gives it, so both experts see their share of the schedule.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, ModelLoadError
from ..generation.finetune import ADAPTER_NAME
from ..generation.loading import baseline_location
from ..tiny.locations import model_locations
from ..gpu_check import before_a_model_loads
from . import artifacts
from .encoders import MAX_SEQUENCE_LENGTH
from .flow import flow_batch, flow_loss, shift_sigmas, unshift_sigma
from .plan import EXPERTS, TrainingPlan, dataset_fingerprint
from .validation_renders import build_validation_generator, render_validation

log = logging.getLogger(__name__)

VAL_SIGMAS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fixed noise levels of the validation loss
# How long a rank may wait in a collective (the barrier after main-process work included). The
# default (10 minutes for NCCL) is shorter than one validation render of the full-size A14B
# (two prompts, both sides, both experts, at 1280x720 and 81 frames).
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass
class TrainResult:
    out: Path
    step: int
    finished: bool
    lora_files: list[Path] = field(default_factory=list)
    main_process: bool = True  # False on the other ranks of a data-parallel run, which write nothing


def _mix(*parts: Any) -> int:
    """A 63-bit seed from any parts (stable across processes and runs, unlike hash())."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


class CachedShots:
    """Latents and prompt embeddings of manifest rows, read from their shards when a batch needs them."""

    def __init__(self, root: Path, rows: list[dict[str, Any]]):
        self.root, self.rows = root, rows
        self._order: tuple[int, int, torch.Tensor] | None = None  # (seed, epoch, shuffle) last used

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        from safetensors import safe_open

        latents, embeds = [], []
        for index in indices:
            row = self.rows[index]
            with safe_open(str(self.root / row["latents"]["shard"]), framework="pt") as handle:
                latents.append(handle.get_tensor(row["latents"]["key"]).float())
                tokens = handle.get_tensor(row["embeddings"]["key"]).float()
            padded = torch.zeros(MAX_SEQUENCE_LENGTH, tokens.shape[1])  # the pipeline pads with zeros too
            padded[: tokens.shape[0]] = tokens[:MAX_SEQUENCE_LENGTH]
            embeds.append(padded)
        return torch.stack(latents), torch.stack(embeds)

    def indices(self, micro_batch: int, rank: int, world: int, batch_size: int, seed: int) -> list[int]:
        """Rows for one micro-batch on one rank: consecutive slices of per-epoch shuffles."""
        out = []
        for j in range(batch_size):
            position = (micro_batch * world + rank) * batch_size + j
            epoch, offset = divmod(position, len(self.rows))
            out.append(int(self._shuffle(seed, epoch)[offset]))
        return out

    def _shuffle(self, seed: int, epoch: int) -> torch.Tensor:
        if self._order is None or self._order[:2] != (seed, epoch):
            generator = torch.Generator().manual_seed(_mix(seed, "epoch", epoch))
            self._order = (seed, epoch, torch.randperm(len(self.rows), generator=generator))
        return self._order[2]


class LoraTrainer:
    def __init__(self, plan: TrainingPlan):
        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        self.plan, self.options, self.preset = plan, plan.options, plan.preset
        device = plan.config.resolved_device()
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("cuda was asked for but no CUDA GPU is available; use auto or cpu", "device")
        precision = self.options.mixed_precision
        if precision == "auto":
            precision = "bf16" if device == "cuda" else "no"
        self.accelerator = Accelerator(mixed_precision=precision, cpu=device == "cpu",
                                       kwargs_handlers=[InitProcessGroupKwargs(timeout=COLLECTIVE_TIMEOUT)])
        self.weight_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.shift = self.options.shift or self.preset.shift
        self.location = baseline_location(plan.config, self.preset)
        self.train_data = CachedShots(plan.dataset, plan.train_rows)
        self.val_data = CachedShots(plan.dataset, plan.val_rows)
        self.metrics = artifacts.MetricsLog(plan.out)
        self.generator = None  # the side-by-side generator for validation renders (validation_renders.py)

    # -- models -------------------------------------------------------------------------------------
    def load(self) -> None:
        from diffusers import WanTransformer3DModel
        from diffusers.training_utils import cast_training_params
        from peft import LoraConfig

        before_a_model_loads()
        names = EXPERTS[: 2 if self.preset.two_experts else 1]
        self.transformers = []
        for name in names:
            try:
                model = WanTransformer3DModel.from_pretrained(self.location, subfolder=name, dtype=self.weight_dtype)
            except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all mean no baseline
                raise ModelLoadError(f"could not load {name} of baseline {self.location!r} ({exc}); check "
                                     "--baseline / CHAI_STUDIO_BASELINE") from exc
            model.requires_grad_(False)
            torch.manual_seed(_mix(self.options.seed, "lora-init", name))
            model.add_adapter(LoraConfig(r=self.options.rank, lora_alpha=self.options.alpha,
                                         target_modules=list(self.options.target_modules), init_lora_weights=True),
                              adapter_name=ADAPTER_NAME)
            cast_training_params(model, dtype=torch.float32)  # LoRA weights train in float32
            if self.options.gradient_checkpointing:
                model.enable_gradient_checkpointing()
            self.transformers.append(model)
        self.params = [p for m in self.transformers for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=self.options.learning_rate,
                                           weight_decay=self.options.weight_decay)
        from diffusers.optimization import get_scheduler

        self.schedule = get_scheduler(self.options.lr_schedule, self.optimizer,
                                      num_warmup_steps=self.options.warmup_steps,
                                      num_training_steps=self.options.steps)
        # Only the models are prepared: the optimizer steps once per optimizer step on every rank,
        # and the schedule must not be stepped once per process as accelerate's wrapper would.
        self.models = [self.accelerator.prepare(m) for m in self.transformers]

    @property
    def sharded(self) -> bool:
        """FSDP: weights and optimizer state are split across ranks."""
        from accelerate.utils import DistributedType

        return self.accelerator.distributed_type == DistributedType.FSDP

    def lora_state(self) -> list[dict[str, torch.Tensor]]:
        """The LoRA weights in peft naming, per expert. Under FSDP this gathers the shards, so every rank
        must call it; the full tensors land on the main process."""
        from peft.utils import get_peft_model_state_dict

        if not self.sharded:
            return [get_peft_model_state_dict(m, adapter_name=ADAPTER_NAME) for m in self.transformers]
        states = []
        for model in self.models:
            full = self.accelerator.get_state_dict(model)
            states.append({k.replace(f".{ADAPTER_NAME}", ""): v for k, v in full.items() if ".lora_" in k})
        return states

    def lora_configs(self) -> list[dict[str, Any]]:
        """Each expert's adapter config (rank, alpha, targets) as peft writes it, for the LoRA files'
        headers, the way diffusers' training examples save it."""
        return [m.peft_config[ADAPTER_NAME].to_dict() for m in self.transformers]

    # -- one step -----------------------------------------------------------------------------------
    def expert_for(self, step: int) -> tuple[int, float, float]:
        """Which expert trains at `step`, and the uniform range its sigmas are drawn from."""
        if not self.preset.two_experts:
            return 0, 0.0, 1.0
        boundary = unshift_sigma(self.preset.boundary_ratio, self.shift)
        draw = torch.rand(1, generator=torch.Generator().manual_seed(_mix(self.options.seed, "expert", step)))
        return (0, boundary, 1.0) if float(draw) >= boundary else (1, 0.0, boundary)

    def predict(self, model, batch, embeds: torch.Tensor) -> torch.Tensor:
        with self.accelerator.autocast():
            return model(hidden_states=batch.noisy.to(self.weight_dtype), timestep=batch.timestep,
                         encoder_hidden_states=embeds.to(self.weight_dtype), return_dict=False)[0]

    def make_batch(self, latents, sigmas, generator: torch.Generator, clean_first: torch.Tensor):
        config = self.transformers[0].config
        noise = torch.randn(latents.shape, generator=generator)
        device = self.accelerator.device
        return flow_batch(latents.to(device), noise.to(device), sigmas.to(device), clean_first,
                          per_token=self.preset.expand_timesteps, patch=tuple(config.patch_size[1:]),
                          num_train_timesteps=1000)

    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step (over `gradient_accumulation` micro-batches); `step` counts from 0."""
        options, accelerator = self.options, self.accelerator
        rank, world = accelerator.process_index, accelerator.num_processes
        expert, low, high = self.expert_for(step)
        model = self.models[expert]
        model.train()
        total = torch.zeros((), device=accelerator.device)
        for micro in range(options.gradient_accumulation):
            index = step * options.gradient_accumulation + micro
            latents, embeds = self.train_data.batch(
                self.train_data.indices(index, rank, world, options.batch_size, options.seed))
            generator = torch.Generator().manual_seed(_mix(options.seed, "noise", index, rank))
            sigmas = shift_sigmas(low + (high - low) * torch.rand(options.batch_size, generator=generator), self.shift)
            clean_first = torch.rand(options.batch_size, generator=generator) < options.first_frame_prob
            batch = self.make_batch(latents, sigmas, generator, clean_first)
            last = micro == options.gradient_accumulation - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                loss = flow_loss(self.predict(model, batch, embeds.to(accelerator.device)), batch)
                accelerator.backward(loss / options.gradient_accumulation)
            total += loss.detach() / options.gradient_accumulation
        grad_norm = accelerator.clip_grad_norm_(self.params, options.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        row = {"step": step + 1, "loss": float(accelerator.reduce(total, "mean")),
               "lr": self.schedule.get_last_lr()[0], "grad_norm": float(grad_norm)}
        if self.preset.two_experts:
            row["expert"] = EXPERTS[expert]
        return row

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean loss over the held-back shots at fixed sigmas with fixed noise (comparable across steps)."""
        losses = []
        for model in self.transformers:
            model.eval()
        for index in range(len(self.val_data)):
            latents, embeds = self.val_data.batch([index])
            for level, sigma in enumerate(VAL_SIGMAS):
                generator = torch.Generator().manual_seed(_mix(self.options.seed, "val", index, level))
                batch = self.make_batch(latents, torch.tensor([sigma]), generator, torch.tensor([False]))
                expert = 1 if self.preset.two_experts and sigma < self.preset.boundary_ratio else 0
                prediction = self.predict(self.transformers[expert], batch, embeds.to(self.accelerator.device))
                losses.append(float(flow_loss(prediction, batch)))
        return sum(losses) / len(losses)

    def replica_digest(self) -> str:
        """A hash of this rank's LoRA weights: data-parallel replicas must agree after every step."""
        digest = hashlib.sha256()
        for param in self.params:
            digest.update(param.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]


def train(plan: TrainingPlan, progress=None) -> TrainResult:
    """Run (or resume) the plan to `options.steps`, or `stop_after` steps of it; `progress(what, total,
    initial)` returns a bar. Only the main process writes files."""
    trainer = LoraTrainer(plan)
    options, accelerator = plan.options, trainer.accelerator
    main = accelerator.is_main_process
    began = time.perf_counter()
    if main:
        plan.out.mkdir(parents=True, exist_ok=True)
    trainer.load()
    start = _resume(trainer) if plan.resume else 0
    end = options.steps if plan.stop_after is None else min(options.steps, start + plan.stop_after)
    log.info("training %s: steps %d to %d of %d on %d process(es)", plan.out, start, end, options.steps,
             accelerator.num_processes)
    if start == 0:
        main_process_only(accelerator, lambda: trainer.metrics.append(
            {"step": 0, "loss": None, "val_loss": trainer.validation_loss()}))
    result = TrainResult(plan.out, start, finished=end == options.steps, main_process=main)
    bar = progress("train", options.steps, start) if (progress and main) else None
    for step in range(start, end):
        began_step = time.perf_counter()
        row = trainer.train_step(step)
        done = step + 1
        row["seconds"] = round(time.perf_counter() - began_step, 4)
        logged = done % options.log_every == 0 or done % options.validate_every == 0 or done == end
        if logged and accelerator.num_processes > 1:
            row["replica_digests"] = accelerator.gather_for_metrics([trainer.replica_digest()], use_gather_object=True)
        validate = done % options.validate_every == 0 or done == options.steps
        render = bool(options.render_every and plan.val_rows and options.validation_prompts and (
            done % options.render_every == 0 or done == options.steps))
        if logged or validate or render:
            main_process_only(accelerator, lambda: _report(trainer, row, done, logged, validate, render))
        if done % options.checkpoint_every == 0 or done == end:
            _save_checkpoint(trainer, done)
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
        result.step = done
    if bar is not None:
        bar.close()
    if result.finished:
        lora = trainer.lora_state()  # collective under FSDP

        def write_lora() -> None:
            result.lora_files = artifacts.save_lora(plan.out, lora, trainer.lora_configs())
            rows = trainer.metrics.rows()
            artifacts.write_loss_plot(rows, plan.out / artifacts.PLOT)
            artifacts.write_model_card(plan.out, _summary(trainer, rows, time.perf_counter() - began, result))

        main_process_only(accelerator, write_lora)
    return result


def main_process_only(accelerator, work: Callable[[], Any]) -> None:
    """Run `work` on the main process while every other rank waits for it at a barrier.

    Validation, renders and the model card run on the main process alone. Without the barrier the
    other ranks would run on into the next step and sit inside its gradient all-reduce for as long
    as the work takes, a wait that looks like a stalled collective; at an explicit barrier the wait
    is visible and is bounded by the process group's timeout, which `LoraTrainer` raises to
    COLLECTIVE_TIMEOUT so that a long full-size A14B render fits within it."""
    if accelerator.is_main_process:
        work()
    accelerator.wait_for_everyone()


def _report(trainer: LoraTrainer, row: dict[str, Any], done: int, logged: bool, validate: bool,
            render: bool) -> None:
    """The main process's share of step `done`: validation loss, the metrics row, validation renders."""
    if validate:
        row["val_loss"] = trainer.validation_loss()
    if logged:
        if torch.cuda.is_available():
            row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        trainer.metrics.append(row)
    if render:
        if trainer.generator is None:
            trainer.generator = build_validation_generator(trainer.location, trainer.preset, trainer.transformers,
                                                           str(trainer.accelerator.device), trainer.weight_dtype,
                                                           trainer.plan.out)
        prompts = [row["prompt"] for row in trainer.plan.val_rows[: trainer.options.validation_prompts]]
        render_validation(trainer.generator, trainer.transformers, prompts, trainer.preset, trainer.plan.header,
                          trainer.options, trainer.plan.out / "validation" / f"step-{done:06d}")


def _save_checkpoint(trainer: LoraTrainer, step: int) -> None:
    """LoRA, optimizer and schedule state at `step`. Data-parallel replicas hold the same optimizer
    state, so the main process saves it; under FSDP each rank adds its own shard."""
    accelerator = trainer.accelerator
    lora = trainer.lora_state()
    state = {"step": step, "lora": lora, "optimizer": None if trainer.sharded else trainer.optimizer.state_dict(),
             "schedule": trainer.schedule.state_dict(), "options": trainer.options.resume_fingerprint(),
             "dataset": dataset_fingerprint(trainer.plan), "world_size": accelerator.num_processes}
    shard = trainer.optimizer.state_dict() if trainer.sharded else None
    artifacts.save_checkpoint(trainer.plan.out, step, state, trainer.options.keep_checkpoints,
                              rank=accelerator.process_index, optimizer_shard=shard,
                              barrier=accelerator.wait_for_everyone)


def _resume(trainer: LoraTrainer) -> int:
    """Load the newest checkpoint into the trainer; the step to continue from."""
    from peft.utils import set_peft_model_state_dict

    plan = trainer.plan
    state = artifacts.load_latest_checkpoint(plan.out)
    wanted = trainer.options.resume_fingerprint()
    changed = sorted(k for k in wanted if state["options"].get(k) != wanted[k])
    if changed:
        details = ", ".join(f"{k} {state['options'].get(k)!r} -> {wanted[k]!r}" for k in changed)
        raise InputError(f"the checkpoint in {plan.out} was trained with other options ({details}); resume with "
                         "the same options (only --steps may grow) or start a new --out", "resume")
    if state["dataset"] != dataset_fingerprint(plan):
        raise InputError(f"the checkpoint in {plan.out} was trained on another version of {plan.dataset}; resume "
                         "on the same dataset or start a new --out", "resume")
    if state["step"] > trainer.options.steps:
        raise InputError(f"the checkpoint is at step {state['step']}, past --steps {trainer.options.steps}", "steps")
    if state["world_size"] != trainer.accelerator.num_processes:
        log.warning("resuming on %d process(es) where the run used %d: the order of shots changes",
                    trainer.accelerator.num_processes, state["world_size"])
    if trainer.sharded and state["world_size"] != trainer.accelerator.num_processes:
        raise InputError(f"the checkpoint was sharded over {state['world_size']} processes; resume it with as many",
                         "resume")
    for model, lora in zip(trainer.transformers, state["lora"]):
        set_peft_model_state_dict(model, lora, adapter_name=ADAPTER_NAME)
    trainer.optimizer.load_state_dict(
        artifacts.load_optimizer_shard(plan.out, trainer.accelerator.process_index) if trainer.sharded
        else state["optimizer"])
    trainer.schedule.load_state_dict(state["schedule"])
    if trainer.accelerator.is_main_process:
        trainer.metrics.truncate_after(state["step"])
    return int(state["step"])


def _summary(trainer: LoraTrainer, rows: list[dict], seconds: float, result: TrainResult) -> dict[str, Any]:
    plan = trainer.plan
    header = plan.header
    losses = [r["loss"] for r in rows if r.get("loss") is not None]
    vals = [r["val_loss"] for r in rows if r.get("val_loss") is not None]
    location = trainer.location
    revision = location.split("/snapshots/")[1].split("/")[0] if "/snapshots/" in location else None
    return {
        "schema": "chai-studio/lora-training", "version": 1, "options": trainer.options.to_dict(),
        "dataset": {"path": str(plan.dataset), "train_rows": len(plan.train_rows), "val_rows": len(plan.val_rows),
                    "clips": len({r["clip_sha256"] for r in plan.train_rows + plan.val_rows}),
                    **{k: header[k] for k in ("preset", "height", "width", "frames", "fps", "captioner", "baseline")}},
        # As the setting gives it (a hub id, not this machine's snapshot path), or the tiny folder.
        "base_model": {"location": model_locations(plan.config).baseline(trainer.preset.name, build=False),
                       "revision": revision,
                       "label": trainer.preset.label, "preset": trainer.preset.name},
        "steps": trainer.options.steps, "world_size": trainer.accelerator.num_processes, "seconds": round(seconds, 2),
        "final": {"loss": losses[-1] if losses else None, "val_loss": vals[-1] if vals else None,
                  "first_val_loss": vals[0] if vals else None},
        "files": [p.name for p in result.lora_files],
    }
