"""What a method hands to the trainer: the modules to train and how a batch becomes losses.

A method never writes a loop. It subclasses :class:`TrainTask` (an ``nn.Module`` holding the
backbone, the objectives' decoders and the heads) and implements one of two contracts:

* **per-batch objectives** - ``losses(batch) -> {name: scalar}``. Each micro-batch's losses are
  complete on their own (MAE reconstruction, discrete-time NLL, MSE). Accumulation averages the
  gradients of the micro-batches, DDP averages across processes.
* **group objectives** - ``features(batch) -> {name: tensor[batch, ...]}`` and
  ``group_losses(features) -> {name: scalar}``. The loss needs many samples at once (Cox partial
  likelihood, CLIP-style contrastive, matching with hard negatives). The trainer concatenates
  the features of every micro-batch of an accumulation group and of every process (gathered
  with gradients) and calls ``group_losses`` once, so batch 1 with 50-step accumulation
  optimises the loss of the 50-patient group, as POMP does. A per-sample loss can ride along
  as a feature (e.g. a ``[B]`` tensor of reconstruction errors averaged in ``group_losses``).

Evaluation uses ``predict(batch) -> {name: tensor[batch, ...]}`` (e.g. risk, time, event) and
``metrics(outputs) -> {name: float}`` on the outputs of the whole split, gathered from all
processes; the trainer prefixes them with ``val_``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
from torch import nn

Batch = Any
TensorDict = dict[str, torch.Tensor]


class TrainTask(nn.Module):
    """Base class of the trainable part of a method (see the module docstring)."""

    #: default weight of each named loss; missing names weigh 1; TrainConfig.loss_weights wins
    loss_weights: ClassVar[Mapping[str, float]] = {}

    # ---- per-batch contract -------------------------------------------------------------
    def losses(self, batch: Batch) -> TensorDict:
        raise NotImplementedError(f"{type(self).__name__} implements neither losses() nor features()")

    # ---- group contract -----------------------------------------------------------------
    def features(self, batch: Batch) -> TensorDict:
        raise NotImplementedError

    def group_losses(self, features: TensorDict) -> TensorDict:
        raise NotImplementedError

    @property
    def uses_group_objective(self) -> bool:
        """True when the subclass overrides ``features`` (and so ``group_losses``)."""
        return type(self).features is not TrainTask.features

    # ---- evaluation ---------------------------------------------------------------------
    def predict(self, batch: Batch) -> TensorDict:
        """Per-sample outputs used by :meth:`metrics`; override to get validation metrics."""
        raise NotImplementedError

    def metrics(self, outputs: TensorDict) -> dict[str, float]:
        """Metrics of a whole split from the concatenated :meth:`predict` outputs."""
        return {}

    @property
    def has_predict(self) -> bool:
        return type(self).predict is not TrainTask.predict

    # ---- optimizer grouping -------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        """Parameter names (or name prefixes) exempt from weight decay besides 1-d ones."""
        return set()

    def layer_id(self, name: str) -> int | None:
        """Depth index of a parameter for layer-wise lr decay (0 = embeddings, L + 1 = head).

        ``None`` (the default) lets :func:`pmx.training.optim.default_layer_id` guess from
        timm-style names (``blocks.3.``, ``patch_embed``, ``cls_token``...).
        """
        return None

    def num_layers(self) -> int | None:
        """Number of transformer blocks for layer-wise decay; ``None`` = infer from names."""
        return None

    # ---- DDP entry point ----------------------------------------------------------------
    def forward(self, batch: Batch) -> TensorDict:  # DDP hooks run through forward()
        return self.losses(batch)


def weighted_total(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Weighted sum of named losses (a name without a weight counts once)."""
    if not losses:
        raise ValueError("a training step returned no losses")
    if "loss" in losses:
        raise ValueError("'loss' is reserved for the weighted total; name the terms (e.g. 'cox', 'mse')")
    total = None
    for name, value in losses.items():
        term = value * float(weights.get(name, 1.0))
        total = term if total is None else total + term
    assert total is not None
    return total
