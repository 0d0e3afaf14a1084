"""``pmx run ... --gpus N``: re-run the same command under torchrun, one process per GPU.

torchrun (``python -m pmx.torchrun``: torchrun with a short failure report) starts the workers and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``; each worker re-enters the CLI,
sees it is already a torchrun worker, and runs the method, whose :class:`Trainer` joins the
process group (NCCL on GPU, gloo on CPU). Multi-node runs use the same launcher: set
``PMX_NNODES`` and ``PMX_RDZV_ENDPOINT`` (host:port of node 0) on every node (optionally
``PMX_RDZV_ID``, ``PMX_NODE_RANK``), keep the feature store on shared or object storage, and
start the same ``pmx run ... --gpus N`` everywhere. Or call torchrun yourself:
``torchrun --nnodes 2 --nproc-per-node 8 ... -m pmx.cli run plugin:NAME``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Mapping, Sequence

from pmx.errors import ConfigError

WORKER_MARKERS = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK")


def inside_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """True in a process that torchrun started (it must not launch again)."""
    env = os.environ if environ is None else environ
    return any(marker in env for marker in WORKER_MARKERS)


def torchrun_command(nproc: int, entry: Sequence[str], args: Sequence[str] = (), *,
                     environ: Mapping[str, str] | None = None,
                     python: str | None = None) -> list[str]:
    """The torchrun command line for ``entry`` (``["-m", module]`` or ``[script]``) + ``args``.

    Single node: ``--standalone`` (torchrun picks a free local port). Multi-node: from
    ``PMX_NNODES``, ``PMX_RDZV_ENDPOINT``, ``PMX_RDZV_ID`` and ``PMX_NODE_RANK``.
    """
    if nproc < 1:
        raise ConfigError(f"--gpus must be at least 1 (got {nproc})")
    env = os.environ if environ is None else environ
    command = [python or sys.executable, "-m", "pmx.torchrun", f"--nproc-per-node={nproc}"]
    nnodes = int(env.get("PMX_NNODES", "1"))
    if nnodes > 1:
        endpoint = env.get("PMX_RDZV_ENDPOINT")
        if not endpoint:
            raise ConfigError("PMX_NNODES > 1 needs PMX_RDZV_ENDPOINT=host:port of the first node")
        command += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
                    f"--rdzv-id={env.get('PMX_RDZV_ID', 'pmx')}"]
        if "PMX_NODE_RANK" in env:
            command.append(f"--node-rank={int(env['PMX_NODE_RANK'])}")
    else:
        command.append("--standalone")
    return command + list(entry) + list(args)


def current_entry() -> list[str]:
    """How this process was started: ``["-m", "pmx.cli"]`` or ``["/path/to/pmx"]``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return ["-m", spec.name.removesuffix(".__main__")]
    return [sys.argv[0]]


def launch(nproc: int, entry: Sequence[str], args: Sequence[str], *,
           env: Mapping[str, str] | None = None) -> int:
    """Run torchrun in the foreground; returns its exit status."""
    command = torchrun_command(nproc, entry, args, environ=env)
    return subprocess.run(command, env=None if env is None else dict(env), check=False).returncode


def relaunch_under_torchrun(gpus: int, device: str = "auto", argv: Sequence[str] | None = None) -> None:
    """For ``pmx run --gpus N``: return at once in a worker or when N <= 1, else run torchrun
    with this process's own command line and exit with its status.
    """
    if gpus <= 1 or inside_torchrun():
        return
    if device in ("auto", "cuda") or device.startswith("cuda"):
        import torch

        available = torch.cuda.device_count()
        if available < gpus:
            raise ConfigError(
                f"--gpus {gpus} but {available} CUDA device(s) are visible; use fewer, or "
                f"--device cpu to run {gpus} CPU processes with gloo"
            )
    args = list(sys.argv[1:] if argv is None else argv)
    if "run" not in args:
        raise ConfigError("--gpus N re-runs the current `pmx run` command line under torchrun; "
                          "start pmx from a shell (or call torchrun yourself)")
    raise SystemExit(launch(gpus, current_entry(), args))
