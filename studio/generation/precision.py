"""How the Wan transformers' weights are stored: as loaded (`--dtype`), or as float8.

`fp8` stores the weight of every linear layer of the transformers in float8 through torchao's
weight-only configuration (`quantize_(model, Float8WeightOnlyConfig())`); activations and the
arithmetic stay in `--dtype`. The transformers' weights take about half their bfloat16 memory
(a 14B expert: about 14 GB instead of 28 GB), which is what lets two A14B experts and a full
finetune share one GPU. torchao is an optional extra (`pip install '.[fp8]'`), checked before any
model loads.
"""

from __future__ import annotations

import importlib.util

from ..errors import InputError

PRECISIONS = ("default", "fp8")
FIELD = "precision"


def check_precision(name: str) -> None:
    """Refuse an unknown precision, or fp8 without torchao, before anything loads."""
    if name not in PRECISIONS:
        raise InputError(f"must be one of {', '.join(PRECISIONS)}, got {name!r}", FIELD)
    if name == "fp8" and importlib.util.find_spec("torchao") is None:
        raise InputError("fp8 weights need torchao, which is not installed; install the studio's fp8 extra "
                         "(pip install '.[fp8]', or pip install torchao) or use the default precision", FIELD)


def store_weights(transformers: list, precision: str) -> None:
    """Quantize the transformers' linear weights in place for `precision` (nothing for the default)."""
    check_precision(precision)
    if precision != "fp8":
        return
    from torchao.quantization import Float8WeightOnlyConfig, quantize_

    done: set[int] = set()
    for transformer in transformers:
        if id(transformer) in done:  # a LoRA finetune shares the baseline's transformers
            continue
        quantize_(transformer, Float8WeightOnlyConfig(), filter_fn=_is_weight_layer)
        done.add(id(transformer))


def _is_weight_layer(module, name: str) -> bool:
    import torch

    # A LoRA's own layers (peft's lora_A / lora_B) stay in --dtype: they are small, and their
    # product is added to the float8 base layer's output.
    return isinstance(module, torch.nn.Linear) and "lora_" not in name
