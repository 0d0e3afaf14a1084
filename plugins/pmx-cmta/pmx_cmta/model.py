"""The trainable CMTA model: backbone + pmx's discrete-time head + the alignment objective.

total loss = NLL_discrete(head(fused), time bin, event) + alpha * L_sim   (eq. 20)

risk (what the C-index ranks) = -sum_k S_k with S = cumprod(1 - sigmoid(logits)). The time
bins are quartiles of the *training fold's* uncensored times (``fit_time_bins``), stored in the
head's buffers so they travel with the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from pmx.survival.heads import DiscreteTimeHead

from .alignment import CMTAAlignment
from .backbone import CMTABackbone, CMTAOutputs


@dataclass
class CMTAForward:
    outputs: CMTAOutputs  #: class tokens, fused representation, attention maps
    logits: torch.Tensor  #: [batch, n_bins] hazard logits


class CMTAModel(nn.Module):
    """Backbone, survival head and (optional) alignment objective with its weight alpha."""

    def __init__(
        self,
        backbone: CMTABackbone,
        head: DiscreteTimeHead,
        alignment: CMTAAlignment | None,
        alpha: float = 1.0,
    ):
        super().__init__()
        if head.config.in_dim != backbone.out_dim:
            raise ValueError(f"head in_dim {head.config.in_dim} != backbone output width {backbone.out_dim}")
        self.backbone = backbone
        self.head = head
        self.alignment = alignment
        self.alpha = float(alpha)

    @classmethod
    def build(
        cls,
        backbone: CMTABackbone.Config | dict[str, Any] | None = None,
        n_bins: int = 4,
        nll_alpha: float = 0.0,
        alignment: bool = True,
        detach: bool = True,
        metric: str = "l1",
        alpha: float = 1.0,
    ) -> "CMTAModel":
        """Assemble from plain settings (the method's config sections map onto these)."""
        net = CMTABackbone(backbone)
        head = DiscreteTimeHead(in_dim=net.out_dim, n_bins=n_bins, alpha=nll_alpha)
        head.apply(_init_head)
        objective = CMTAAlignment(detach=detach, metric=metric) if alignment else None
        return cls(net, head, objective, alpha=alpha)

    def forward(self, path: torch.Tensor, omics: torch.Tensor | Sequence[torch.Tensor]) -> CMTAForward:
        outputs = self.backbone(path, omics)
        return CMTAForward(outputs=outputs, logits=self.head(outputs.fused))

    def losses(self, forward: CMTAForward, time: Any, event: Any) -> dict[str, torch.Tensor]:
        """Named loss terms and their weighted ``total`` (the trainer logs each)."""
        terms = {"nll": self.head.loss(forward.logits, time, event)}
        total = terms["nll"]
        if self.alignment is not None and self.alpha != 0.0:
            aligned = self.alignment(forward.outputs)
            terms.update(aligned)
            total = total + self.alpha * aligned["align"]
        terms["total"] = total
        return terms

    def risk(self, forward: CMTAForward) -> torch.Tensor:
        return self.head.risk(forward.logits)

    def fit_time_bins(self, time: Any, event: Any) -> "CMTAModel":
        """Fit the head's quantile bins on the training fold only."""
        self.head.fit_time_bins(time, event)
        return self

    def parameter_breakdown(self) -> dict[str, int]:
        parts = self.backbone.parameter_breakdown()
        parts["survival_head"] = sum(p.numel() for p in self.head.parameters())
        return parts

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _init_head(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        nn.init.zeros_(module.bias)


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with momentum as in the paper; Adam/AdamW for the CPU presets.

    ``foreach=True`` updates all parameters with a few multi-tensor kernels; torch's CPU default
    is one small op per parameter tensor, which made the tiny preset's optimizer step about as
    costly as its forward pass (the model has ~150 parameter tensors, batch 1).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}; use sgd, adam or adamw")
