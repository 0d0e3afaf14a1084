"""torch.distributed for the trainer: init from torchrun's environment, gathers, gradient sync.

One process per GPU (NCCL) or per CPU worker (gloo), started by torchrun (see
:mod:`pmx.training.launch`). Nothing here is a scheduler: torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` and we read them.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from ..ranks import DistEnv, env_from_torchrun


def current_env() -> DistEnv:
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistEnv()


def init_distributed(device: str | torch.device = "auto", timeout_s: float = 1800) -> tuple[DistEnv, torch.device]:
    """Join the process group torchrun prepared (idempotent) and pick this rank's device.

    NCCL with ``cuda:LOCAL_RANK`` when the device is CUDA, gloo otherwise. Outside torchrun
    (``WORLD_SIZE`` unset or 1) nothing is initialised.
    """
    env = env_from_torchrun()
    requested = str(device)
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        index = env.local_rank if env.is_distributed else (torch.device(requested).index or 0)
        torch.cuda.set_device(index)
        chosen = torch.device("cuda", index)
    else:
        chosen = torch.device(requested)
    if env.is_distributed and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s),
                                **({"device_id": chosen} if backend == "nccl" else {}))
    return (current_env() if env.is_distributed else env), chosen


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place, also returned); a no-op in a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradients over ranks and keeps this rank's.

    Every rank computes the same global loss L on the gathered tensor; the summed gradient of
    rank r's slice is ``world * dL/dx_r``, and the trainer's gradient averaging over ranks
    (DDP semantics) then yields exactly dL/dtheta.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        ctx.rank = dist.get_rank()
        ctx.size = tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.size
        return grad[start : start + ctx.size]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 (equal sizes), differentiably.

    For contrastive and Cox losses over the global batch. Identity in a single process.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    if tensor.requires_grad:
        return _GatherWithGrad.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather_variable(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 when ranks hold different counts (no grad)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:count] for part, count in zip(parts, counts)], dim=0)


def average_gradients(parameters: list[torch.nn.Parameter], bucket_bytes: int = 25 * 2**20) -> None:
    """Average ``.grad`` over ranks in flat buckets (used where DDP's hooks cannot be).

    Group objectives call heads on cached features outside any ``forward``; their parameters
    never pass DDP's reducer, so the trainer reduces all gradients itself after the group.
    A parameter without a gradient on this rank contributes zeros; one without a gradient on
    every rank keeps ``grad = None`` (so the optimizer skips it, as in a single process).
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    world = dist.get_world_size()
    device = parameters[0].device if parameters else torch.device("cpu")
    has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.uint8, device=device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    used = [p for p, flag in zip(parameters, has_grad.tolist()) if flag]
    for param in used:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for param in used:
        by_dtype.setdefault(param.grad.dtype, []).append(param)
    for group in by_dtype.values():
        bucket: list[torch.nn.Parameter] = []
        used = 0
        for param in group:
            bucket.append(param)
            used += param.grad.numel() * param.grad.element_size()
            if used >= bucket_bytes:
                _reduce_bucket(bucket, world)
                bucket, used = [], 0
        if bucket:
            _reduce_bucket(bucket, world)


def _reduce_bucket(bucket: list[torch.nn.Parameter], world: int) -> None:
    flat = torch.cat([p.grad.reshape(-1) for p in bucket])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for param in bucket:
        count = param.grad.numel()
        param.grad.copy_(flat[offset : offset + count].view_as(param.grad))
        offset += count


def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank start from rank ``src``'s parameters and buffers."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=src)


def destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
