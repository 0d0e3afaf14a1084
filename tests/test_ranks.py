"""pmx.ranks: the one rank-layout type of the embed stage and the trainer."""

from __future__ import annotations

import pytest

from pmx.errors import ConfigError
from pmx.ranks import DistEnv, env_from_torchrun


def test_plain_run_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    env = env_from_torchrun()
    assert env == DistEnv(0, 1, 0) and env.is_main and not env.is_distributed


def test_torchrun_variables_are_read(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    env = env_from_torchrun()
    assert (env.rank, env.world_size, env.local_rank) == (3, 4, 1)
    assert env.is_distributed and not env.is_main


def test_malformed_variables_are_a_config_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE/LOCAL_RANK.*'two'"):
        env_from_torchrun()


def test_embedding_and_training_share_the_type():
    from pmx.training import DistEnv as TrainingEnv
    from pmx.training.distributed import env_from_torchrun as training_env

    assert TrainingEnv is DistEnv and training_env is env_from_torchrun
