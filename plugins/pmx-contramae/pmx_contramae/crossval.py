"""One cross-validation fold of ContraMAE on pmx's Trainer: pretrain, fine-tune, predict the test fold.

* **Pretraining** (``pretrain.epochs > 0``): ``method.build_pretrain_model()`` (masked encoder,
  decoder, PGC / GR / PR) on the fold's training patients (``eval.pretrain_scope=train-val`` adds
  the validation split; the test fold never). No model selection on a pretext loss: the last
  weights are kept.
* **Fine-tuning**: ``method.build_survival_model()`` initialised from the pretraining weights
  (``init_include=["backbone."]``, all of the backbone required), Cox loss on the training part,
  early stopping and the best epoch chosen on the validation split's C-index.
* **Test**: risks of the test fold with the selected weights, and the fold's metrics.

Both stages read batches from the device-resident :class:`~pmx_contramae.bank.RegionBank`; the
regions are augmented on the device by the model's ``RegionAugment`` on every use.
"""

from __future__ import annotations

import logging
import shutil
import time as clock
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from pmx.errors import DataError

from .bank import BankLoader, RegionBank, Unsized

log = logging.getLogger("pmx.contramae")

__all__ = ["FoldOutcome", "run_fold"]


@dataclass
class FoldOutcome:
    fold: int
    predictions: pd.DataFrame  #: test patients: fold, patient_id, time, event, risk, part
    metrics: dict[str, float | None]
    c_index: float
    pretrain: dict[str, Any] | None
    finetune: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _rows(patients: Sequence[str], position: dict[str, int]) -> list[int]:
    return [position[p] for p in patients]


def _last_losses(history: list[dict[str, Any]]) -> dict[str, float]:
    if not history:
        return {}
    return {k[len("train_"):]: round(float(v), 5) for k, v in history[-1].items()
            if k.startswith("train_") and isinstance(v, (int, float))}


def _drop_checkpoints(run_dir: Path, keep: bool) -> None:
    if not keep:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def run_fold(method: Any, bank: RegionBank, patients: Sequence[str], members: dict[str, list[str]], fold: int,
             omics: np.ndarray | None, *, run_dir: Path, seed: int, device: torch.device,
             progress: bool = True) -> FoldOutcome:
    """Pretrain (unless ``pretrain.epochs == 0``), fine-tune and test one fold (see the module docstring)."""
    config = method.config
    previous = torch.get_num_threads()
    if config.runtime.threads:  # tiny models are thread hand-off bound on a busy CPU
        torch.set_num_threads(config.runtime.threads)
    try:
        return _run_fold(method, bank, patients, members, fold, omics, run_dir=run_dir, seed=seed, device=device,
                         progress=progress)
    finally:
        torch.set_num_threads(previous)


