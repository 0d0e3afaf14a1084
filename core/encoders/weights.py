"""Finding, hashing and loading an encoder's local weights file; nothing is ever downloaded.

Weights come from a file the user put on disk: a ``.safetensors`` file (preferred: no pickle)
or a torch / timm checkpoint (``.pth``, ``.pt``, ``.bin``) read with ``weights_only=True`` so a
checkpoint cannot run code. Lookup order for an encoder named ``NAME``:

1. the encoder's ``weights`` config key;
2. ``$PMX_WEIGHTS_<NAME>`` (upper case, ``-`` and ``.`` become ``_``, e.g.
   ``PMX_WEIGHTS_RESNET50_TRUNC``);
3. ``$PMX_WEIGHTS_DIR/NAME.{safetensors,pth,pt,bin}`` or ``$PMX_WEIGHTS_DIR/NAME/model.safetensors``
   (the layout ``huggingface-cli download ... --local-dir $PMX_WEIGHTS_DIR/NAME`` produces).

The file's SHA-256 is part of the encoder fingerprint: new weights at the same path are a new
encoder for the cache, the same weights at another path are not.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import ConfigError

if TYPE_CHECKING:  # torch is imported only when weights are actually loaded
    import torch

WEIGHTS_DIR_ENV = "PMX_WEIGHTS_DIR"
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")

#: Containers that checkpoints commonly wrap their state dict in, most specific first.
_WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "model", "teacher", "module", "net")
#: Prefixes that training frameworks add to every key (DDP, DINO, Lightning).
_KEY_PREFIXES: tuple[str, ...] = ("module.", "backbone.", "model.", "encoder.", "trunk.")

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def weights_env_var(name: str) -> str:
    """``resnet50-trunc`` -> ``PMX_WEIGHTS_RESNET50_TRUNC``."""
    return "PMX_WEIGHTS_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def candidate_paths(name: str) -> list[Path]:
    """Where ``$PMX_WEIGHTS_DIR`` may hold the weights of encoder ``name``."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root:
        return []
    base = Path(root).expanduser()
    paths = [base / f"{name}{suffix}" for suffix in WEIGHT_SUFFIXES]
    paths += [base / name / "model.safetensors", base / name / "pytorch_model.bin"]
    return paths


def resolve_weights(name: str, configured: str) -> tuple[Path | None, str]:
    """(path, where it came from) for encoder ``name``; (None, searched places) if not found.

    A path that is configured explicitly (config key or per-encoder variable) but does not
    exist is an error right away: silently falling back would embed with other weights.
    """
    env_name = weights_env_var(name)
    explicit = [("config key 'weights'", configured), (f"${env_name}", os.environ.get(env_name, ""))]
    for source, value in explicit:
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "does not exist"
                raise ConfigError(
                    f"weights file {path} for encoder '{name}' (from {source}) {what}. Fix: point "
                    f"it at a .safetensors or .pth file of the {name} weights."
                )
            return path.resolve(), source
    for path in candidate_paths(name):
        if path.is_file():
            return path.resolve(), f"${WEIGHTS_DIR_ENV}"
    searched = f"the 'weights' config key, ${env_name}"
    if os.environ.get(WEIGHTS_DIR_ENV):
        searched += f", and ${WEIGHTS_DIR_ENV} ({os.environ[WEIGHTS_DIR_ENV]}/{name}.safetensors, ...)"
    else:
        searched += f" and ${WEIGHTS_DIR_ENV} (not set)"
    return None, searched


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, cached per (path, size, mtime) within the process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    digest = _HASH_CACHE.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                hasher.update(block)
        digest = _HASH_CACHE[key] = hasher.hexdigest()
    return digest


def read_state_dict(path: Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a safetensors file or a weights-only torch checkpoint, unwrapped and unprefixed."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ConfigError(f"weights file {path} is not a readable safetensors file: {exc}. "
                              "Fix: re-copy it, or re-export it with safetensors.torch.save_file.") from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
            raise ConfigError(
                f"weights file {path} cannot be read as a weights-only torch checkpoint: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. pmx never "
                "unpickles arbitrary objects. Fix: save just the state dict "
                "(torch.save(model.state_dict(), path)) or convert it to .safetensors."
            ) from None
    state = _unwrap(state, path)
    return _strip_prefixes(state)


def _unwrap(state: Any, path: Path) -> dict[str, "torch.Tensor"]:
    import torch

    for _ in range(3):
        if not isinstance(state, Mapping):
            break
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return dict(state)
        inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    if isinstance(state, Mapping):
        tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ConfigError(
        f"weights file {path} holds no state dict of tensors (found {type(state).__name__}). "
        "Fix: save model.state_dict() (or a dict with a 'state_dict' / 'model' entry)."
    )


def _strip_prefixes(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    changed = True
    while changed and state:
        changed = False
        for prefix in _KEY_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
                changed = True
    return state


def load_into(module: "torch.nn.Module", state: Mapping[str, "torch.Tensor"], *, path: Path,
              encoder: str, ignore_prefixes: Iterable[str] = ()) -> None:
    """Copy ``state`` into ``module`` exactly: every parameter and buffer must be in the file
    with the right shape; keys under ``ignore_prefixes`` (e.g. a classifier) may be extra."""
    ignore = tuple(ignore_prefixes)
    expected = module.state_dict()
    given = {k: v for k, v in state.items() if not (ignore and k.startswith(ignore))}
    missing = sorted(k for k in expected if k not in given
                     and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in given if k not in expected)
    shapes = sorted(
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing key(s)", missing), ("unexpected key(s)", unexpected),
                             ("shape mismatch(es)", shapes)):
            if items:
                shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        raise ConfigError(
            f"weights file {path} does not fit encoder '{encoder}': {'; '.join(parts)}. It is "
            "probably the checkpoint of another architecture or encoder. Fix: give the weights "
            f"of {encoder} (see docs/embedding.md, 'Weights')."
        )
    filled = {k: given[k] for k in expected if k in given}
    module.load_state_dict(filled, strict=False)
