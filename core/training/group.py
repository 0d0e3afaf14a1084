"""Group objectives: one loss over all micro-batches of an accumulation group (and all ranks).

Two ways to get the gradient of the *group* loss while holding one micro-batch at a time:

* ``cache`` (default): pass 1 runs ``features`` on each micro-batch without autograd and
  keeps only the features; the group loss is computed once on their concatenation and
  differentiated with respect to the features; pass 2 re-runs each micro-batch with autograd
  (same RNG state, so the same dropout/masks) and back-propagates that micro-batch's slice of
  the feature gradient. By the chain rule the parameter gradient equals the gradient of the
  loss on the real batch. Costs one extra forward; memory is one micro-batch's graph.
* ``retain``: keeps every micro-batch's graph and back-propagates once. Same gradient, one
  forward, memory grows with the group. Fine for small models.

Across ranks the features are gathered with gradients (:func:`gather_with_grad`), so every
rank computes the same global loss; the trainer then averages gradients over ranks.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from .distributed import gather_with_grad
from .seeding import capture_rng_state, restore_rng_state
from .task import TensorDict, TrainTask, weighted_total


def concat_features(parts: Sequence[TensorDict]) -> TensorDict:
    if not parts:
        raise ValueError("an accumulation group holds no micro-batch")
    keys = list(parts[0])
    for part in parts[1:]:
        if list(part) != keys:
            raise ValueError(f"features() returned different keys across micro-batches: {keys} vs {list(part)}")
    return {k: torch.cat([_rows(p[k]) for p in parts], dim=0) for k in keys}


def _rows(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(1) if tensor.ndim == 0 else tensor


def gather_features(features: Mapping[str, torch.Tensor]) -> TensorDict:
    return {k: gather_with_grad(v) for k, v in features.items()}


def group_backward(
    task: TrainTask,
    batches: Sequence[Any],
    *,
    weights: Mapping[str, float],
    mode: str,
    autocast: Callable[[], AbstractContextManager],
) -> dict[str, float]:
    """Accumulate into ``.grad`` the gradient of the group loss; return the loss values."""
    if mode == "retain":
        parts = []
        for batch in batches:
            with autocast():
                parts.append(task.features(batch))
        features = gather_features(concat_features(parts))
        with autocast():
            losses = task.group_losses(features)
            total = weighted_total(losses, weights)
        total.backward()
        return _values(losses, total)
    if mode != "cache":
        raise ValueError(f"unknown group_mode {mode!r}; use cache or retain")

    buffers = {name: buf.detach().clone() for name, buf in task.named_buffers()}
    rng_states = []
    parts = []
    with torch.no_grad():
        for batch in batches:
            rng_states.append(capture_rng_state())
            with autocast():
                parts.append(task.features(batch))
    _restore_buffers(task, buffers)  # pass 2 updates running statistics once, as a real batch would

    sizes = [_rows(next(iter(p.values()))).shape[0] for p in parts]
    leaves = {
        k: v.detach().requires_grad_(v.is_floating_point())
        for k, v in concat_features(parts).items()
    }
    features = gather_features(leaves)
    with autocast():
        losses = task.group_losses(features)
        total = weighted_total(losses, weights)
    total.backward()
    after_group = capture_rng_state()

    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    differentiable = [k for k, leaf in leaves.items() if leaf.grad is not None]
    for index, batch in enumerate(batches):
        if not differentiable:
            break
        restore_rng_state(*rng_states[index])
        with autocast():
            again = task.features(batch)
        outputs, grads = [], []
        for key in differentiable:
            if again[key].requires_grad:
                outputs.append(again[key].reshape(leaves[key][offsets[index]:offsets[index + 1]].shape))
                grads.append(leaves[key].grad[offsets[index] : offsets[index + 1]].to(again[key].dtype))
        if outputs:
            torch.autograd.backward(outputs, grads)
    restore_rng_state(*after_group)
    return _values(losses, total)


def _restore_buffers(module: nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, buf in module.named_buffers():
            buf.copy_(saved[name])


def _values(losses: Mapping[str, torch.Tensor], total: torch.Tensor) -> dict[str, float]:
    values = {name: float(value.detach()) for name, value in losses.items()}
    values["loss"] = float(total.detach())
    return values
