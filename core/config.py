"""Typed component configs, the overrides users type, and the errors they get.

Configs are pydantic models with ``extra="forbid"``: an unknown key or a value of the wrong type
is rejected with a short message that names the component, the dotted key (``model.heads``),
the value given and the rule it breaks, suggests the closest valid key, and says how to fix it
(``--set``, ``pmx components KIND NAME``); it never dumps the whole input. Overrides
come from presets (nested dicts), TOML files (``--config``) and ``--set section.key=value``
strings whose values are parsed as TOML literals (``1e-3``, ``true``, ``[1, 2]``, ``"x"``) and
fall back to plain strings.
"""

from __future__ import annotations

import copy
import difflib
import re
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


def _field_info(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo at a (possibly nested) location, or None."""
    info = None
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return info if isinstance(part, int) else None  # list item of the last field
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current = info.annotation
    return info


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    if not loc:
        return model
    info = _field_info(model, loc)
    current = None if info is None else info.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _path(loc: tuple[Any, ...]) -> str:
    """``("model", "widths", 0)`` -> ``model.widths[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rule(err: Mapping[str, Any]) -> str:
    message = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """A known field path close to the unknown key: a sibling first, then anywhere."""
    key = str(loc[-1])
    parent = _model_at(model, loc[:-1])
    siblings = list(parent.model_fields) if parent is not None else []
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
    if close:
        return _path((*loc[:-1], close[0]))
    every = [row["name"] for row in config_fields(model)]
    same_leaf = [p for p in every if p.rsplit(".", 1)[-1] == key]
    if same_leaf:
        return same_leaf[0]
    leaves = {p.rsplit(".", 1)[-1]: p for p in every}
    close = difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.75)
    return leaves[close[0]] if close else None


def _problem(model: type[BaseModel], err: Mapping[str, Any]) -> tuple[str, str | None]:
    """One error as ``path: what is wrong`` and the path a ``--set`` fix would use."""
    loc = tuple(err.get("loc", ()))
    path = _path(loc)
    if err.get("type") == "extra_forbidden":
        guess = _did_you_mean(model, loc)
        if guess:
            return f"unknown key '{path}'; did you mean '{guess}'?", guess
        parent = _model_at(model, loc[:-1]) or model
        names = list(parent.model_fields)
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        return f"unknown key '{path}'; valid keys here: {shown or '(none)'}", None
    section = _model_at(model, loc)
    value = err.get("input")
    if section is not None and isinstance(value, Mapping):
        # a model-level validator: name the fields its message mentions, not the whole input
        message = _rule(err)
        mentioned = [name for name in section.model_fields if re.search(rf"\b{re.escape(name)}\b", message)]
        shown = []
        for name in mentioned:
            current = value.get(name, section.model_fields[name].get_default(call_default_factory=True))
            shown.append(f"{_path((*loc, name))} = {_short(current, 40)}")
        where = path or "(top level)"
        details = f" ({', '.join(shown)})" if shown else ""
        return f"{where}: {message}{details}", _path((*loc, mentioned[0])) if mentioned else None
    field_path = _path(tuple(p for p in loc if not isinstance(p, int))) or None
    if err.get("type") == "missing":
        return f"{path}: {_rule(err)} (got {_short(value)} for {_path(loc[:-1]) or 'the config'})", field_path
    info = _field_info(model, loc)
    expects = ""
    if info is not None:
        annotation = info.annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        expects = " (expects a section of fields)" if is_section else f" (expects {_type_name(annotation)})"
        if is_section and field_path:
            field_path += ".FIELD"
    return f"{path or '(top level)'} = {_short(value)}: {_rule(err)}{expects}", field_path


_OWNER = re.compile(r"^(tiler|selector|encoder|objective|head|method) '([^']+)'")


def build_config(model: type[BaseModel], values: Mapping[str, Any] | None, owner: str) -> Any:
    """Validate ``values`` against ``model``; ``owner`` (e.g. "tiler 'grid'") goes in errors.

    The error names each offending field by its dotted path (``model.heads``), the value given
    and the rule it breaks, suggests the closest field for an unknown key, and says how to fix
    it (``--set path=value``; ``pmx components KIND NAME`` lists the fields when ``owner``
    starts with "KIND 'NAME'"). It never dumps the whole input.
    """
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        problems = [_problem(model, err) for err in exc.errors()]
    lines = [text for text, _ in problems]
    fix_path = next((path for _, path in problems if path), None)
    hint = f"Fix: --set {fix_path or 'PATH'}=VALUE (or the --config file)"
    match = _OWNER.match(owner)
    if match:
        hint += f"; `pmx components {match.group(1)} {match.group(2)}` lists every field with its type and default"
    body = f" {lines[0]}" if len(lines) == 1 else "".join(f"\n  - {line}" for line in lines)
    raise ConfigError(f"invalid config for {owner}:{body}\n{hint}.") from None
