"""Survival heads: representation -> risk (and a survival curve where the model has one).

Every head has the same small interface so a trainer does not care which one it drives:

* ``forward(*representations) -> output`` (raw tensor: risk, or per-bin logits),
* ``risk(output) -> [batch]`` with higher = worse prognosis (what the C-index ranks),
* ``loss(output, time, event) -> scalar`` (the head's own survival loss),
* ``fit_time_bins(train_time, train_event)``: discrete-time heads fit their bins on the
  training fold here (stored as buffers, so saved with the weights); a no-op for Cox heads,
* ``survival(output) -> (curves [batch, m], time_grid [m])`` for heads that predict curves.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..components import Component
from ..config import ComponentConfig, Field
from .bins import HazardCuts, QuantileBins
from .losses import cox_loss, logistic_hazard_loss, nll_discrete_loss

__all__ = [
    "SurvivalHead",
    "CoxHead",
    "CosineCoxHead",
    "DiscreteTimeHead",
    "LogisticHazardHead",
    "HEADS",
]


class SurvivalHead(Component, nn.Module):
    """Base class of survival heads (kind ``head``)."""

    kind: ClassVar[str] = "head"
    #: True when ``survival`` returns curves (Antolini's C and the Brier score apply).
    predicts_curves: ClassVar[bool] = False

    def risk(self, output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, output: torch.Tensor, time: Any, event: Any) -> torch.Tensor:
        raise NotImplementedError

    def fit_time_bins(self, time: Any, event: Any) -> "SurvivalHead":
        """Fit anything time-dependent on the training fold (nothing for Cox heads)."""
        return self

    def survival(self, output: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        raise NotImplementedError(f"head {self.name!r} predicts a risk score, not survival curves")


class _CoxConfig(ComponentConfig):
    ties: Literal["breslow", "efron"] = Field("breslow", description="tie handling of the Cox partial likelihood")
    bound: Literal["none", "sigmoid"] = Field(
        "none",
        description="'sigmoid' squashes the risk to (bound_low, bound_high) like the authors' code",
    )
    bound_low: float = Field(0.0, description="lower end of the sigmoid-bounded risk")
    bound_high: float = Field(1.0, description="upper end of the sigmoid-bounded risk")


def _bounded(z: torch.Tensor, config: _CoxConfig) -> torch.Tensor:
    if config.bound == "sigmoid":
        return config.bound_low + (config.bound_high - config.bound_low) * torch.sigmoid(z)
    return z


class CoxHead(SurvivalHead):
    """Linear Cox risk on a representation (optionally sigmoid-bounded), Cox partial-likelihood loss.

    ContraMAE's code bounds the risk with a plain sigmoid (bound_low 0, bound_high 1); HC-MAE's
    with ``sigmoid * 8 - 4`` (bound_low -4, bound_high 4). The papers use the unbounded form.
    """

    name: ClassVar[str] = "cox"
    version: ClassVar[str] = "1"

    class Config(_CoxConfig):
        in_dim: int = Field(256, ge=1, description="width of the input representation")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the linear layer")
        bias: bool = Field(False, description="add a bias (it cancels in the Cox loss)")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.dropout = nn.Dropout(self.config.dropout)
        self.linear = nn.Linear(self.config.in_dim, 1, bias=self.config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _bounded(self.linear(self.dropout(x)).squeeze(-1), self.config)

    def risk(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def loss(self, output: torch.Tensor, time: Any, event: Any) -> torch.Tensor:
        return cox_loss(output, time, event, ties=self.config.ties)


class CosineCoxHead(SurvivalHead):
    """POMP's risk: cosine similarity of two representations (CLS-P, CLS-O), Cox loss.

    The paper's risk is the cosine alone; the authors' code adds ``sigmoid(Linear(fused))``
    on the fused token (``add_fused_sigmoid``), which needs the third ``fused`` input.
    """

    name: ClassVar[str] = "cox-cosine"
    version: ClassVar[str] = "1"

    class Config(_CoxConfig):
        fused_dim: int = Field(384, description="width of the fused token (only with add_fused_sigmoid)")
        add_fused_sigmoid: bool = Field(False, description="code variant: risk = cosine + sigmoid(Linear(fused))")
        scale: float = Field(1.0, description="multiplies the cosine before the loss (1 = paper)")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.fused = nn.Linear(self.config.fused_dim, 1) if self.config.add_fused_sigmoid else None

    def forward(self, a: torch.Tensor, b: torch.Tensor, fused: torch.Tensor | None = None) -> torch.Tensor:
        risk = self.config.scale * F.cosine_similarity(a, b, dim=-1)
        if self.fused is not None:
            if fused is None:
                raise ValueError("cox-cosine with add_fused_sigmoid=true needs the fused representation")
            risk = risk + torch.sigmoid(self.fused(fused).squeeze(-1))
        return _bounded(risk, self.config)

    def risk(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def loss(self, output: torch.Tensor, time: Any, event: Any) -> torch.Tensor:
        return cox_loss(output, time, event, ties=self.config.ties)


def _times_like(values: Any, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        values = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return torch.as_tensor(values, device=like.device).to(torch.float64)


class DiscreteTimeHead(SurvivalHead):
    """Discrete-time hazards over quantile bins of training event times (CMTA / MCAT NLL)."""

    name: ClassVar[str] = "discrete-time"
    version: ClassVar[str] = "1"
    predicts_curves: ClassVar[bool] = True

    class Config(ComponentConfig):
        in_dim: int = Field(256, ge=1, description="width of the input representation")
        n_bins: int = Field(4, ge=1, description="number of time bins (quantiles of uncensored training times)")
        alpha: float = Field(0.0, description="weight of the extra uncensored-only NLL term")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the linear layer")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.dropout = nn.Dropout(self.config.dropout)
        self.linear = nn.Linear(self.config.in_dim, self.config.n_bins)
        self.register_buffer("inner_edges", torch.full((self.config.n_bins - 1,), float("nan"), dtype=torch.float64))
        self.register_buffer("max_time", torch.tensor(float("nan"), dtype=torch.float64))

    def fit_time_bins(self, time: Any, event: Any) -> "DiscreteTimeHead":
        bins = QuantileBins(self.config.n_bins).fit(time, event)
        self.inner_edges.copy_(torch.as_tensor(bins.inner_edges_))
        self.max_time.fill_(float(bins.max_time_))
        return self

    def bins(self) -> QuantileBins:
        edges = self.inner_edges.detach().cpu().numpy()
        if np.isnan(edges).any() or np.isnan(float(self.max_time)):
            raise RuntimeError("discrete-time head: call fit_time_bins(train_time, train_event) on the training fold first")
        return QuantileBins.from_edges(edges, float(self.max_time))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))

    def risk(self, output: torch.Tensor) -> torch.Tensor:
        return -torch.cumprod(1.0 - torch.sigmoid(output), dim=1).sum(dim=1)

    def loss(self, output: torch.Tensor, time: Any, event: Any) -> torch.Tensor:
        bins = self.bins().transform(_times_like(time, output))
        return nll_discrete_loss(output, bins, event, alpha=self.config.alpha)

    def survival(self, output: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        return torch.cumprod(1.0 - torch.sigmoid(output), dim=1), self.bins().time_grid()


class LogisticHazardHead(SurvivalHead):
    """Logistic hazard over T intervals with cuts fit on the training fold (pycox form; impuTMAE)."""

    name: ClassVar[str] = "logistic-hazard"
    version: ClassVar[str] = "1"
    predicts_curves: ClassVar[bool] = True

    class Config(ComponentConfig):
        in_dim: int = Field(256, ge=1, description="width of the input representation")
        n_intervals: int = Field(20, ge=2, description="number of interval cut points T (impuTMAE: 20)")
        scheme: Literal["equidistant", "quantiles"] = Field(
            "equidistant", description="cut placement: equidistant on [0, max training time] or KM quantiles"
        )
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the linear layer")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.dropout = nn.Dropout(self.config.dropout)
        self.linear = nn.Linear(self.config.in_dim, self.config.n_intervals)
        self.register_buffer("cuts", torch.full((self.config.n_intervals,), float("nan"), dtype=torch.float64))

    def fit_time_bins(self, time: Any, event: Any) -> "LogisticHazardHead":
        cuts = HazardCuts(self.config.n_intervals, self.config.scheme).fit(time, event)
        self.cuts.copy_(torch.as_tensor(cuts.cuts_))
        return self

    def hazard_cuts(self) -> HazardCuts:
        cuts = self.cuts.detach().cpu().numpy()
        if np.isnan(cuts).any():
            raise RuntimeError("logistic-hazard head: call fit_time_bins(train_time, train_event) on the training fold first")
        return HazardCuts.from_cuts(cuts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))

    def risk(self, output: torch.Tensor) -> torch.Tensor:
        return -torch.cumprod(1.0 - torch.sigmoid(output), dim=1).sum(dim=1)

    def loss(self, output: torch.Tensor, time: Any, event: Any) -> torch.Tensor:
        index, events = self.hazard_cuts().transform(_times_like(time, output), event)
        return logistic_hazard_loss(output, index, events)

    def survival(self, output: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        return torch.cumprod(1.0 - torch.sigmoid(output), dim=1), self.hazard_cuts().time_grid()


HEADS: tuple[type[SurvivalHead], ...] = (CoxHead, CosineCoxHead, DiscreteTimeHead, LogisticHazardHead)
