"""The training section of a method config: one schema for pretraining and fine-tuning.

Methods embed ``TrainConfig`` (or a subclass with other defaults) as their ``pretrain`` and
``finetune`` sections, so ``--set finetune.lr=1e-4`` works the same for every method and the
resolved values are what the run directory records.
"""

from __future__ import annotations

from typing import Literal

from pmx.config import ComponentConfig, Field


class TrainConfig(ComponentConfig):
    """Loop, optimizer, schedule, checkpoint and model-selection settings of one training run."""

    epochs: int = Field(10, ge=1, description="passes over the training data")
    batch_size: int = Field(1, ge=1, description="samples per micro-batch on each process (loaders the trainer builds)")
    accumulation_steps: int = Field(1, ge=1, description="micro-batches per optimizer step (a group); batch-1 bag methods accumulate")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw or sgd (with momentum)")
    lr: float = Field(1e-3, gt=0, description="peak learning rate (after warm-up)")
    min_lr: float = Field(0.0, ge=0, description="learning rate at the end of the cosine schedule")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay; biases, norms and 1-d parameters get none")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon")
    momentum: float = Field(0.9, ge=0, description="SGD momentum")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="per-step schedule after warm-up: half-cycle cosine to min_lr, or constant")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up length in epochs (converted to optimizer steps)")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up length in optimizer steps (overrides warmup_epochs when > 0)")
    layer_decay: float = Field(1.0, gt=0, le=1, description="layer-wise lr decay: layer i of L gets lr * decay^(L + 1 - i); 1 = off")
    grad_clip: float = Field(0.0, ge=0, description="clip the global gradient norm to this value; 0 = off")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto = bf16 autocast on CUDA, fp32 on CPU")
    group_mode: Literal["cache", "retain"] = Field("cache", description="group objectives: cache features and recompute (memory of one micro-batch) or retain every graph")
    loss_weights: dict[str, float] = Field(default_factory=dict, description="weight per named loss (overrides the task's defaults); total = weighted sum")
    monitor: str = Field("val_loss", description="validation metric for early stopping and model selection")
    monitor_mode: Literal["auto", "min", "max"] = Field("auto", description="auto: min for names containing 'loss', else max")
    min_delta: float = Field(0.0, ge=0, description="smallest change of the monitored metric that counts as an improvement")
    patience: int = Field(0, ge=0, description="stop after this many validations without improvement; 0 = never stop early")
    restore_best: bool = Field(True, description="load the best validation weights when training ends")
    val_every_epochs: int = Field(1, ge=1, description="validate every N epochs (and after the last)")
    checkpoint_every_epochs: int = Field(1, ge=1, description="write a resumable checkpoint every N epochs (and after the last)")
    checkpoint_every_steps: int = Field(0, ge=0, description="also checkpoint every N optimizer steps inside an epoch; 0 = at epoch ends only")
    keep_checkpoints: int = Field(1, ge=1, description="how many resumable checkpoints to keep")
    seed: int = Field(0, description="seed of data order, dropout and augmentation (ranks add their rank)")
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms (slower on GPU)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (spawned) for loaders the trainer builds")
    find_unused_parameters: bool = Field(False, description="DDP: allow parameters that get no gradient in a step")
    progress: bool = Field(True, description="show tqdm progress bars (rank 0 only)")
    tensorboard: bool = Field(False, description="also write TensorBoard scalars (needs the tensorboard package)")
