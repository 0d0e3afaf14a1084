"""Where this process sits in a torchrun job: one small type shared by the embed stage and
the trainer (torch-free, so either can import it without the other's dependencies)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Rank layout of the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_from_torchrun() -> DistEnv:
    """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (a plain ``python`` run is rank 0
    of 1); malformed values are a configuration error that names them."""
    try:
        return DistEnv(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                       int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as exc:
        raise ConfigError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None
