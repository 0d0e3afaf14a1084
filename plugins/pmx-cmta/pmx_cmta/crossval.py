"""CMTA's cross-validation: per fold, fit selection and time bins on the training part, train,
select the epoch on the validation split (never the test fold), predict the test fold.

The loop is written here rather than on ``pmx.training.Trainer`` because CMTA's bags differ in
size (paper: batch 1; a step of ``train.batch_size`` patients forwards equal-size bags together,
see ``sampling.plan_steps``), draws patients with a with-replacement balanced sampler re-drawn
every epoch, and selects the epoch by the validation C-index (from ``eval.select_from`` of the
run on); that is a few lines here. See docs/methods/cmta.md ("Running").
"""

from __future__ import annotations

import copy
import logging
import math
import time as clock
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from pmx.errors import DataError

from .data import CohortData
from .model import CMTAModel, build_optimizer
from .sampling import balanced_sample_weights, plan_steps, subsample_tiles

log = logging.getLogger("pmx.cmta")


@dataclass
class FoldOutcome:
    fold: int
    predictions: pd.DataFrame  #: test patients: fold, patient_id, time, event, risk, part
    metrics: dict[str, float | None]
    best_epoch: int
    val_c_index: list[float | None] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    omic_sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0


def select_gene_families(data: CohortData, train_ids: Sequence[str]) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Fit the gene-families selector on ``train_ids`` only; transform every patient."""
    from pmx.omics import GeneFamiliesSelector

    selector = GeneFamiliesSelector(signatures=str(data.signatures))
    survival = pd.DataFrame({"time": data.time, "event": data.event.astype(int)}, index=data.patients)
    selector.fit({"rna": data.rna}, survival.loc[list(train_ids)])
    groups = selector.transform({"rna": data.rna})
    families = list(groups)
    matrices = [groups[f].loc[data.patients].to_numpy(np.float32) for f in families]
    return matrices, [m.shape[1] for m in matrices], families


def scale_bags(bags: list[torch.Tensor], train: Sequence[int], how: str) -> list[torch.Tensor]:
    """Per-feature standardisation with the mean and std of the training patients' tiles only."""
    if how == "none":
        return bags
    stacked = torch.cat([bags[i] for i in train])
    mean, std = stacked.mean(0), stacked.std(0).clamp_min(1e-6)
    return [(b - mean) / std for b in bags]


