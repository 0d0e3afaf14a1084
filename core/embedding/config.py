"""Settings of the embed stage (``pmx embed --set KEY=VALUE``); ``encoder.*`` keys go to the encoder.

Only what changes the vectors is part of the cache key: the encoder's fingerprint (its config
and weights), the tiles (tiler fingerprint), where pixels come from, and the numeric precision.
Batch size, workers, ``torch.compile``, TensorRT and the number of processes are execution
settings: they change speed, not which vectors a slide gets.
"""

from __future__ import annotations

from typing import Literal

from ..config import ComponentConfig, Field


class EmbedConfig(ComponentConfig):
    """How tiles are read, batched and run through a tile encoder."""

    tiler: str = Field("", description="tiler fingerprint (or tiler name) whose tiles to embed; "
                       "empty = the only tiling in the store")
    source: Literal["auto", "slide", "pixels"] = Field(
        "auto", description="read tiles from the slide by coordinates, from stored pixels, or "
        "auto (stored pixels when every tile has them)")
    slides: list[str] = Field(default_factory=list, description="embed only these slide ids "
                              "(empty = every slide with tiles)")
    device: str = Field("auto", description="auto (cuda when present), cpu, cuda, cuda:1, ...")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="autocast precision: auto = bf16 on GPU, fp32 on CPU")
    batch_size: int = Field(0, ge=0, description="tiles per batch; 0 = 256 on GPU, 32 on CPU")
    num_workers: int = Field(-1, ge=-1, description="DataLoader worker processes reading tiles "
                             "(spawned; each opens its own slides); -1 = auto")
    prefetch_factor: int = Field(4, ge=1, description="batches each worker prepares ahead")
    pin_memory: bool = Field(True, description="page-locked host batches for async GPU copies")
    channels_last: bool = Field(True, description="NHWC memory layout (faster convolutions)")
    compile: bool = Field(False, description="torch.compile the encoder (static shapes: the "
                          "last batch of a slide is padded)")
    compile_mode: str = Field("max-autotune-no-cudagraphs", description="torch.compile mode")
    tensorrt: bool = Field(False, description="run the encoder through torch-tensorrt "
                           "(pip install 'pmx[tensorrt]')")
    threads: int = Field(0, ge=0, description="torch CPU threads per process; 0 = torch default")
    commit_rows: int = Field(262144, ge=1, description="largest number of vectors published to "
                             "the store in one commit (bounds the committer's memory)")
    staging: str = Field("", description="folder or URI for per-rank fragments before the "
                         "commit; empty = <store>/_staging (must be shared by all ranks)")
    dist_timeout_min: float = Field(1440.0, gt=0, description="minutes ranks wait for each "
                                    "other at the commit barrier")
