"""torchrun command lines, worker detection and rank-sharded sampling."""

from __future__ import annotations

import re

import pytest
import torch

from pmx.errors import ConfigError
from pmx.training import ShardedSampler, relaunch_under_torchrun, torchrun_command
from pmx.training.launch import inside_torchrun


def test_single_node_command_is_standalone() -> None:
    cmd = torchrun_command(4, ["-m", "pmx.cli"], ["run", "plugin:x", "--gpus", "4"], environ={}, python="py")
    assert cmd == ["py", "-m", "pmx.torchrun", "--nproc-per-node=4", "--standalone",
                   "-m", "pmx.cli", "run", "plugin:x", "--gpus", "4"]


def test_multi_node_command_uses_rendezvous() -> None:
    env = {"PMX_NNODES": "2", "PMX_RDZV_ENDPOINT": "node0:29400", "PMX_NODE_RANK": "1"}
    cmd = torchrun_command(8, ["/bin/pmx"], ["run"], environ=env, python="py")
    assert cmd[3:9] == ["--nproc-per-node=8", "--nnodes=2", "--rdzv-backend=c10d",
                        "--rdzv-endpoint=node0:29400", "--rdzv-id=pmx", "--node-rank=1"]
    with pytest.raises(ConfigError, match="PMX_RDZV_ENDPOINT"):
        torchrun_command(8, ["/bin/pmx"], environ={"PMX_NNODES": "2"})


def test_workers_do_not_launch_again(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inside_torchrun({"LOCAL_RANK": "0"}) and not inside_torchrun({})
    monkeypatch.setenv("LOCAL_RANK", "1")
    relaunch_under_torchrun(8, "cuda", argv=["run"])  # returns: already a worker
    monkeypatch.delenv("LOCAL_RANK")
    relaunch_under_torchrun(1, "cuda", argv=["run"])  # one process needs no launcher


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="needs a machine with fewer than 2 GPUs")
def test_asking_for_more_gpus_than_visible_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="--device cpu"):
        relaunch_under_torchrun(2, "auto", argv=["run", "plugin:x"])


@pytest.mark.parametrize("length", [10, 11, 13])
def test_sharded_sampler_gives_equal_counts_and_global_batches(length: int) -> None:
    world, per_rank_batch = 3, 2
    shards = [ShardedSampler(length, rank=r, world_size=world, seed=4) for r in range(world)]
    for shard in shards:
        shard.set_epoch(2)
    lists = [list(s) for s in shards]
    assert len({len(x) for x in lists}) == 1 and all(len(x) == len(s) for x, s in zip(lists, shards))
    single = ShardedSampler(length, seed=4)
    single.set_epoch(2)
    order = list(single)
    assert sorted(order) == list(range(length))
    # rank r, batch k holds exactly positions of the single process's global batch k
    for k in range(len(lists[0]) // per_rank_batch):
        union = sorted(i for x in lists for i in x[k * per_rank_batch:(k + 1) * per_rank_batch])
        padded = (order * 2)[k * world * per_rank_batch:(k + 1) * world * per_rank_batch]
        assert union == sorted(padded)
    # evaluation sharding: each sample exactly once
    eval_lists = [list(ShardedSampler(length, rank=r, world_size=world, shuffle=False, pad=False)) for r in range(world)]
    assert sorted(i for x in eval_lists for i in x) == list(range(length))


def test_sampler_order_depends_on_epoch_and_can_start_midway() -> None:
    sampler = ShardedSampler(20, seed=1)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    sampler.set_epoch(0)
    assert list(sampler) == first
    sampler.set_start(7)
    assert list(sampler) == first[7:] and len(sampler) == 13


def test_exit_status_keeps_the_workers_code() -> None:
    from pmx.torchrun import exit_status

    assert exit_status([2, 2]) == 2  # a pmx user error stays exit code 2
    assert exit_status([0, 1]) == 1
    assert exit_status([-9]) == 137  # killed by SIGKILL, as a shell reports it


def test_a_user_error_under_gpus_n_fails_like_without(tmp_path) -> None:
    """`pmx run --gpus 2` with a bad --cohort: the workers' message, one launcher line, exit 2
    (not torchrun's traceback and exit 1)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pmx.cli", "run", "plugin:contramae", "--cohort",
               str(tmp_path / "missing"), "--preset", "tiny", "--gpus", "2", "--device", "cpu",
               "--store", str(tmp_path / "store"), "--out", str(tmp_path / "runs")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "no manifest.toml there" in proc.stderr
    # both ranks fail, or one is stopped by torchrun once the other failed: either way one line
    assert re.search(r"pmx: [12] worker process\(es\) failed \(rank [01]: exit code 2[;)]",
                     proc.stderr), proc.stderr[-1000:]
    assert "ChildFailedError" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "store").exists()
