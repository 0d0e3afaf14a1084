"""Where and how the encoder runs: device, precision, compile/TensorRT, and the process group.

torch.distributed is used only to coordinate (barriers, a few small Python objects), never to
move tensors, so the process group is always ``gloo``: the same code runs on CPU test machines
and on GPU nodes, and ranks that wait hours for each other at the commit need no NCCL watchdog.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from typing import Any, Callable, Iterator

import torch

from ..errors import ConfigError
from ..ranks import DistEnv

log = logging.getLogger("pmx.embedding")

_PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def init_process_group(ranks: DistEnv, timeout_min: float) -> bool:
    """Join the gloo process group when launched with several ranks; True if we created it."""
    import torch.distributed as dist

    if not ranks.is_distributed or dist.is_initialized():
        return False
    if "MASTER_ADDR" not in os.environ:
        raise ConfigError("WORLD_SIZE > 1 but MASTER_ADDR is not set: launch with torchrun "
                          "(or `pmx embed --gpus N`), not by setting RANK/WORLD_SIZE by hand")
    dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world_size,
                            timeout=timedelta(minutes=timeout_min))
    return True


def barrier(ranks: DistEnv) -> None:
    if ranks.is_distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast(ranks: DistEnv, value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not ranks.is_distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ranks: DistEnv, value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not ranks.is_distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(out, value)
    return out


def resolve_device(requested: str, ranks: DistEnv) -> torch.device:
    """auto -> cuda:<local rank> when CUDA is present, else cpu; explicit devices are checked."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", ranks.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"device {requested!r} is not a torch device; use auto, cpu, cuda or "
                          "cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {requested!r} asked for but CUDA is not available here; "
                              "use --device cpu (or auto)")
        if device.index is None:
            device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count())
    return device


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type == "cpu":
        raise ConfigError("precision fp16 is not supported on CPU; use fp32 (or bf16)")
    return requested


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_PRECISIONS[precision])


def optimise_module(module: torch.nn.Module, *, device: torch.device, precision: str,
                    channels_last: bool, compile: bool, compile_mode: str, tensorrt: bool,
                    example: Callable[[], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The callable the loop runs: the module on ``device`` (channels_last), optionally compiled
    or converted by torch-tensorrt. ``example`` builds one preprocessed batch (static shape)."""
    module = module.to(device)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if tensorrt:
        return _tensorrt(module, device, precision, example())
    if compile:
        return torch.compile(module, mode=compile_mode, dynamic=False)
    return module


def _tensorrt(module: torch.nn.Module, device: torch.device, precision: str,
              example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import torch_tensorrt  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "tensorrt=true needs torch-tensorrt, which is not installed. Fix: pip install "
            "'pmx[tensorrt]' (a torch-tensorrt build matching your torch and CUDA), or drop "
            "--set tensorrt=true (torch.compile: --set compile=true)."
        ) from None
    if device.type != "cuda":
        raise ConfigError("tensorrt=true needs a CUDA device; use --device cuda or drop it")
    enabled = {_PRECISIONS[precision]}
    log.info("compiling the encoder with torch-tensorrt (%s, batch %s)", precision,
             tuple(example.shape))
    return torch_tensorrt.compile(module, ir="dynamo", inputs=[example],
                                  enabled_precisions=enabled)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    if threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