def _run_fold(method: Any, bank: RegionBank, patients: Sequence[str], members: dict[str, list[str]], fold: int,
              omics: np.ndarray | None, *, run_dir: Path, seed: int, device: torch.device,
              progress: bool) -> FoldOutcome:
    from pmx.evaluation import fold_metrics
    from pmx.survival.metrics import harrell_c
    from pmx.training import Trainer

    c = method.config
    started = clock.perf_counter()
    position = {p: i for i, p in enumerate(patients)}
    train, val, test = (_rows(members[part], position) for part in ("train", "val", "test"))
    fold_bank = bank.with_omics(torch.from_numpy(omics) if omics is not None else None)
    fold_seed = seed * 1000 + fold
    fold_dir = Path(run_dir) / f"fold{fold}"
    seconds: dict[str, float] = {}

    init_from = None
    pretrain_summary: dict[str, Any] | None = None
    if c.pretrain.epochs > 0:
        scope = train + val if c.eval.pretrain_scope == "train-val" else train
        torch.manual_seed(fold_seed)
        model = method.build_pretrain_model()
        cfg = c.pretrain.model_copy(update={"seed": fold_seed, "progress": progress and c.pretrain.progress})
        trainer = Trainer(model, cfg, run_dir=fold_dir / "pretrain", device=device, resume=False,
                          record={"method": "contramae", "stage": "pretrain", "fold": fold})
        loader = BankLoader(fold_bank, scope, batch_size=cfg.batch_size, train=True, seed=cfg.seed,
                            rank=trainer.env.rank, world_size=trainer.env.world_size)
        log.info("fold %d: pretraining on %d patients (%s), %d epochs x %d steps", fold, len(scope),
                 c.eval.pretrain_scope, cfg.epochs, len(loader))
        t0 = clock.perf_counter()
        result = trainer.fit(loader)
        seconds["pretrain"] = round(clock.perf_counter() - t0, 2)
        init_from = fold_dir / "pretrain" / "model.safetensors"
        pretrain_summary = {"patients": len(scope), "epochs": result.epochs_run, "steps": result.global_step,
                            "first": _last_losses(result.history[:1]), "last": _last_losses(result.history),
                            "seconds": seconds["pretrain"]}
        _drop_checkpoints(fold_dir / "pretrain", c.runtime.keep_checkpoints)
        del trainer, model

    torch.manual_seed(fold_seed + 1)
    model = method.build_survival_model()
    cfg = c.finetune.model_copy(update={"seed": fold_seed + 1, "progress": progress and c.finetune.progress})
    if not val and cfg.patience:
        log.warning("fold %d: no validation split (eval.val_fraction=0): no early stopping, last epoch kept", fold)
        cfg = cfg.model_copy(update={"patience": 0})
    trainer = Trainer(model, cfg, run_dir=fold_dir / "finetune", device=device, resume=False,
                      init_from=init_from, init_include=["backbone."] if init_from else None,
                      init_required=["backbone."] if init_from else None,
                      record={"method": "contramae", "stage": "finetune", "fold": fold})
    rank, world = trainer.env.rank, trainer.env.world_size
    train_loader = BankLoader(fold_bank, train, batch_size=cfg.batch_size, train=True, seed=cfg.seed, rank=rank,
                              world_size=world)
    if val and len(val) < world:
        raise DataError(f"fold {fold}: the validation split has {len(val)} patient(s) for {world} processes; "
                        "raise eval.val_fraction or use fewer processes")
    val_loader = (Unsized(BankLoader(fold_bank, val, batch_size=cfg.batch_size, train=False, rank=rank,
                                     world_size=world)) if val else None)
    t0 = clock.perf_counter()
    result = trainer.fit(train_loader, val_loader)
    seconds["finetune"] = round(clock.perf_counter() - t0, 2)
    out = trainer.predict(BankLoader(fold_bank, test, batch_size=cfg.batch_size, train=False, rank=rank,
                                     world_size=world))
    _drop_checkpoints(fold_dir / "finetune", c.runtime.keep_checkpoints)

    order = np.argsort(out["index"].numpy(), kind="stable")  # processes return interleaved shards
    rows = out["index"].numpy()[order]
    risk = out["risk"].double().numpy()[order]
    time = out["time"].double().numpy()[order]
    event = out["event"].numpy().astype(bool)[order]
    train_time = bank.time[train].double().cpu().numpy()
    train_event = bank.event[train].cpu().numpy().astype(bool)
    c_index = float(harrell_c(time, event, risk))
    metrics = fold_metrics(train_time, train_event, time, event, risk)
    predictions = pd.DataFrame({"fold": fold, "patient_id": [patients[i] for i in rows], "time": time,
                                "event": event.astype(int), "risk": risk, "part": "test"})
    val_curve = [r.get("val_c_index") for r in result.history]
    finetune_summary = {"best_epoch": result.best_epoch, "best_val_c_index": result.best_metric,
                        "epochs": result.epochs_run, "stopped_early": result.stopped_early,
                        "val_c_index": [None if v is None or v != v else round(float(v), 4) for v in val_curve],
                        "init_from": str(init_from) if init_from else None, "seconds": seconds["finetune"]}
    seconds["total"] = round(clock.perf_counter() - started, 2)
    best = "n/a" if result.best_metric is None else f"{result.best_metric:.3f}"
    log.info("fold %d: %s; fine-tuned %d epoch(s), best epoch %s (val C %s); test C-index %.3f; %.1f s", fold,
             "pretrained %d epoch(s) (%s)" % (pretrain_summary["epochs"], ", ".join(
                 f"{k} {v:.3f}" for k, v in pretrain_summary["last"].items()))
             if pretrain_summary else "no pretraining (from scratch)",
             result.epochs_run, result.best_epoch, best, c_index, seconds["total"])
    return FoldOutcome(fold=fold, predictions=predictions, metrics=metrics, c_index=c_index,
                       pretrain=pretrain_summary, finetune=finetune_summary, seconds=seconds)
