"""The one training loop every method uses (pretraining, fine-tuning, evaluation per fold).

A method builds a :class:`~pmx.training.task.TrainTask` and a :class:`TrainConfig`, then::

    trainer = Trainer(task, config, run_dir=run_dir, init_from=pretrain_dir)
    result = trainer.fit(train_dataset, val_dataset)   # early stopping on the validation split
    outputs = trainer.predict(test_dataset)            # e.g. risks of the held-out fold

The trainer owns optimisation (AdamW/SGD, weight-decay groups, layer-wise lr decay, warm-up +
cosine per step, accumulation, clipping, bf16 autocast on GPU), distribution (DDP or, for
group objectives, gathered features and averaged gradients), checkpoints and resume, model
selection on the validation split, and the run directory's records. The test fold is never
seen by ``fit``: only ``predict``/``evaluate`` touch it, after selection.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from pmx.config import build_config
from pmx.errors import ConfigError, DataError

from .checkpoint import (
    find_latest,
    load_checkpoint,
    load_pretrained,
    read_weights,
    save_checkpoint,
    save_weights,
    write_json,
)
from .config import TrainConfig
from .data import make_loader, prepare_epoch, to_device
from .distributed import (
    all_reduce_sum,
    average_gradients,
    barrier,
    broadcast_parameters,
    gather_variable,
    init_distributed,
)
from .group import concat_features, group_backward
from .optim import build_optimizer
from .runlog import RunLog, read_metrics
from .schedule import WarmupCosineSchedule
from .seeding import capture_rng_state, restore_rng_state, seed_everything
from .task import TensorDict, TrainTask, weighted_total

log = logging.getLogger("pmx.training")

EVAL_SEED_OFFSET = 1_000_003


class Callback:
    """Hooks into the loop (all optional); used by tests and by methods for extra logging."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...

    def on_step_end(self, trainer: "Trainer", losses: Mapping[str, float]) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", record: Mapping[str, Any]) -> None: ...

    def on_fit_end(self, trainer: "Trainer", result: "FitResult") -> None: ...