def _predict(model: CMTAModel, bags: list[torch.Tensor], omics: list[np.ndarray], index: Sequence[int],
             device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Risk and survival curves on full bags (eval mode: no subsampling, no dropout).

    Patients whose bags have the same tile count are scored in one stacked forward pass; in
    eval mode every bag of a batch is processed independently, so this only saves time.
    """
    model.eval()
    index = list(index)
    risks = np.zeros(len(index))
    curves: list[np.ndarray | None] = [None] * len(index)
    groups: dict[int, list[int]] = {}
    for slot, i in enumerate(index):
        groups.setdefault(len(bags[i]), []).append(slot)
    with torch.no_grad():
        for slots in groups.values():
            members = [index[s] for s in slots]
            forward = model(_stack(bags, members, device), _omics(omics, members, device))
            risk = model.risk(forward).double().cpu().numpy()
            surv, _ = model.head.survival(forward.logits)
            for k, slot in enumerate(slots):
                risks[slot] = risk[k]
                curves[slot] = surv[k].double().cpu().numpy()
    return risks, np.asarray(curves)


def _stack(bags: list[torch.Tensor], members: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.stack([bags[i] for i in members]).to(device)


def _omics(omics: list[np.ndarray], members: Sequence[int], device: torch.device) -> list[torch.Tensor]:
    return [torch.as_tensor(m[list(members)], device=device) for m in omics]


def selection_start(epochs: int, select_from: float) -> int:
    """First epoch that model selection may pick: ``floor(select_from * epochs)``, at most the last."""
    return min(epochs - 1, int(select_from * epochs))


def _lr_schedule(optimizer: torch.optim.Optimizer, how: str, epochs: int) -> Any:
    """Per-epoch learning rate: constant (paper), or cosine from lr down towards 0 over the run."""
    if how == "constant":
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * epoch / epochs)))


def _train_bag(bag: torch.Tensor, limit: int) -> torch.Tensor:
    """A training draw's bag: at most ``limit`` random tiles (all when ``limit`` is 0)."""
    return subsample_tiles(bag, limit) if limit else bag


def run_fold(data: CohortData, members: dict[str, list[str]], fold: int, config: Any, *, seed: int,
             device: torch.device, progress: bool = True) -> FoldOutcome:
    """Train and evaluate one fold (``members``: train / val / test patient ids)."""
    previous = torch.get_num_threads()
    if config.train.threads:  # tiny models are thread-handoff bound: 1 thread is ~20x faster on a busy CPU
        torch.set_num_threads(config.train.threads)
    try:
        return _run_fold(data, members, fold, config, seed=seed, device=device, progress=progress)
    finally:
        torch.set_num_threads(previous)


def _run_fold(data: CohortData, members: dict[str, list[str]], fold: int, config: Any, *, seed: int,
              device: torch.device, progress: bool) -> FoldOutcome:
    from pmx.evaluation import fold_metrics
    from pmx.survival.metrics import harrell_c

    start = clock.perf_counter()
    position = {p: i for i, p in enumerate(data.patients)}
    train = [position[p] for p in members["train"]]
    val = [position[p] for p in members["val"]]
    test = [position[p] for p in members["test"]]
    omics, sizes, families = select_gene_families(data, members["train"])
    log.info("fold %d: gene families fit on %d training patients: %s", fold, len(train),
             ", ".join(f"{f} {w}" for f, w in zip(families, sizes)))

    bags = scale_bags(data.bags, train, config.data.tile_scaling)

    torch.manual_seed(seed * 1000 + fold)
    backbone = config.model.model_copy(update={"omic_sizes": sizes})
    model = CMTAModel.build(backbone=backbone, n_bins=config.survival.n_bins, nll_alpha=config.loss.nll_alpha,
                            alignment=config.loss.alignment, detach=config.loss.detach,
                            metric=config.loss.metric, alpha=config.loss.alpha)
    model.fit_time_bins(data.time[train], data.event[train])  # training part only
    model.to(device)
    tc = config.train
    optimizer = build_optimizer(model, tc.optimizer, lr=tc.lr, weight_decay=tc.weight_decay, momentum=tc.momentum)
    bins = model.head.bins().transform(data.time[train])
    weights = balanced_sample_weights(bins, data.event[train]) if tc.weighted_sampling else None
    rng = np.random.default_rng([seed, fold])
    limit = config.model.max_train_tiles
    train_sizes = [min(len(bags[i]), limit) if limit else len(bags[i]) for i in train]

    scheduler = _lr_schedule(optimizer, tc.schedule, tc.epochs)
    first = selection_start(tc.epochs, config.eval.select_from)
    best_state: dict[str, Any] | None = None
    best_epoch, best_score = -1, -np.inf
    val_scores: list[float | None] = []
    train_losses: list[float] = []
    epochs = range(tc.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"cmta fold {fold}", leave=False)
    for epoch in epochs:
        model.train()
        if weights is not None:
            order = rng.choice(len(train), size=len(train), replace=True, p=weights / weights.sum())
        else:
            order = rng.permutation(len(train))
        steps = plan_steps(order, train_sizes, tc.batch_size, by_size=tc.group_by_size, rng=rng)
        total = 0.0
        for step in steps:
            optimizer.zero_grad()
            n_step = sum(len(g) for g in step)
            for group in step:
                idx = [train[k] for k in group]
                # Tiles are subsampled per draw here, not inside the model (which would keep the
                # same positions in every bag of a batch).
                path = torch.stack([_train_bag(bags[i], limit) for i in idx]).to(device)
                forward = model(path, _omics(omics, idx, device))
                loss = model.losses(forward, data.time[idx], data.event[idx])["total"]
                (loss * (len(group) / n_step)).backward()  # the step's gradient: mean over its patients
                total += float(loss.detach()) * len(group)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        train_losses.append(total / max(1, len(order)))
        score: float | None = None
        if epoch >= first and val:
            risk, _ = _predict(model, bags, omics, val, device)
            try:
                score = float(harrell_c(data.time[val], data.event[val], risk))
            except DataError:  # a small validation split without a comparable pair: not usable
                score = None
        val_scores.append(score)
        # Model selection on the validation split only (ties: the later epoch).
        if score is not None and score >= best_score:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is None:  # no usable validation split: the last epoch
        best_epoch = tc.epochs - 1
    else:
        model.load_state_dict(best_state)

    risk, surv = _predict(model, bags, omics, test, device)
    grid = model.head.bins().time_grid()
    metrics = fold_metrics(data.time[train], data.event[train], data.time[test], data.event[test], risk,
                           surv=surv, time_grid=grid)
    predictions = pd.DataFrame({"fold": fold, "patient_id": [data.patients[i] for i in test],
                                "time": data.time[test], "event": data.event[test].astype(int),
                                "risk": risk, "part": "test"})
    try:
        c = f"{harrell_c(data.time[test], data.event[test], risk):.3f}"
    except DataError:  # a tiny test fold without a comparable pair: reported as missing
        c = "n/a"
    seconds = clock.perf_counter() - start
    log.info("fold %d: best epoch %d (val C %s), test C-index %s, %.1f s", fold, best_epoch,
             "n/a" if best_score == -np.inf else f"{best_score:.3f}", c, seconds)
    return FoldOutcome(fold=fold, predictions=predictions, metrics=metrics, best_epoch=best_epoch,
                       val_c_index=val_scores, train_loss=train_losses, omic_sizes=sizes, seconds=seconds)
