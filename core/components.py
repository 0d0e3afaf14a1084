"""The component contract shared by every tiler, selector, encoder, objective, head and method.

A component class has a stable ``name``, a ``version`` (bump it whenever outputs change for the
same config) and a typed ``Config``. Its fingerprint hashes (kind, name, version, config) so
later stages can use it as a cache key: same inputs + same fingerprint = reuse the stored result.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar, Mapping

from .config import ComponentConfig, build_config
from .errors import PluginError

KINDS: tuple[str, ...] = ("tiler", "selector", "encoder", "objective", "head", "method")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def fingerprint_of(payload: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-able mapping (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Component:
    """Base class of registered components.

    Subclass it (first, before ``torch.nn.Module`` when a component is also a module), set
    ``kind``, ``name``, ``version`` and ``Config``, and register the class from a plugin hook.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig

    def __init__(self, config: ComponentConfig | Mapping[str, Any] | None = None, **overrides: Any):
        self.config = self.make_config(config, **overrides)
        super().__init__()

    @classmethod
    def make_config(
        cls, config: ComponentConfig | Mapping[str, Any] | None = None, **overrides: Any
    ) -> Any:
        """Validate a config given as a model, a mapping, keyword overrides, or nothing."""
        if isinstance(config, cls.Config) and not overrides:
            return config
        values = config.model_dump() if isinstance(config, ComponentConfig) else dict(config or {})
        values.update(overrides)
        return build_config(cls.Config, values, owner=f"{cls.kind} '{cls.name}'")

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring: the one-line description shown by the CLI."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def fingerprint_for(cls, config: ComponentConfig) -> str:
        return fingerprint_of(
            {
                "kind": cls.kind,
                "name": cls.name,
                "version": cls.version,
                "config": config.model_dump(mode="json"),
            }
        )

    @property
    def fingerprint(self) -> str:
        """Cache key of this component's outputs: hash of kind, name, version and config."""
        return self.fingerprint_for(self.config)


def check_component_class(cls: Any) -> None:
    """Reject classes that break the contract, with a message that says what to fix."""
    label = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise PluginError(f"{label} is not a subclass of pmx.Component")
    if cls.kind not in KINDS:
        raise PluginError(f"{label}.kind is {cls.kind!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
        raise PluginError(
            f"{label}.name {cls.name!r} must be lower-case letters, digits, '.', '_' or '-'"
        )
    if not isinstance(cls.version, str) or not cls.version:
        raise PluginError(f"{label}.version must be a non-empty string")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, ComponentConfig)):
        raise PluginError(f"{label}.Config must subclass pmx.ComponentConfig")
    _check_fields_documented(cls.Config, label)
    try:
        cls.Config()
    except Exception as exc:  # a config without usable defaults cannot be resolved by users
        raise PluginError(f"{label}.Config() fails with its defaults: {exc}") from None


def _check_fields_documented(model: type[ComponentConfig], label: str, prefix: str = "") -> None:
    for field_name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, ComponentConfig):
            _check_fields_documented(annotation, label, f"{prefix}{field_name}.")
            continue
        if not info.description:
            raise PluginError(
                f"{label}.Config field '{prefix}{field_name}' has no description; "
                "use Field(default, description='...')"
            )
