"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A resumable checkpoint is a folder ``checkpoints/step-NNNNNNNNN/`` holding

* ``model.safetensors`` - the task's state dict (rank 0),
* ``optimizer.safetensors`` + the optimizer's non-tensor state inside ``state.json`` (rank 0),
* ``state.json`` - trainer counters, schedule, early-stopping state, running epoch sums,
* ``rng-rank{R}.safetensors`` / ``rng-rank{R}.json`` - every rank's generator states.

``checkpoints/latest.json`` names the newest complete folder and is replaced atomically only
after every rank has written its files, so a run killed while saving resumes from the
previous checkpoint. Loading uses safetensors or ``torch.load(weights_only=True)``: no
arbitrary object is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pmx.errors import ConfigError, DataError

from .distributed import DistEnv, barrier
from .seeding import capture_rng_state, restore_rng_state

log = logging.getLogger("pmx.training")

LATEST = "latest.json"
WEIGHTS = "model.safetensors"


# ---- small atomic writers -----------------------------------------------------------------
def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save_tensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    _atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's JSON")


# ---- weights ------------------------------------------------------------------------------
def save_weights(module: nn.Module | Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write a state dict (or a module's) as safetensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = module.state_dict() if isinstance(module, nn.Module) else dict(module)
    _atomic_save_tensors(state, path)
    return path


def read_weights(source: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: ``.safetensors``, or a ``.pt``/``.pth``/``.bin`` state dict.

    A directory resolves to its ``model.safetensors``, a run directory to its final, best or
    latest weights. Torch files load with ``weights_only=True``; a nested ``state_dict`` or
    ``model`` entry (common in published checkpoints) is unwrapped.
    """
    path = resolve_weights_path(source)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or pickled-object file is a user error
        raise DataError(
            f"cannot read weights from {path}: {exc}. pmx loads only tensors "
            "(safetensors or torch files readable with weights_only=True)."
        ) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise DataError(f"{path} does not hold a flat dict of tensors (a state dict)")
    return dict(loaded)


def resolve_weights_path(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        candidates = [path / WEIGHTS, path / "best" / WEIGHTS]
        latest = find_latest(path / "checkpoints")
        if latest is not None:
            candidates.append(latest / WEIGHTS)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise DataError(
            f"{path} holds no weights ({WEIGHTS}, best/{WEIGHTS} or a checkpoint); "
            "point to the pretraining run directory or to a .safetensors file"
        )
    raise DataError(f"pretrained weights {path} do not exist")


@dataclass
class LoadReport:
    """Which keys a pretrained-weight load filled, left alone, or did not use."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": len(self.loaded), "missing": self.missing,
                "unused": self.unused}


def load_pretrained(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], *,
                    include: Iterable[str] | None = None,
                    rename: Mapping[str, str] | None = None,
                    required: Iterable[str] | None = None) -> LoadReport:
    """Copy pretrained tensors into ``model`` (e.g. a pretraining backbone into fine-tuning).

    ``include``: source-key prefixes to take (default all). ``rename``: source prefix ->
    model prefix (``{"encoder.": "backbone."}``). ``required``: model-key prefixes that must
    be fully loaded. Nothing matching, a shape mismatch or an incomplete required part raise
    :class:`ConfigError`: silently training from scratch is the bug this guards against.
    """
    label = "in-memory state dict" if isinstance(source, Mapping) else str(source)
    tensors = dict(source) if isinstance(source, Mapping) else read_weights(source)
    prefixes = tuple(include) if include else None
    renames = dict(rename or {})
    target = model.state_dict()
    matched: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    mismatched: list[str] = []
    for key, value in tensors.items():
        if prefixes is not None and not key.startswith(prefixes):
            unused.append(key)
            continue
        new_key = key
        for old, new in renames.items():
            if key.startswith(old):
                new_key = new + key[len(old):]
                break
        if new_key not in target:
            unused.append(key)
            continue
        if tuple(target[new_key].shape) != tuple(value.shape):
            mismatched.append(f"{new_key}: checkpoint {tuple(value.shape)} vs model {tuple(target[new_key].shape)}")
            continue
        matched[new_key] = value
    if mismatched:
        raise ConfigError(f"pretrained weights {label} do not fit the model: " + "; ".join(mismatched[:10]))
    if not matched:
        some_source = ", ".join(list(tensors)[:3])
        some_model = ", ".join(list(target)[:3])
        raise ConfigError(
            f"no tensor of {label} matches the model (checkpoint keys look like {some_source}; "
            f"model keys like {some_model}); pass rename={{'old.': 'new.'}} or include=[...]"
        )
    missing = [k for k in target if k not in matched]
    if required:
        need = tuple(required)
        absent = [k for k in missing if k.startswith(need)]
        if absent:
            raise ConfigError(
                f"pretrained weights {label} lack {len(absent)} required tensors, e.g. {absent[:5]}"
            )
    with torch.no_grad():
        for key, value in matched.items():
            target[key].copy_(value.to(dtype=target[key].dtype))
    log.info("loaded %d pretrained tensors from %s (%d model tensors left as initialised)",
             len(matched), label, len(missing))
    return LoadReport(source=label, loaded=sorted(matched), missing=missing, unused=unused)


# ---- optimizer state ----------------------------------------------------------------------
def optimizer_state_split(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict as (tensors for safetensors, JSON-able rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                plain_state.setdefault(str(index), {})[name] = value
    groups = []
    for g, group in enumerate(state["param_groups"]):
        clean = {}
        for name, value in group.items():
            if isinstance(value, torch.Tensor):
                tensors[f"group.{g}.{name}"] = value
            else:
                clean[name] = list(value) if isinstance(value, tuple) else value
        groups.append(clean)
    return tensors, {"state": plain_state, "param_groups": groups, "tensor_keys": sorted(tensors)}


def optimizer_state_join(tensors: Mapping[str, torch.Tensor], plain: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    groups = [dict(g) for g in plain["param_groups"]]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    for key, value in tensors.items():
        kind, index, name = key.split(".", 2)
        if kind == "state":
            state.setdefault(int(index), {})[name] = value
        else:
            groups[int(index)][name] = value
    for index, values in plain["state"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": groups}


# ---- resumable checkpoints ----------------------------------------------------------------
def find_latest(root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``root`` (or None)."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    name = json.loads(pointer.read_text())["checkpoint"]
    folder = Path(root) / name
    return folder if (folder / "state.json").is_file() else None


def save_checkpoint(root: str | Path, *, env: DistEnv, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any,
                    trainer_state: Mapping[str, Any], keep: int = 1) -> Path:
    """Write one resumable checkpoint from every rank; returns its folder."""
    root = Path(root)
    folder = root / f"step-{int(trainer_state['global_step']):09d}"
    if env.is_main:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    barrier()
    rng_tensors, rng_values = capture_rng_state()
    _atomic_save_tensors(rng_tensors, folder / f"rng-rank{env.rank}.safetensors")
    write_json(folder / f"rng-rank{env.rank}.json", rng_values)
    if env.is_main:
        _atomic_save_tensors(model.state_dict(), folder / WEIGHTS)
        opt_tensors, opt_plain = optimizer_state_split(optimizer)
        _atomic_save_tensors(opt_tensors, folder / "optimizer.safetensors")
        write_json(folder / "state.json", {
            "trainer": dict(trainer_state),
            "scheduler": scheduler.state_dict(),
            "optimizer": opt_plain,
            "world_size": env.world_size,
        })
    barrier()
    if env.is_main:
        write_json(root / LATEST, {"checkpoint": folder.name})
        old = sorted(p for p in root.glob("step-*") if p.is_dir() and p != folder)
        for stale in old[: max(0, len(old) - (keep - 1))]:
            shutil.rmtree(stale, ignore_errors=True)
    barrier()
    return folder


def load_checkpoint(folder: str | Path, *, env: DistEnv, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple[dict[str, Any], bool]:
    """Restore model, optimizer, schedule and this rank's RNG.

    Returns the trainer state and whether this rank's RNG streams were restored (not when the
    checkpoint was written by a different number of processes).
    """
    folder = Path(folder)
    meta = json.loads((folder / "state.json").read_text())
    model.load_state_dict(load_file(str(folder / WEIGHTS)), strict=True)
    # on CPU: load_state_dict moves moments to each parameter's device and keeps "step" on CPU
    opt_tensors = load_file(str(folder / "optimizer.safetensors"))
    optimizer.load_state_dict(optimizer_state_join(opt_tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    rng_file = folder / f"rng-rank{env.rank}.safetensors"
    if rng_file.is_file() and meta.get("world_size") == env.world_size:
        restore_rng_state(load_file(str(rng_file)),
                          json.loads((folder / f"rng-rank{env.rank}.json").read_text()))
        return dict(meta["trainer"]), True
    log.warning("checkpoint %s was written by %s processes, this run has %d: random streams "
                "restart from the seed", folder, meta.get("world_size"), env.world_size)
    return dict(meta["trainer"]), False
