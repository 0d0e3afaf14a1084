"""Per-kind registry of component classes, timm-style: look up by (kind, name), list, describe.

The registry remembers which plugin (and distribution) registered each class so that errors and
``pmx components`` can say where a component came from. A second registration of the same
(kind, name) by a different plugin is recorded as a conflict: looking that name up raises an
error naming both plugins instead of silently picking one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .components import KINDS, Component, check_component_class
from .config import config_fields
from .errors import DuplicateComponentError, UnknownComponentError


@dataclass(frozen=True)
class Registration:
    cls: type[Component]
    plugin: str
    distribution: str | None

    @property
    def kind(self) -> str:
        return self.cls.kind

    @property
    def name(self) -> str:
        return self.cls.name

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.cls.kind,
            "name": self.cls.name,
            "version": self.cls.version,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "summary": self.cls.summary(),
            "config": config_fields(self.cls.Config),
        }


class ComponentRegistry:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Registration] = {}
        self._conflicts: dict[tuple[str, str], list[Registration]] = {}

    def add(self, cls: type[Component], plugin: str, distribution: str | None = None) -> None:
        """Add a class; raises PluginError / DuplicateComponentError with a fix-it message."""
        check_component_class(cls)
        key = (cls.kind, cls.name)
        new = Registration(cls, plugin, distribution)
        existing = self._entries.get(key)
        if existing is not None:
            if existing.cls is cls:
                return
            self._conflicts.setdefault(key, [existing]).append(new)
            raise DuplicateComponentError(_duplicate_message(key, self._conflicts[key]))
        self._entries[key] = new

    def remove_plugin(self, plugin: str) -> None:
        self._entries = {k: r for k, r in self._entries.items() if r.plugin != plugin}
        for key, regs in list(self._conflicts.items()):
            kept = [r for r in regs if r.plugin != plugin]
            if len(kept) > 1:
                self._conflicts[key] = kept
            else:
                del self._conflicts[key]
                if kept and key not in self._entries:
                    self._entries[key] = kept[0]

    def get(self, kind: str, name: str) -> type[Component]:
        return self.lookup(kind, name).cls

    def lookup(self, kind: str, name: str) -> Registration:
        if kind not in KINDS:
            raise UnknownComponentError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        key = (kind, name)
        if key in self._conflicts:
            raise DuplicateComponentError(_duplicate_message(key, self._conflicts[key]))
        try:
            return self._entries[key]
        except KeyError:
            available = ", ".join(self.names(kind)) or "(none)"
            raise UnknownComponentError(
                f"no {kind} named {name!r} is registered; available {kind}s: {available}. "
                "Install the plugin that provides it (see `pmx plugins`)."
            ) from None

    def create(self, kind: str, name: str, config: Any = None, **overrides: Any) -> Component:
        """Instantiate a registered component with a validated config."""
        return self.get(kind, name)(config, **overrides)

    def names(self, kind: str) -> list[str]:
        return sorted(name for (k, name) in self._entries if k == kind)

    def registrations(self, kind: str | None = None) -> Iterator[Registration]:
        for (k, _), reg in sorted(self._entries.items()):
            if kind is None or k == kind:
                yield reg

    def by_plugin(self, plugin: str) -> list[Registration]:
        return [r for r in self.registrations() if r.plugin == plugin]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries


def _duplicate_message(key: tuple[str, str], regs: list[Registration]) -> str:
    kind, name = key
    sources = " and ".join(
        f"plugin '{r.plugin}' ({r.distribution or 'not installed'}, {r.cls.__module__}.{r.cls.__qualname__})"
        for r in regs
    )
    return (
        f"{kind} {name!r} is registered by more than one plugin: {sources}. "
        "Uninstall one of them or restrict plugins with PMX_LOAD_PLUGINS."
    )
