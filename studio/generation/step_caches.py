"""Step caches: skipping transformer work on denoising steps whose result barely changes.

Every cache here is one of diffusers' own hooks (`transformer.enable_cache(config)`), chosen per
run with one setting, `NAME[:key=value,...]`:

    first-block[:threshold=0.08]      First-block cache: when the first block's output changed less
                                      than `threshold` since the last step, the other blocks' residual
                                      is reused.
    taylorseer[:interval=3,warmup=2,order=1]
                                      TaylorSeer: full computations every `interval` steps after
                                      `warmup`; the steps between are predicted by a Taylor series.
    magcache[:threshold=0.06,retention=0.2,max_skip=3]
                                      MagCache: after the first `retention` share of the steps, a step
                                      reuses the last residual while the accumulated change its
                                      magnitude ratios predict stays under `threshold` (at most
                                      `max_skip` steps in a row).

MagCache's ratios belong to one checkpoint: `python -m studio calibrate-cache` measures them
(`calibrating_steps` below) and `calibration` keeps them on disk. A MagCache run without a
calibration for the loaded weights is refused rather than run on another model's ratios.

diffusers' FasterCache and Pyramid Attention Broadcast are not offered: Wan's pipelines run the
conditional and unconditional branches as two forwards of batch 1, while FasterCache splits one
forward's batch into the two branches (`chunk(2)`), and PAB keeps one cached attention output per
module across both forwards, so a skipped call would hand one branch the other's attention.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, StudioError

FIELD = "step_cache"
WAN_BLOCKS = r"blocks\.\d+"  # WanTransformer3DModel's transformer blocks, by module name
# name -> {parameter: (type, default, low, high)}
CACHES: dict[str, dict[str, tuple[type, float, float, float]]] = {
    "first-block": {"threshold": (float, 0.08, 0.0, 1.0)},
    "taylorseer": {"interval": (int, 3, 2, 50), "warmup": (int, 2, 1, 50), "order": (int, 1, 1, 4)},
    "magcache": {"threshold": (float, 0.06, 0.0, 1.0), "retention": (float, 0.2, 0.0, 1.0),
                 "max_skip": (int, 3, 1, 50)},
}
# Mirrors diffusers 0.42 hooks/mag_cache.py: the name its tail-block hook is registered under.
_MAG_CACHE_TAIL_HOOK = "mag_cache_block_hook"


@dataclass(frozen=True)
class StepCache:
    name: str
    params: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: Any) -> StepCache | None:
        """`NAME[:key=value,...]`; empty or "none" means no cache. One clear error per bad part."""
        text = "" if spec is None else str(spec).strip().lower()
        if text in ("", "none", "off"):
            return None
        name, _, rest = text.partition(":")
        if name not in CACHES:
            raise InputError(f"unknown step cache {name!r}; choose one of {', '.join(CACHES)} (or none)", FIELD)
        known = CACHES[name]
        values = {key: default for key, (_, default, _, _) in known.items()}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, equals, raw = part.partition("=")
            if not equals or key not in known:
                raise InputError(f"{name} takes {', '.join(k + '=' for k in known)}; got {part!r}", FIELD)
            kind, _, low, high = known[key]
            try:
                value = kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
            except ValueError:
                raise InputError(f"{name} {key} must be a number, got {raw!r}", FIELD) from None
            if not low <= value <= high:
                raise InputError(f"{name} {key} must be between {low:g} and {high:g}, got {value:g}", FIELD)
            values[key] = value
        return cls(name, tuple(sorted(values.items())))

    @property
    def spec(self) -> str:
        """The canonical spelling, every parameter written out (what run.json records)."""
        return f"{self.name}:" + ",".join(f"{k}={v:g}" for k, v in self.params)

    @property
    def needs_calibration(self) -> bool:
        return self.name == "magcache"

    def diffusers_config(self, torch_dtype: Any = None, mag_ratios: list[float] | None = None, steps: int = 0):
        """The diffusers hook configuration this cache enables. MagCache takes the transformer's
        calibrated `mag_ratios` and the number of steps it will run (diffusers interpolates)."""
        values = dict(self.params)
        if self.name == "magcache":
            from diffusers import MagCacheConfig

            if mag_ratios is None:
                raise InputError("MagCache needs this checkpoint's calibrated ratios; run `python -m studio "
                                 "calibrate-cache` first", FIELD)
            return MagCacheConfig(threshold=float(values["threshold"]), retention_ratio=float(values["retention"]),
                                  max_skip_steps=int(values["max_skip"]), num_inference_steps=max(1, steps),
                                  mag_ratios=list(mag_ratios))
        if self.name == "first-block":
            from diffusers import FirstBlockCacheConfig

            return FirstBlockCacheConfig(threshold=float(values["threshold"]))
        from diffusers import TaylorSeerCacheConfig

        # Whole transformer blocks are predicted: diffusers' default patterns (`^blocks.*attn`, matched in
        # full) name no module of Wan's, whose attentions are `blocks.N.attn1` and `blocks.N.attn2`.
        kwargs = dict(cache_interval=int(values["interval"]), disable_cache_before_step=int(values["warmup"]),
                      max_order=int(values["order"]), cache_identifiers=[WAN_BLOCKS])
        if torch_dtype is not None:
            kwargs["taylor_factors_dtype"] = torch_dtype
        return TaylorSeerCacheConfig(**kwargs)


def canonical(spec: Any) -> str:
    """The recorded spelling of a step-cache setting ("" for none)."""
    cache = StepCache.parse(spec)
    return cache.spec if cache else ""


@contextlib.contextmanager
def cached_steps(transformers: list, spec: str, mag_ratios: list[list[float]] | None = None,
                 expert_steps: list[int] | None = None) -> Iterator[None]:
    """The step cache `spec` on `transformers` for one denoising loop, off again afterwards (so the
    other side, and the next run, start with no cached state). MagCache takes one list of ratios
    per transformer and the number of steps each transformer runs (`expert_steps`)."""
    cache = StepCache.parse(spec)
    if cache is None:
        yield
        return
    if cache.needs_calibration and (mag_ratios is None or len(mag_ratios) != len(transformers)):
        raise InputError("MagCache needs one list of calibrated ratios per transformer; run `python -m studio "
                         "calibrate-cache` for this checkpoint", FIELD)
    enabled = []
    try:
        for index, transformer in enumerate(transformers):
            ratios = mag_ratios[index] if cache.needs_calibration else None
            steps = expert_steps[index] if expert_steps else 0
            transformer.enable_cache(cache.diffusers_config(transformer.dtype, ratios, steps))
            enabled.append(transformer)
        yield
    finally:
        for transformer in enabled:
            transformer.disable_cache()


@contextlib.contextmanager
def calibrating_steps(transformers: list, steps: int, into: list[list[float]]) -> Iterator[None]:
    """MagCache in calibration mode on `transformers` for one denoising loop: nothing is skipped,
    and once the loop is over `into` holds each transformer's magnitude ratios over the steps it ran
    (the mean over the guidance branches, which share one set of ratios when cached).

    The ratios are copied out of the hook's state after every forward of the transformer: diffusers
    clears that state when the pipeline finishes, and only prints the ratios otherwise."""
    from diffusers import MagCacheConfig

    by_branch: list[dict[str, list[float]]] = [{} for _ in transformers]
    enabled, handles = [], []
    try:
        for index, transformer in enumerate(transformers):
            # One step more than the loop runs: diffusers resets the state (ratios included) when a
            # transformer reaches `num_inference_steps`, which would empty it before the last copy.
            transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=steps + 1))
            enabled.append(transformer)
            handles.append(transformer.register_forward_hook(_ratio_copier(transformer, by_branch[index])))
        yield
        for branches in by_branch:
            if not branches:
                raise StudioError("MagCache calibration saw no denoising step of one transformer; give more "
                                  "--steps so every expert runs")
            length = min(len(values) for values in branches.values())
            into.append([sum(values[i] for values in branches.values()) / len(branches) for i in range(length)])
    finally:
        for handle in handles:
            handle.remove()
        for transformer in enabled:
            transformer.disable_cache()


def _ratio_copier(transformer, into: dict[str, list[float]]):
    """A forward hook that copies the MagCache calibration ratios of every guidance branch so far."""
    # Mirrors diffusers 0.42 hooks/mag_cache.py: the tail block's hook owns the state manager, whose
    # per-branch states ("cond", "uncond") hold the ratios measured so far in `calibration_ratios`.
    tail = transformer.blocks[-1]._diffusers_hook.get_hook(_MAG_CACHE_TAIL_HOOK)

    def copy(*_):
        for branch, state in tail.state_manager._state_cache.items():
            into[branch] = list(state.calibration_ratios)

    return copy