@dataclass
class FitResult:
    """What ``fit`` returns (also written to ``result.json`` in the run directory)."""

    run_dir: str
    epochs_run: int
    global_step: int
    monitor: str
    best_epoch: int | None
    best_metric: float | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _State:
    """Counters that make a run resumable (stored in the checkpoint's state.json)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_steps: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False


class Trainer:
    """Fits a :class:`TrainTask` (see the module docstring)."""

    def __init__(
        self,
        task: TrainTask,
        config: TrainConfig | Mapping[str, Any] | None = None,
        *,
        run_dir: str | Path,
        device: str | torch.device = "auto",
        resume: bool = True,
        init_from: str | Path | Mapping[str, torch.Tensor] | None = None,
        init_include: Sequence[str] | None = None,
        init_rename: Mapping[str, str] | None = None,
        init_required: Sequence[str] | None = None,
        record: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callback] = (),
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ):
        if not isinstance(task, TrainTask):
            raise TypeError("Trainer needs a pmx.training.TrainTask")
        if isinstance(config, TrainConfig):
            self.config = config
        else:
            self.config = build_config(TrainConfig, dict(config or {}), owner="training")
        self.env, self.device = init_distributed(device)
        self.task = task.to(self.device)
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.init_from = init_from
        self.init_include = init_include
        self.init_rename = init_rename
        self.init_required = init_required
        self.record = dict(record or {})
        self.callbacks = list(callbacks)
        self.collate_fn = collate_fn
        self.group = task.uses_group_objective
        self.weights = {**dict(task.loss_weights), **self.config.loss_weights}
        self.optimizer = build_optimizer(task, self.config)
        self.scheduler: WarmupCosineSchedule | None = None
        self.state = _State()
        self._ddp: DistributedDataParallel | None = None
        self._last_lr = self.config.lr
        self.runlog = RunLog(self.run_dir, enabled=self.env.is_main, tensorboard=self.config.tensorboard)

    # ---- public API ---------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def make_loader(self, data: Dataset | DataLoader | Any, *, train: bool) -> Any:
        """A rank-sharded loader for a dataset; loaders and other iterables pass through."""
        if isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__"):
            return make_loader(
                data, batch_size=self.config.batch_size, env=self.env, shuffle=train,
                seed=self.config.seed, pad=train, num_workers=self.config.num_workers,
                collate_fn=self.collate_fn, pin_memory=self.device.type == "cuda",
            )
        return data

    def fit(self, train_data: Any, val_data: Any | None = None) -> FitResult:
        """Train, validating every ``val_every_epochs``; resume from the run's last checkpoint."""
        cfg = self.config
        # A Dataset's length counts samples; a DataLoader's counts batches (it shards itself).
        if (val_data is not None and not isinstance(val_data, torch.utils.data.DataLoader)
                and hasattr(val_data, "__len__") and len(val_data) < self.env.world_size):
            raise DataError(f"the validation split has {len(val_data)} samples for "
                            f"{self.env.world_size} processes; every process needs at least one")
        train_loader = self.make_loader(train_data, train=True)
        val_loader = self.make_loader(val_data, train=False) if val_data is not None else None
        batches = self._batches_per_epoch(train_loader)
        steps_per_epoch = math.ceil(batches / cfg.accumulation_steps)
        warmup = cfg.warmup_steps or round(cfg.warmup_epochs * steps_per_epoch)
        self.scheduler = WarmupCosineSchedule(
            self.optimizer, base_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
            warmup_steps=warmup, min_lr=cfg.min_lr, schedule=cfg.schedule,
        )
        latest = find_latest(self.checkpoint_dir) if self.resume else None
        self.runlog.save_config(self._resolved_config(), resuming=latest is not None)
        if latest is not None:
            trainer_state, rng_restored = load_checkpoint(
                latest, env=self.env, model=self.task, optimizer=self.optimizer, scheduler=self.scheduler)
            self.state = _State(**trainer_state)
            if not rng_restored:
                seed_everything(cfg.seed + self.env.rank + 7919 * self.state.global_step, cfg.deterministic)
            self.runlog.truncate(self.state.epoch)
            log.info("resumed %s from %s (epoch %d, step %d)", self.run_dir, latest.name,
                     self.state.epoch, self.state.global_step)
        else:
            seed_everything(cfg.seed + self.env.rank, cfg.deterministic)
            self._clear_previous_run()
            if self.init_from is not None:
                self._load_init()
        barrier()
        if self.env.is_distributed:
            if self.group:
                broadcast_parameters(self.task)
            else:
                self._ddp = DistributedDataParallel(
                    self.task, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=cfg.find_unused_parameters,
                )
        for callback in self.callbacks:
            callback.on_fit_start(self)

        while self.state.epoch < cfg.epochs and not self.state.stopped_early:
            record = self._train_epoch(train_loader, batches, steps_per_epoch)
            is_last = self.state.epoch + 1 == cfg.epochs
            if val_loader is not None and ((self.state.epoch + 1) % cfg.val_every_epochs == 0 or is_last):
                record.update(self.evaluate(val_loader))
                self._select(record)
            record["time_s"] = round(time.perf_counter() - record.pop("_start"), 3)
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            self.state.epoch_sums = {}
            self.state.epoch_steps = 0
            self.runlog.append(record)
            for callback in self.callbacks:
                callback.on_epoch_end(self, record)
            if (self.state.epoch % cfg.checkpoint_every_epochs == 0 or self.state.epoch == cfg.epochs
                    or self.state.stopped_early):
                self._checkpoint()
        return self._finish(val_loader is not None)

    @torch.no_grad()
    def predict(self, data: Any) -> dict[str, Any]:
        """``task.predict`` over a whole split, gathered from every rank, on the CPU."""
        loader = self.make_loader(data, train=False)
        with self._eval_mode():
            parts = []
            for batch in loader:
                with self._autocast():
                    parts.append(self.task.predict(to_device(batch, self.device)))
            return _gather_outputs(parts)

    @torch.no_grad()
    def evaluate(self, data: Any, prefix: str = "val_") -> dict[str, float]:
        """Losses (and ``task.metrics`` when the task predicts) on a split, over all ranks."""
        loader = self.make_loader(data, train=False)
        predicts = self.task.has_predict
        feature_parts: list[TensorDict] = []
        outputs: list[TensorDict] = []
        sums: dict[str, float] = {}
        count = 0.0
        with self._eval_mode():
            for batch in loader:
                batch = to_device(batch, self.device)
                with self._autocast():
                    if self.group:
                        feature_parts.append(self.task.features(batch))
                    else:
                        size = float(_batch_size(batch))
                        losses = self.task.losses(batch)
                        total = weighted_total(losses, self.weights)
                        for key, value in {**losses, "loss": total}.items():
                            sums[key] = sums.get(key, 0.0) + float(value) * size
                        count += size
                    if predicts:
                        outputs.append(self.task.predict(batch))
            if self.group:
                if not feature_parts:
                    raise DataError("the validation split is empty on this rank; use more samples than processes")
                features = {k: gather_variable(v) for k, v in concat_features(feature_parts).items()}
                with self._autocast():
                    losses = self.task.group_losses(features)
                    total = weighted_total(losses, self.weights)
                values = {k: float(v) for k, v in losses.items()} | {"loss": float(total)}
            else:
                names = sorted(sums)
                packed = torch.tensor([sums[n] for n in names] + [count], dtype=torch.float64,
                                      device=self.device)
                all_reduce_sum(packed)
                if packed[-1] <= 0:
                    raise DataError("the validation split is empty")
                values = {n: float(packed[i] / packed[-1]) for i, n in enumerate(names)}
            if predicts:
                values.update(self.task.metrics(_gather_outputs(outputs)))
        return {f"{prefix}{k}": v for k, v in values.items()}

    # ---- one epoch ----------------------------------------------------------------------
    def _train_epoch(self, loader: Any, batches: int, steps_per_epoch: int) -> dict[str, Any]:
        cfg = self.config
        state = self.state
        start = time.perf_counter()
        self.task.train()
        accum = cfg.accumulation_steps
        done_steps = state.batch_in_epoch // accum
        iterator = prepare_epoch(loader, state.epoch, cfg.seed, start_batch=state.batch_in_epoch)
        sizes = [min(accum, batches - s * accum) for s in range(done_steps, steps_per_epoch)]
        bar = tqdm(total=steps_per_epoch, initial=done_steps, desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and self.env.is_main), leave=False, dynamic_ncols=True)
        for size in sizes:
            group = [to_device(next(iterator), self.device) for _ in range(size)]
            losses = self._train_step(group)
            state.global_step += 1
            state.batch_in_epoch += size
            for key, value in losses.items():
                state.epoch_sums[key] = state.epoch_sums.get(key, 0.0) + value
            state.epoch_steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss']:.4f}", lr=f"{self._last_lr:.2e}")
            for callback in self.callbacks:
                callback.on_step_end(self, losses)
            if (cfg.checkpoint_every_steps and state.global_step % cfg.checkpoint_every_steps == 0
                    and state.batch_in_epoch < batches):
                self._checkpoint()
        bar.close()
        record: dict[str, Any] = {"epoch": state.epoch, "step": state.global_step, "lr": self._last_lr,
                                  "_start": start}
        for key, value in sorted(state.epoch_sums.items()):
            record[f"train_{key}"] = value / max(1, state.epoch_steps)
        return record

    def _train_step(self, group: list[Any]) -> dict[str, float]:
        """One optimizer step over an accumulation group; returns rank-averaged loss values."""
        assert self.scheduler is not None
        if self.group:
            values = group_backward(self.task, group, weights=self.weights, mode=self.config.group_mode,
                                    autocast=self._autocast)
            average_gradients([p for p in self.task.parameters() if p.requires_grad])
        else:
            values = self._per_batch_backward(group)
        if not math.isfinite(values["loss"]):
            raise FloatingPointError(
                f"non-finite loss {values} at epoch {self.state.epoch}, step {self.state.global_step}; "
                "the last checkpoint is intact: lower lr, enable grad_clip or check the inputs")
        params = [p for p in self.task.parameters() if p.requires_grad]
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self._last_lr = self.scheduler.current_lr()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return self._rank_mean(values)

    def _per_batch_backward(self, group: list[Any]) -> dict[str, float]:
        model: nn.Module = self._ddp if self._ddp is not None else self.task
        sums: dict[str, torch.Tensor] = {}
        for index, batch in enumerate(group):
            last = index == len(group) - 1
            sync = contextlib.nullcontext() if (self._ddp is None or last) else self._ddp.no_sync()
            with sync:
                with self._autocast():
                    losses = model(batch)
                    total = weighted_total(losses, self.weights)
                (total / len(group)).backward()
            for key, value in {**losses, "loss": total}.items():
                sums[key] = sums[key] + value.detach() if key in sums else value.detach()
        return {k: float(v) / len(group) for k, v in sums.items()}  # one device sync per step

    def _rank_mean(self, values: Mapping[str, float]) -> dict[str, float]:
        if not self.env.is_distributed:
            return dict(values)
        names = sorted(values)
        packed = torch.tensor([values[n] for n in names], dtype=torch.float64, device=self.device)
        all_reduce_sum(packed)
        return {n: float(packed[i]) / self.env.world_size for i, n in enumerate(names)}

    # ---- selection, checkpoints, end ----------------------------------------------------
    def _select(self, record: dict[str, Any]) -> None:
        cfg, state = self.config, self.state
        if cfg.monitor not in record:
            available = ", ".join(k for k in record if k.startswith("val_"))
            raise ConfigError(f"monitor {cfg.monitor!r} is not a validation metric of this task; "
                              f"available: {available}")
        value = float(record[cfg.monitor])
        maximise = (cfg.monitor_mode == "max") or (cfg.monitor_mode == "auto" and "loss" not in cfg.monitor)
        if math.isnan(value):
            improved = False
        elif state.best_metric is None:
            improved = True
        elif maximise:
            improved = value > state.best_metric + cfg.min_delta
        else:
            improved = value < state.best_metric - cfg.min_delta
        if improved:
            state.best_metric, state.best_epoch, state.bad_epochs = value, state.epoch, 0
            if self.env.is_main:
                save_weights(self.task, self.run_dir / "best" / "model.safetensors")
                write_json(self.run_dir / "best" / "best.json",
                           {"epoch": state.epoch, "monitor": cfg.monitor, "value": value})
        else:
            state.bad_epochs += 1
            if cfg.patience and state.bad_epochs >= cfg.patience:
                state.stopped_early = True
                log.info("early stopping after epoch %d: %s did not improve for %d validations "
                         "(best %.5g at epoch %d)", state.epoch, cfg.monitor, state.bad_epochs,
                         state.best_metric, state.best_epoch)
        record["best_epoch"] = state.best_epoch
        record[f"best_{cfg.monitor}"] = state.best_metric

    def _checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_dir, env=self.env, model=self.task, optimizer=self.optimizer,
                        scheduler=self.scheduler, trainer_state=asdict(self.state),
                        keep=self.config.keep_checkpoints)

    def _finish(self, validated: bool) -> FitResult:
        state = self.state
        best_file = self.run_dir / "best" / "model.safetensors"
        if validated and self.config.restore_best and state.best_epoch is not None:
            if self.env.is_main:
                self.task.load_state_dict(read_weights(best_file))
            broadcast_parameters(self.task)
        if self.env.is_main:
            save_weights(self.task, self.run_dir / "model.safetensors")
        result = FitResult(
            run_dir=str(self.run_dir), epochs_run=state.epoch, global_step=state.global_step,
            monitor=self.config.monitor, best_epoch=state.best_epoch, best_metric=state.best_metric,
            stopped_early=state.stopped_early, history=read_metrics(self.run_dir),
        )
        if self.env.is_main:
            write_json(self.run_dir / "result.json", {k: v for k, v in asdict(result).items() if k != "history"})
        barrier()
        self.runlog.close()
        for callback in self.callbacks:
            callback.on_fit_end(self, result)
        return result

    # ---- helpers ------------------------------------------------------------------------
    def _clear_previous_run(self) -> None:
        """A fresh start must not mix with checkpoints, best weights or metrics left behind."""
        if self.env.is_main:
            for stale in (self.checkpoint_dir, self.run_dir / "best"):
                if stale.exists():
                    shutil.rmtree(stale)
            for name in ("model.safetensors", "result.json", "init.json"):
                (self.run_dir / name).unlink(missing_ok=True)
            self.runlog.truncate(0)
        barrier()

    def _load_init(self) -> None:
        report = load_pretrained(self.task, self.init_from, include=self.init_include,
                                 rename=self.init_rename, required=self.init_required)
        if self.env.is_main:
            write_json(self.run_dir / "init.json", report.as_dict())

    def _resolved_config(self) -> dict[str, Any]:
        source = self.init_from if isinstance(self.init_from, (str, Path)) else (
            "in-memory" if self.init_from is not None else None)
        return {"train": self.config.model_dump(mode="json"), "init_from": str(source) if source else None,
                "task": type(self.task).__qualname__, **self.record}

    def _batches_per_epoch(self, loader: Any) -> int:
        try:
            count = len(loader)
        except TypeError:
            raise DataError("the training data must have a length (a Dataset or a DataLoader over one)") from None
        if count == 0:
            raise DataError("the training split yields no batch")
        if self.env.is_distributed:
            packed = torch.tensor([count, -count], dtype=torch.long, device=self.device)
            torch.distributed.all_reduce(packed, op=torch.distributed.ReduceOp.MAX)
            if int(packed[0]) != -int(packed[1]):
                raise DataError(
                    f"ranks have different numbers of training batches ({-int(packed[1])} to "
                    f"{int(packed[0])}); pass a Dataset (the trainer shards it evenly) or use "
                    "pmx.training.make_loader"
                )
        return count

    def _autocast(self) -> contextlib.AbstractContextManager:
        precision = self.config.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        if precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode with a fixed seed, leaving the training RNG streams untouched."""
        saved = capture_rng_state()
        was_training = self.task.training
        seed_everything(self.config.seed + EVAL_SEED_OFFSET + self.env.rank)
        self.task.eval()
        try:
            yield
        finally:
            self.task.train(was_training)
            restore_rng_state(*saved)


def _gather_outputs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate ``predict`` outputs over batches and ranks, on the CPU.

    Tensors (floating ones as float32) are joined along dim 0; lists (e.g. patient ids)
    are joined as lists, so ids stay aligned with the risks they belong to.
    """
    if not parts:
        raise DataError("predict() got an empty split")
    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        if isinstance(first, torch.Tensor):
            joined = gather_variable(concat_features([{key: p[key]} for p in parts])[key])
            out[key] = (joined.float() if joined.is_floating_point() else joined).cpu()
        elif isinstance(first, (list, tuple)):
            values = [v for p in parts for v in p[key]]
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                everyone: list[Any] = [None] * torch.distributed.get_world_size()
                torch.distributed.all_gather_object(everyone, values)
                values = [v for rank_values in everyone for v in rank_values]
            out[key] = values
        else:
            raise TypeError(f"predict() output {key!r} must be a tensor or a list, got {type(first).__name__}")
    return out


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        for value in batch.values():
            return _batch_size(value)
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 1
