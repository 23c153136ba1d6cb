"""Step caches: skipping transformer work on denoising steps whose result barely changes.

Every cache here is one of diffusers' own hooks (`transformer.enable_cache(config)`), chosen per
run with one setting, `NAME[:key=value,...]`:

    first-block[:threshold=0.08]      First-block cache: when the first block's output changed less
                                      than `threshold` since the last step, the other blocks' residual
                                      is reused.
    taylorseer[:interval=3,warmup=2,order=1]
                                      TaylorSeer: full computations every `interval` steps after
                                      `warmup`; the steps between are predicted by a Taylor series.

MagCache needs magnitude ratios calibrated per checkpoint, which the studio does not compute yet, so
it is refused with that reason rather than run with another model's ratios.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

FIELD = "step_cache"
WAN_BLOCKS = r"blocks\.\d+"  # WanTransformer3DModel's transformer blocks, by module name
# name -> {parameter: (type, default, low, high)}
CACHES: dict[str, dict[str, tuple[type, float, float, float]]] = {
    "first-block": {"threshold": (float, 0.08, 0.0, 1.0)},
    "taylorseer": {"interval": (int, 3, 2, 50), "warmup": (int, 2, 1, 50), "order": (int, 1, 1, 4)},
}
REFUSED = {"magcache": "MagCache needs magnitude ratios calibrated for each checkpoint, which the studio does not "
                       "compute yet; use first-block or taylorseer"}


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
        if name in REFUSED:
            raise InputError(REFUSED[name], FIELD)
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

    def diffusers_config(self, torch_dtype: Any = None):
        """The diffusers hook configuration this cache enables."""
        values = dict(self.params)
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
def cached_steps(transformers: list, spec: str) -> Iterator[None]:
    """The step cache `spec` on `transformers` for one denoising loop, off again afterwards (so the
    other side, and the next run, start with no cached state)."""
    cache = StepCache.parse(spec)
    if cache is None:
        yield
        return
    enabled = []
    try:
        for transformer in transformers:
            transformer.enable_cache(cache.diffusers_config(transformer.dtype))
            enabled.append(transformer)
        yield
    finally:
        for transformer in enabled:
            transformer.disable_cache()
