"""The trainer on real feature-store bags (LanceDB): batch-1 bags, Cox over accumulated groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pmx.survival import cox_loss, harrell_c
from pmx.training import Trainer, TrainTask

DIM = 8


class AttentionMilCox(TrainTask):
    """Gated-attention pooling over a bag of tile vectors -> Cox risk (group objective)."""

    def __init__(self):
        super().__init__()
        self.attend = nn.Sequential(nn.Linear(DIM, 8), nn.Tanh(), nn.Linear(8, 1))
        self.risk_head = nn.Linear(DIM, 1)

    def risk(self, batch):
        scores = self.attend(batch["features"])[..., 0].masked_fill(~batch["mask"], float("-inf"))
        pooled = (scores.softmax(dim=1).unsqueeze(-1) * batch["features"]).sum(1)
        return self.risk_head(pooled)[:, 0]

    def features(self, batch):
        return {"risk": self.risk(batch), "time": batch["time"], "event": batch["event"]}

    def group_losses(self, features):
        return {"cox": cox_loss(features["risk"], features["time"], features["event"])}

    def predict(self, batch):
        return {**self.features(batch), "patient_id": batch["patient_id"]}

    def metrics(self, outputs):
        return {"cindex": harrell_c(outputs["time"].numpy(), outputs["event"].numpy() > 0, outputs["risk"].numpy())}


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    from pmx.featurestore import open_store
    from pmx.featurestore.datasets import BagDataset

    store = open_store(tmp_path_factory.mktemp("store") / "store")
    rng = np.random.default_rng(0)
    hazard = np.linspace(-3.0, 3.0, 20)
    rng.shuffle(hazard)
    time = rng.exponential(1.0, 20) / np.exp(hazard)
    store.upsert("patients", [{"patient_id": f"P{p:02d}", "time": float(time[p]), "event": p % 4 != 0}
                              for p in range(20)])
    for p in range(20):  # signal in a few tiles of each bag, the rest noise
        bag = rng.standard_normal((12 + p % 5, DIM)).astype(np.float32)
        bag[:3, 0] += 2.0 * hazard[p]
        store.write_embeddings("enc", f"P{p:02d}-S0", bag, patient_id=f"P{p:02d}")
    oracle = harrell_c(time, np.arange(20) % 4 != 0, hazard)
    return BagDataset(store, "enc", max_instances=10, seed=1), oracle


def test_bag_training_from_the_store_learns(bags, tmp_path) -> None:
    from pmx.featurestore.datasets import collate_bags

    bags, oracle = bags
    torch.manual_seed(0)
    task = AttentionMilCox()
    config = dict(epochs=4, batch_size=1, accumulation_steps=10, lr=0.1, monitor="val_cindex",
                  progress=False)
    trainer = Trainer(task, config, run_dir=tmp_path, device="cpu", collate_fn=collate_bags)
    before = trainer.evaluate(bags)["val_cindex"]
    result = trainer.fit(bags, bags)  # the same split twice: this checks fitting, not generalising
    assert result.global_step == 8 and bags.epoch == 3  # the trainer advanced the bag sampling
    assert oracle > 0.8
    assert result.best_metric > oracle - 0.1 and result.best_metric > before + 0.1
    bags.set_epoch(result.best_epoch)  # same tile subsets as that validation (one dataset object here)
    out = trainer.predict(bags)  # the best epoch's weights, ids aligned with risks
    assert out["patient_id"] == bags.patient_ids and out["risk"].shape == (20,)
    assert harrell_c(out["time"].numpy(), out["event"].numpy() > 0, out["risk"].numpy()) == pytest.approx(
        result.best_metric)
