"""Per-kind registry of component classes, timm-style: look up by (kind, name), list, describe.

A plugin registers either a class or, to keep start-up cheap, an import path
(``"pkg.module:Class"``) with the name it will answer to. Path registrations are imported on
first use (``get``, ``create``, ``describe``), so listing plugins or components' names never
imports torch, scikit-learn or timm. The (kind, name) key is known at registration either way,
so conflicts are detected without importing anything.

The registry remembers which plugin (and distribution) registered each entry so that errors and
``pmx components`` can say where a component came from. A second registration of the same
(kind, name) by a different plugin is recorded as a conflict: looking that name up raises an
error naming both plugins instead of silently picking one.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator

from .components import KINDS, NAME_PATTERN, Component, check_component_class
from .config import config_fields
from .errors import DuplicateComponentError, PluginError, UnknownComponentError


def import_path(cls: type) -> str:
    """``"module:QualName"`` of a class (the form lazy registrations use)."""
    return f"{cls.__module__}:{cls.__qualname__}"


class Registration:
    """One registered component: its key, where it came from, and the class (loaded on demand)."""

    __slots__ = ("kind", "name", "plugin", "distribution", "target", "_cls", "_error")

    def __init__(self, kind: str, name: str, plugin: str, distribution: str | None,
                 target: str, cls: type[Component] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.plugin = plugin
        self.distribution = distribution
        self.target = target
        self._cls = cls
        self._error: str | None = None

    @classmethod
    def of_class(cls, component: type[Component], plugin: str,
                 distribution: str | None = None) -> Registration:
        """An eager registration: the class is checked now."""
        check_component_class(component)
        return cls(component.kind, component.name, plugin, distribution, import_path(component), component)

    @classmethod
    def lazy(cls, kind: str, name: str, target: str, plugin: str,
             distribution: str | None = None) -> Registration:
        """A registration by import path: only the key and the path's shape are checked now."""
        if kind not in KINDS:
            raise PluginError(f"cannot register {target!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(
                f"cannot register {target!r} as {kind} {name!r}: names are lower-case letters, "
                "digits, '.', '_' or '-'"
            )
        module, sep, qualname = str(target).partition(":")
        if not sep or not module or not qualname:
            raise PluginError(
                f"cannot register {kind} {name!r} from {target!r}: expected an import path "
                "'package.module:ClassName'"
            )
        return cls(kind, name, plugin, distribution, target)

    @property
    def loaded(self) -> bool:
        return self._cls is not None

    @property
    def cls(self) -> type[Component]:
        """The component class; imports it the first time for a path registration."""
        if self._cls is None:
            if self._error is None:
                try:
                    self._cls = self._resolve()
                except PluginError as exc:
                    self._error = str(exc)
            if self._error is not None:
                raise PluginError(self._error)
        assert self._cls is not None
        return self._cls

    def _resolve(self) -> type[Component]:
        where = (f"plugin '{self.plugin}' ({self.distribution or 'not installed'}) registered "
                 f"{self.kind} {self.name!r} as {self.target!r}")
        module_name, _, qualname = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(
                f"{where}, but importing it failed: {type(exc).__name__}: {exc}. "
                "Fix or reinstall the plugin, or exclude it with PMX_LOAD_PLUGINS"
            ) from None
        try:
            check_component_class(obj)
        except PluginError as exc:
            raise PluginError(f"{where}, but {exc}") from None
        if (obj.kind, obj.name) != (self.kind, self.name):
            raise PluginError(
                f"{where}, but that class says it is {obj.kind} {obj.name!r}; make the "
                "registration and the class's kind / name agree"
            )
        return obj

    def check(self) -> str | None:
        """Import the class if needed; the error message, or None when it is usable."""
        try:
            self.cls
        except PluginError as exc:
            return str(exc)
        return None

    def same_as(self, other: Registration) -> bool:
        """True when both register the very same class (re-registration is a no-op)."""
        if self._cls is not None and other._cls is not None:
            return self._cls is other._cls
        return self.target == other.target

    def describe(self) -> dict[str, Any]:
        """What ``pmx components`` prints; imports the class."""
        cls = self.cls
        return {
            "kind": self.kind,
            "name": self.name,
            "version": cls.version,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "summary": cls.summary(),
            "config": config_fields(cls.Config),
        }

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "lazy"
        return f"Registration({self.kind}:{self.name} -> {self.target}, plugin={self.plugin!r}, {state})"


class ComponentRegistry:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Registration] = {}
        self._conflicts: dict[tuple[str, str], list[Registration]] = {}

    def add(self, cls: type[Component], plugin: str, distribution: str | None = None) -> None:
        """Add a class; raises PluginError / DuplicateComponentError with a fix-it message."""
        self._add(Registration.of_class(cls, plugin, distribution))

    def add_lazy(self, kind: str, name: str, target: str, plugin: str,
                 distribution: str | None = None) -> None:
        """Add ``"module:Class"`` under (kind, name) without importing it."""
        self._add(Registration.lazy(kind, name, target, plugin, distribution))

    def _add(self, new: Registration) -> None:
        key = (new.kind, new.name)
        existing = self._entries.get(key)
        if existing is not None:
            if existing.same_as(new):
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
        f"plugin '{r.plugin}' ({r.distribution or 'not installed'}, {r.target.replace(':', '.')})"
        for r in regs
    )
    return (
        f"{kind} {name!r} is registered by more than one plugin: {sources}. "
        "Uninstall one of them or restrict plugins with PMX_LOAD_PLUGINS."
    )
