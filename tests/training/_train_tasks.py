"""Tiny tasks and data shared by the training tests and their subprocess scripts."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from pmx.survival import cox_loss
from pmx.training import TrainTask


class DictDataset(Dataset):
    """Rows of named tensors (what store-backed datasets yield)."""

    def __init__(self, **columns: torch.Tensor):
        self.columns = columns
        self.length = len(next(iter(columns.values())))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.columns.items()}

    def subset(self, indices) -> "DictDataset":
        return DictDataset(**{k: v[indices] for k, v in self.columns.items()})


def regression_data(n: int = 48, dim: int = 6, seed: int = 0) -> DictDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.randn(dim, generator=g)
    y = (x @ w + 0.1 * torch.randn(n, generator=g)).unsqueeze(1)
    return DictDataset(x=x, y=y)


def survival_data(n: int = 48, dim: int = 6, seed: int = 0) -> DictDataset:
    """Planted linear log-hazard, exponential times, ~30% censoring, distinct times."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    beta = torch.linspace(-1.0, 1.0, dim)
    log_hazard = x @ beta
    time = torch.empty(n).exponential_(generator=g) / log_hazard.exp()
    censor = torch.empty(n).exponential_(generator=g) * 2.0
    event = (time <= censor).float()
    return DictDataset(x=x, time=torch.minimum(time, censor), event=event)


class RegressionTask(TrainTask):
    """MLP with dropout and an MSE objective (a per-batch objective)."""

    def __init__(self, dim: int = 6, hidden: int = 16, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def losses(self, batch):
        return {"mse": nn.functional.mse_loss(self.net(batch["x"]), batch["y"])}

    def predict(self, batch):
        return {"pred": self.net(batch["x"])[:, 0], "y": batch["y"][:, 0]}

    def metrics(self, outputs):
        residual = ((outputs["pred"] - outputs["y"]) ** 2).sum()
        total = ((outputs["y"] - outputs["y"].mean()) ** 2).sum()
        return {"r2": float(1 - residual / total)}


class CoxTask(TrainTask):
    """Risk MLP trained with the Cox partial likelihood of the whole accumulated group."""

    def __init__(self, dim: int = 6, hidden: int = 8, dropout: float = 0.0):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, 1)

    def risk(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))[:, 0]

    def features(self, batch):
        return {"risk": self.risk(batch["x"]), "time": batch["time"], "event": batch["event"]}

    def group_losses(self, features):
        return {"cox": cox_loss(features["risk"], features["time"], features["event"])}

    def predict(self, batch):
        return {"risk": self.risk(batch["x"]), "time": batch["time"], "event": batch["event"]}

    def metrics(self, outputs):
        return {"cindex": concordance(outputs["time"], outputs["event"], outputs["risk"])}


def concordance(time: torch.Tensor, event: torch.Tensor, risk: torch.Tensor) -> float:
    """Harrell's C without importing scikit-survival (keeps subprocess tests fast)."""
    earlier = (time[:, None] < time[None, :]) & (event[:, None] > 0)
    higher = (risk[:, None] > risk[None, :]).float() + 0.5 * (risk[:, None] == risk[None, :]).float()
    return float((higher * earlier).sum() / earlier.sum())


class ScalarTask(TrainTask):
    """One weight w: training pulls it to ``target`` while the validation optimum is ``val_target``.

    Used to check early stopping against a closed-form trajectory.
    """

    def __init__(self, target: float = 3.0, val_target: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.target = target
        self.val_target = val_target

    def losses(self, batch):
        goal = torch.where(batch["split"] > 0, torch.tensor(self.val_target), torch.tensor(self.target))
        return {"sq": ((self.w - goal) ** 2).mean()}
