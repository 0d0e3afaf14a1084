"""Finding, loading and isolating plugins.

pmx loads (1) its own built-in plugin modules (``BUILTIN_PLUGINS``), then (2) every entry point
in the ``pmx`` group, filtered by the ``PMX_LOAD_PLUGINS`` allow-list, then asks every plugin's
``pmx_register_*`` hooks for components. Each plugin is imported and called on its own so one
broken plugin is reported (name, distribution, error) while the others still load.

Loading is cheap: plugin modules register their components by import path
(``register("pkg.module:Class", name="...")``) and the registry imports a class only when it is
used, so ``pmx --help`` / ``pmx plugins`` never import torch. :meth:`PluginHost.check` imports
them all (``pmx plugins --check``, ``pmx doctor``).
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .errors import PmxError
from .registry import ComponentRegistry

ENTRY_POINT_GROUP = "pmx"
ALLOW_LIST_ENV = "PMX_LOAD_PLUGINS"

#: Modules of pmx itself that register built-in components through the same hooks.
BUILTIN_PLUGINS: list[str] = [
    "pmx.tiling.builtin",
    "pmx.survival.plugin",
    "pmx.encoders.timm_encoders",
    "pmx.omics.plugin",
]

#: hook name -> component kind it registers
REGISTER_HOOKS: dict[str, str] = {
    "pmx_register_tilers": "tiler",
    "pmx_register_selectors": "selector",
    "pmx_register_encoders": "encoder",
    "pmx_register_objectives": "objective",
    "pmx_register_heads": "head",
    "pmx_register_methods": "method",
}


@dataclass
class PluginInfo:
    """What `pmx plugins` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    components: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "hooks": sorted(self.hooks),
            "components": [{"kind": k, "name": n} for k, n in self.components],
            "errors": list(self.errors),
        }


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def allow_list_from_env() -> set[str] | None:
    """None = load every installed plugin; an empty set = load none (``PMX_LOAD_PLUGINS=``)."""
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {_normalise(part) for part in raw.split(",") if part.strip()}


