"""Typed component configs, the overrides users type, and the errors they get.

Configs are pydantic models with ``extra="forbid"``: an unknown key or a value of the wrong type
is rejected with a message that names the key, what it expects, and the valid keys. Overrides
come from presets (nested dicts), TOML files (``--config``) and ``--set section.key=value``
strings whose values are parsed as TOML literals (``1e-3``, ``true``, ``[1, 2]``, ``"x"``) and
fall back to plain strings.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = [
    "ComponentConfig",
    "Field",
    "build_config",
    "deep_merge",
    "parse_set_option",
    "load_config_file",
    "config_fields",
]


class ComponentConfig(BaseModel):
    """Base class of every component's (and method section's) config.

    Give each field a default and a one-line ``description`` (``Field(256, description=...)``);
    ``pmx components`` prints them and registration rejects fields without one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dict merge: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_literal(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set_option(option: str) -> dict[str, Any]:
    """Turn ``"train.lr=1e-3"`` into ``{"train": {"lr": 0.001}}``."""
    key, sep, value = option.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"--set {option!r}: expected KEY=VALUE with a dotted key, e.g. --set finetune.lr=1e-4"
        )
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = _parse_literal(value.strip())
    return nested


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file, with errors that name the file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def config_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Name, type, default and doc of each field (nested sections flattened with dots)."""
    rows: list[dict[str, Any]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in config_fields(annotation):
                rows.append({**sub, "name": f"{name}.{sub['name']}"})
            continue
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        rows.append(
            {
                "name": name,
                "type": _type_name(annotation),
                "default": _jsonable(default),
                "doc": info.description or "",
            }
        )
    return rows


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current = info.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def build_config(model: type[BaseModel], values: Mapping[str, Any] | None, owner: str) -> Any:
    """Validate ``values`` against ``model``; ``owner`` (e.g. "tiler 'grid'") goes in errors."""
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            key = ".".join(str(p) for p in loc)
            if err.get("type") == "extra_forbidden":
                parent = _model_at(model, loc[:-1]) or model
                valid = ", ".join(parent.model_fields) or "(none)"
                problems.append(f"unknown key '{key}'; valid keys here: {valid}")
            else:
                got = err.get("input")
                problems.append(f"key '{key}': {err.get('msg')} (got {got!r})")
        raise ConfigError(f"invalid config for {owner}: " + "; ".join(problems)) from None
