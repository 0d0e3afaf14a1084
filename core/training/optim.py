"""Optimizers with weight-decay groups and layer-wise learning-rate decay.

Biases, normalisation weights, 1-d parameters and the names a task lists in
``no_weight_decay()`` (position embeddings, class tokens) are exempt from weight decay, as in
MAE/BEiT fine-tuning. Layer-wise decay gives transformer block ``i`` of ``L`` the rate
``lr * decay ** (L + 1 - (i + 1))``: the embeddings learn slowest, the new head at full rate.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import torch
from torch import nn

from pmx.errors import ConfigError

from .config import TrainConfig

_BLOCK = re.compile(r"(?:^|\.)(?:blocks|layers|layer)\.(\d+)\.")
_EMBED = re.compile(r"(?:^|\.)(?:cls_token|pos_embed|patch_embed|mask_token|reg_token|register_tokens|type_embed)(?:\.|$)")


def default_layer_id(name: str, num_layers: int) -> int:
    """timm-style guess: embeddings 0, ``blocks.i`` i + 1, everything else (heads) L + 1."""
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1)) + 1
    if _EMBED.search(name):
        return 0
    return num_layers + 1


def infer_num_layers(names: Iterable[str]) -> int:
    indices = [int(m.group(1)) for n in names if (m := _BLOCK.search(n))]
    return max(indices) + 1 if indices else 0


def _exempt_from_decay(name: str, param: torch.Tensor, exempt: set[str]) -> bool:
    if param.ndim <= 1 or name.endswith(".bias"):
        return True
    return any(name == e or name.endswith("." + e) or name.startswith(e + ".") for e in exempt)


def param_groups(
    model: nn.Module,
    *,
    weight_decay: float,
    layer_decay: float = 1.0,
    no_weight_decay: set[str] | None = None,
    layer_id: Callable[[str], int | None] | None = None,
    num_layers: int | None = None,
) -> list[dict]:
    """Trainable parameters split by (layer, decays-or-not), each group with an ``lr_scale``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("the model has no trainable parameters (all frozen?)")
    exempt = set(no_weight_decay or ())
    depth = num_layers if num_layers is not None else infer_num_layers(n for n, _ in named)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named:
        layer = 0
        if layer_decay != 1.0:
            chosen = layer_id(name) if layer_id is not None else None
            layer = chosen if chosen is not None else default_layer_id(name, depth)
        decays = weight_decay > 0 and not _exempt_from_decay(name, param, exempt)
        key = (layer, decays)
        if key not in groups:
            scale = layer_decay ** (depth + 1 - layer) if layer_decay != 1.0 else 1.0
            groups[key] = {
                "params": [],
                "weight_decay": weight_decay if decays else 0.0,
                "lr_scale": scale,
                "group_name": f"layer{layer}_{'decay' if decays else 'no_decay'}",
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over :func:`param_groups` of a :class:`~pmx.training.task.TrainTask`."""
    groups = param_groups(
        model,
        weight_decay=config.weight_decay,
        layer_decay=config.layer_decay,
        no_weight_decay=getattr(model, "no_weight_decay", lambda: set())(),
        layer_id=getattr(model, "layer_id", None),
        num_layers=getattr(model, "num_layers", lambda: None)(),
    )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps,
                                 weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    raise ConfigError(f"unknown optimizer {config.optimizer!r}; use adamw or sgd")
