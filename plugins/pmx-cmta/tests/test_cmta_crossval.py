"""CMTA's fold loop: batched steps equal accumulated batch-1 steps, the lr schedule, the
selection window, and a tiny-preset fold learning a planted signal on held-out patients."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from pmx.survival.metrics import harrell_c
from pmx_cmta import CMTAMethod, CMTAModel, build_optimizer
from pmx_cmta.crossval import _lr_schedule, run_fold, selection_start
from pmx_cmta.data import CohortData

from cmta_testutils import TINY, random_inputs


def _grads(model: CMTAModel) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_one_batched_forward_of_equal_bags_gives_the_accumulated_batch_one_gradient():
    torch.manual_seed(0)
    model = CMTAModel.build(backbone=TINY).double().eval()  # eval: no dropout, one function for both runs
    model.fit_time_bins(np.arange(1.0, 9.0), np.ones(8, dtype=bool))
    path, omics = random_inputs(6, batch=4)
    path, omics = path.double(), [o.double() for o in omics]
    time, event = np.array([1.5, 3.0, 6.5, 2.0]), np.array([1, 0, 1, 1], dtype=bool)

    model.losses(model(path, omics), time, event)["total"].backward()
    batched = _grads(model)
    model.zero_grad()
    for i in range(4):  # what train.batch_size=4 with batch-1 forwards accumulates
        loss = model.losses(model(path[i:i + 1], [o[i:i + 1] for o in omics]), time[i:i + 1], event[i:i + 1])
        (loss["total"] / 4).backward()
    accumulated = _grads(model)
    assert batched.keys() == accumulated.keys() and len(batched) > 50
    for name in batched:
        torch.testing.assert_close(batched[name], accumulated[name], rtol=1e-9, atol=1e-12, msg=name)


def test_cosine_schedule_decays_per_epoch_and_constant_is_no_schedule():
    model = torch.nn.Linear(2, 1)
    optimizer = build_optimizer(model, "adam", lr=1e-2, weight_decay=0.0)
    assert _lr_schedule(optimizer, "constant", 10) is None
    schedule = _lr_schedule(optimizer, "cosine", 4)
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(seen, expected)
    assert seen[0] == 1e-2 and seen[-1] < 0.2e-2


def test_selection_window_starts_at_the_configured_fraction():
    assert selection_start(15, 0.0) == 0
    assert selection_start(15, 0.5) == 7
    assert selection_start(1, 0.5) == 0  # a one-epoch run can still select its only epoch
    assert selection_start(4, 0.99) == 3


def planted_cohort(tmp_path, n: int = 120, seed: int = 0) -> CohortData:
    """Bags of 2-8 tiles whose 1024-d vectors carry the log-hazard along one direction, and RNA
    whose first family carries it in five genes; exponential survival with hazard exp(2 r)."""
    rng = np.random.default_rng(seed)
    risk = rng.standard_normal(n)
    direction = rng.standard_normal(1024)
    direction /= np.linalg.norm(direction)
    bags = [torch.from_numpy((rng.standard_normal((int(rng.integers(2, 9)), 1024))
                              + 2.0 * r * direction).astype(np.float32)) for r in risk]
    genes = [f"GENE{i:03d}" for i in range(60)]
    rna = pd.DataFrame(rng.standard_normal((n, 60)), columns=genes)
    rna.iloc[:, :5] += risk[:, None]
    families = {f"family {k}": genes[10 * k:10 * k + 10] for k in range(6)}
    signatures = tmp_path / "signatures.csv"
    pd.DataFrame(families).to_csv(signatures, index=False)
    death = rng.exponential(1.0, n) / np.exp(2.0 * risk)
    censor = rng.exponential(1.0 / 0.4, n)
    patients = [f"P{i:03d}" for i in range(n)]
    rna.index = patients
    return CohortData(name="planted", patients=patients, time=np.minimum(death, censor) * 1000,
                      event=death <= censor, bags=bags, rna=rna, signatures=signatures,
                      manifest=tmp_path / "manifest.toml")


def test_a_tiny_preset_fold_learns_the_planted_signal(tmp_path):
    from pmx.evaluation import fold_members, make_folds

    data = planted_cohort(tmp_path)
    config = CMTAMethod.resolve_config("tiny")
    split = make_folds(data.patients, data.event, n_folds=4, val_fraction=config.eval.val_fraction, seed=0,
                       time=data.time)
    members = fold_members(split, 0)
    outcome = run_fold(data, members, 0, config, seed=0, device=torch.device("cpu"), progress=False)

    test = outcome.predictions
    assert set(test["patient_id"]) == set(members["test"])
    c_index = harrell_c(test["time"].to_numpy(), test["event"].to_numpy().astype(bool), test["risk"].to_numpy())
    # chance 0.5; the true log-hazard scores 0.84 on this cohort; measured 0.745 (0.63-0.85 on
    # other folds and seeds)
    assert c_index > 0.65, f"held-out C-index {c_index:.3f}"
    first = selection_start(config.train.epochs, config.eval.select_from)
    assert outcome.best_epoch >= first  # the epoch came from the selection window
    assert all(v is None for v in outcome.val_c_index[:first])  # earlier epochs were not scored
    assert all(v is not None for v in outcome.val_c_index[first:])
    assert len(outcome.train_loss) == config.train.epochs
    assert outcome.train_loss[-1] < outcome.train_loss[0]
