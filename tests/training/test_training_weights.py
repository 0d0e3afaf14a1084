"""Pretrained weights reach fine-tuning; checkpoints hold only safetensors and JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_tasks import CoxTask, survival_data  # noqa: E402

from pmx.errors import ConfigError, DataError  # noqa: E402
from pmx.training import Callback, Trainer, TrainTask, load_pretrained, read_weights  # noqa: E402


class AutoencoderTask(TrainTask):
    """Pretext task: the same backbone as CoxTask plus a decoder that reconstructs x."""

    def __init__(self, dim: int = 6, hidden: int = 8, prefix: str = "backbone"):
        super().__init__()
        self.prefix = prefix
        setattr(self, prefix, nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(0.0)))
        self.decoder = nn.Linear(hidden, dim)

    def losses(self, batch):
        encoded = getattr(self, self.prefix)(batch["x"])
        return {"recon": nn.functional.mse_loss(self.decoder(encoded), batch["x"])}


class Snapshot(Callback):
    def on_fit_start(self, trainer):
        self.at_start = {k: v.clone() for k, v in trainer.task.state_dict().items()}

    def on_step_end(self, trainer, losses):
        if not hasattr(self, "after_first_step"):
            self.after_first_step = {k: v.clone() for k, v in trainer.task.state_dict().items()}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrain")
    torch.manual_seed(1)
    config = dict(epochs=2, batch_size=8, lr=0.05, progress=False)
    Trainer(AutoencoderTask(), config, run_dir=run_dir, device="cpu").fit(survival_data(n=32))
    return run_dir


def test_finetuning_starts_from_the_pretraining_checkpoint(pretrained: Path, tmp_path: Path) -> None:
    saved = read_weights(pretrained / "model.safetensors")
    torch.manual_seed(2)
    task = CoxTask()
    fresh = {k: v.clone() for k, v in task.state_dict().items()}
    snap = Snapshot()
    config = dict(epochs=1, batch_size=1, accumulation_steps=8, lr=0.05, progress=False)
    Trainer(task, config, run_dir=tmp_path, device="cpu", init_from=pretrained,
            init_include=["backbone."], init_required=["backbone."], callbacks=[snap]).fit(survival_data(n=16))

    for key in ("backbone.0.weight", "backbone.0.bias"):
        assert torch.equal(snap.at_start[key], saved[key]), key  # loaded before the first step
        assert not torch.equal(fresh[key], saved[key])
        assert not torch.equal(snap.after_first_step[key], saved[key])  # and then trained
    assert torch.equal(snap.at_start["head.weight"], fresh["head.weight"])  # new head untouched
    report = json.loads((tmp_path / "init.json").read_text())
    assert report["loaded"] == 2 and report["missing"] == ["head.weight", "head.bias"]
    assert json.loads((tmp_path / "config.json").read_text())["init_from"] == str(pretrained)


def test_rename_maps_checkpoint_prefixes(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = AutoencoderTask(prefix="encoder")
    task = CoxTask()
    report = load_pretrained(task, source.state_dict(), include=["encoder."], rename={"encoder.": "backbone."})
    assert report.loaded == ["backbone.0.bias", "backbone.0.weight"]
    assert torch.equal(task.backbone[0].weight, source.encoder[0].weight)
    assert sorted(report.unused) == ["decoder.bias", "decoder.weight"]


def test_bad_pretrained_weights_are_refused(tmp_path: Path) -> None:
    task = CoxTask()
    with pytest.raises(ConfigError, match="no tensor"):
        load_pretrained(task, {"encoder.0.weight": torch.zeros(8, 6)})
    with pytest.raises(ConfigError, match="do not fit"):
        load_pretrained(task, {"backbone.0.weight": torch.zeros(3, 6)})
    with pytest.raises(ConfigError, match="required"):
        load_pretrained(task, {"backbone.0.weight": torch.zeros(8, 6)}, required=["backbone."])
    with pytest.raises(DataError, match="do not exist"):
        load_pretrained(task, tmp_path / "missing.safetensors")


class NotATensor:
    pass


def test_torch_files_load_without_unpickling_objects(tmp_path: Path) -> None:
    task = CoxTask()
    good = tmp_path / "weights.pt"
    torch.save({"state_dict": task.state_dict()}, good)  # a published-checkpoint layout
    assert read_weights(good).keys() == task.state_dict().keys()
    evil = tmp_path / "evil.pt"
    torch.save({"model": NotATensor()}, evil)
    with pytest.raises(DataError, match="weights_only"):
        read_weights(evil)


def test_checkpoint_folder_holds_only_safetensors_and_json(pretrained: Path) -> None:
    files = [p for p in (pretrained / "checkpoints").rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} == {".safetensors", ".json"}
    state = json.loads(next((pretrained / "checkpoints").glob("step-*/state.json")).read_text())
    assert state["trainer"]["epoch"] == 2 and state["scheduler"]["step_count"] == 8
    assert (pretrained / "config.json").is_file() and (pretrained / "metrics.jsonl").is_file()