def _short_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class PluginHost:
    """A pluggy manager plus the component registry it fills."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("pmx")
        self.pm.add_hookspecs(hookspecs)
        self.registry = ComponentRegistry()
        self.plugins: dict[str, PluginInfo] = {}
        self.skipped: list[str] = []

    # -- loading -----------------------------------------------------------------------------
    def load_builtins(self, modules: Iterable[str] = BUILTIN_PLUGINS) -> None:
        from . import __version__

        for module_name in modules:
            info = PluginInfo(
                name=module_name, distribution="pmx", version=__version__,
                module=module_name, builtin=True,
            )
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                info.errors.append(f"import failed: {_short_error(exc)}")
                self.plugins[info.name] = info
                continue
            self.register(module, info)

    def load_entry_points(
        self,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        allow: set[str] | None | str = "env",
    ) -> None:
        """Load external plugins; ``allow="env"`` reads PMX_LOAD_PLUGINS."""
        allowed = allow_list_from_env() if allow == "env" else allow
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            if allowed is not None and not (
                _normalise(ep.name) in allowed
                or (dist_name is not None and _normalise(dist_name) in allowed)
            ):
                self.skipped.append(ep.name)
                continue
            info = PluginInfo(name=ep.name, distribution=dist_name, version=dist_version, module=ep.value)
            try:
                plugin = ep.load()
            except Exception as exc:
                info.errors.append(f"import of {ep.value!r} failed: {_short_error(exc)}")
                self.plugins[info.name] = info
                continue
            self.register(plugin, info)

    def register(self, plugin: Any, info: PluginInfo | str) -> PluginInfo:
        """Register a plugin object (module, class or instance) and collect its components."""
        if isinstance(info, str):
            info = PluginInfo(name=info, module=getattr(plugin, "__name__", None))
        if info.name in self.plugins and not self.plugins[info.name].errors:
            info.errors.append(f"a plugin named {info.name!r} is already loaded; this one is ignored")
            self.plugins[info.name + " (duplicate)"] = info
            return info
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # pluggy validates hook signatures here
            info.errors.append(f"registration failed: {_short_error(exc)}")
            self.plugins[info.name] = info
            return info
        info.hooks = [impl.name for impl in self._hookcallers(info.name)]
        self.plugins[info.name] = info
        self._collect(info)
        return info

    def unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.registry.remove_plugin(name)
        self.plugins.pop(name, None)

    def _hookcallers(self, plugin_name: str) -> list[Any]:
        plugin = self.pm.get_plugin(plugin_name)
        callers = self.pm.get_hookcallers(plugin) or []
        return list(callers)

    def _collect(self, info: PluginInfo) -> None:
        plugin = self.pm.get_plugin(info.name)
        for caller in self._hookcallers(info.name):
            if caller.name not in REGISTER_HOOKS:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                self._call_register_hook(info, caller.name, impl.function)

    def _call_register_hook(self, info: PluginInfo, hook: str, function: Callable[..., Any]) -> None:
        expected = REGISTER_HOOKS[hook]

        def register(component: type | str, name: str | None = None) -> None:
            """``register(Class)``, or ``register("pkg.module:Class", name="...")`` (lazy)."""
            try:
                if isinstance(component, str):
                    if name is None:
                        raise PmxError(
                            f"{hook} registered {component!r} without a name; registering by "
                            f"import path needs the name: register({component!r}, name=\"...\")"
                        )
                    self.registry.add_lazy(expected, name, component, plugin=info.name,
                                           distribution=info.distribution)
                    info.components.append((expected, name))
                    return
                if getattr(component, "kind", None) != expected:
                    raise PmxError(
                        f"{getattr(component, '__qualname__', component)!r} has kind "
                        f"{getattr(component, 'kind', None)!r} but was registered from {hook} "
                        f"(which registers {expected!r} components)"
                    )
                if name is not None and name != getattr(component, "name", None):
                    raise PmxError(
                        f"{hook} registered {component.__qualname__} as {name!r} but its class "
                        f"name attribute is {getattr(component, 'name', None)!r}; drop name= or make them agree"
                    )
                self.registry.add(component, plugin=info.name, distribution=info.distribution)
                info.components.append((component.kind, component.name))
            except PmxError as exc:
                info.errors.append(str(exc))

        try:
            function(register=register)
        except Exception as exc:
            info.errors.append(f"{hook} failed: {_short_error(exc)}")

    def check(self) -> dict[str, list[str]]:
        """Import every component registered by path and record failures on its plugin.

        Loading stays cheap because path registrations are not imported; ``pmx plugins
        --check`` and ``pmx doctor`` call this to find a broken one before a run needs it.
        """
        for reg in self.registry.registrations():
            error = reg.check()
            info = self.plugins.get(reg.plugin)
            if error and info is not None and error not in info.errors:
                info.errors.append(error)
        return self.errors

    # -- queries ---------------------------------------------------------------------------
    @property
    def errors(self) -> dict[str, list[str]]:
        return {name: info.errors for name, info in self.plugins.items() if info.errors}

    def register_commands(self, cli: Any) -> None:
        for impl in self.pm.hook.pmx_register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin)
            try:
                impl.function(cli=cli)
            except Exception as exc:
                if name in self.plugins:
                    self.plugins[name].errors.append(
                        f"pmx_register_commands failed: {_short_error(exc)}"
                    )


_HOST: PluginHost | None = None


def load_host(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    allow: set[str] | None | str = "env",
    builtins: Iterable[str] = BUILTIN_PLUGINS,
) -> PluginHost:
    """Build a fresh host: built-ins first, then external plugins."""
    host = PluginHost()
    host.load_builtins(builtins)
    host.load_entry_points(entry_points, allow)
    return host


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = load_host()
    return _HOST


def reset_host() -> None:
    """Forget the loaded plugins (tests; after changing PMX_LOAD_PLUGINS)."""
    global _HOST
    _HOST = None


def get_registry() -> ComponentRegistry:
    return get_host().registry
