"""Plugin discovery, isolation of broken plugins, the allow-list and duplicate names."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import textwrap
import types

import pytest

import pmx
from pmx.plugins import PluginHost, load_host


def _tiler(name: str, plugin_tag: str = "") -> type[pmx.Component]:
    class _Tiler(pmx.Component):
        kind = "tiler"

        class Config(pmx.ComponentConfig):
            size: int = pmx.Field(256, description="tile size")

    _Tiler.name = name
    _Tiler.__qualname__ = f"Tiler_{name}_{plugin_tag}"
    return _Tiler


def _plugin_module(mod_name: str, *classes: type) -> types.ModuleType:
    module = types.ModuleType(mod_name)

    @pmx.hookimpl
    def pmx_register_tilers(register):
        for cls in classes:
            register(cls)

    module.pmx_register_tilers = pmx_register_tilers
    return module


@pytest.fixture
def module_on_path(tmp_path, monkeypatch):
    """Write importable plugin modules to a temp dir, as an installed plugin would be."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


GOOD_PLUGIN = """
    import pmx

    class GoodTiler(pmx.Component):
        '''A tiler from an entry point.'''
        kind = "tiler"
        name = "good-tiler"
        class Config(pmx.ComponentConfig):
            size: int = pmx.Field(128, description="tile size")

    @pmx.hookimpl
    def pmx_register_tilers(register):
        register(GoodTiler)
"""


def _ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group="pmx")


def test_in_memory_plugin_registers_and_unregisters():
    host = PluginHost()
    cls = _tiler("mem-tiler")
    info = host.register(_plugin_module("mem_plugin", cls), "mem")
    assert info.components == [("tiler", "mem-tiler")]
    assert info.hooks == ["pmx_register_tilers"]
    assert host.registry.get("tiler", "mem-tiler") is cls
    assert host.registry.lookup("tiler", "mem-tiler").plugin == "mem"
    host.unregister("mem")
    with pytest.raises(pmx.UnknownComponentError, match="mem-tiler"):
        host.registry.get("tiler", "mem-tiler")


def test_entry_point_plugins_load_and_a_broken_one_is_reported(module_on_path):
    module_on_path("pmx_test_good_plugin", GOOD_PLUGIN)
    module_on_path("pmx_test_raises_on_import", "raise RuntimeError('boom at import')\n")
    host = load_host(
        entry_points=[
            _ep("missing", "pmx_test_no_such_module_xyz"),
            _ep("raises", "pmx_test_raises_on_import"),
            _ep("good", "pmx_test_good_plugin"),
        ],
        allow=None,
        builtins=[],
    )
    assert host.registry.names("tiler") == ["good-tiler"]
    assert set(host.errors) == {"missing", "raises"}
    assert "pmx_test_no_such_module_xyz" in host.errors["missing"][0]
    assert "ModuleNotFoundError" in host.errors["missing"][0]
    assert "boom at import" in host.errors["raises"][0]
    assert host.plugins["good"].errors == []


def test_a_plugin_whose_hook_raises_does_not_stop_others():
    host = PluginHost()
    bad = types.ModuleType("bad_hook")

    @pmx.hookimpl
    def pmx_register_tilers(register):
        raise ValueError("cannot register today")

    bad.pmx_register_tilers = pmx_register_tilers
    host.register(bad, "bad")
    host.register(_plugin_module("ok_plugin", _tiler("ok-tiler")), "ok")
    assert "cannot register today" in host.errors["bad"][0]
    assert "pmx_register_tilers failed" in host.errors["bad"][0]
    assert host.registry.names("tiler") == ["ok-tiler"]


def test_duplicate_component_names_name_both_plugins():
    host = PluginHost()
    host.register(_plugin_module("first_mod", _tiler("same", "a")), "first")
    host.register(_plugin_module("second_mod", _tiler("same", "b")), "second")
    (message,) = host.errors["second"]
    assert "'first'" in message and "'second'" in message
    with pytest.raises(pmx.DuplicateComponentError) as excinfo:
        host.registry.get("tiler", "same")
    assert "first" in str(excinfo.value) and "second" in str(excinfo.value)
    host.unregister("second")
    assert host.registry.get("tiler", "same").__qualname__ == "Tiler_same_a"


def test_hook_registering_the_wrong_kind_is_an_error():
    host = PluginHost()
    module = types.ModuleType("wrong_kind")

    class Head(pmx.Component):
        kind = "head"
        name = "some-head"

    @pmx.hookimpl
    def pmx_register_tilers(register):
        register(Head)

    module.pmx_register_tilers = pmx_register_tilers
    host.register(module, "wrong")
    assert "registers 'tiler'" in host.errors["wrong"][0]
    assert ("head", "some-head") not in host.registry


def test_config_fields_without_docs_are_rejected():
    host = PluginHost()

    class Undocumented(pmx.Component):
        kind = "tiler"
        name = "undocumented"

        class Config(pmx.ComponentConfig):
            size: int = 3

    host.register(_plugin_module("undoc", Undocumented), "undoc")
    assert "has no description" in host.errors["undoc"][0]


def test_invalid_hookimpl_signature_is_reported():
    host = PluginHost()
    module = types.ModuleType("bad_signature")

    @pmx.hookimpl
    def pmx_register_tilers(register, unexpected_argument):
        pass

    module.pmx_register_tilers = pmx_register_tilers
    info = host.register(module, "badsig")
    assert "registration failed" in info.errors[0]


@pytest.mark.parametrize(
    ("allow", "expected"),
    [(None, ["good-tiler"]), ("", []), ("good", ["good-tiler"]), ("other, thing", [])],
)
def test_allow_list_from_environment(module_on_path, monkeypatch, allow, expected):
    module_on_path("pmx_test_good_plugin", GOOD_PLUGIN)
    if allow is None:
        monkeypatch.delenv("PMX_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("PMX_LOAD_PLUGINS", allow)
    host = load_host(entry_points=[_ep("good", "pmx_test_good_plugin")], builtins=[])
    assert host.registry.names("tiler") == expected
    assert host.skipped == ([] if expected else ["good"])


def test_builtin_plugins_register_through_the_same_hooks(fresh_host):
    host = pmx.get_host()
    builtin = [info for info in host.plugins.values() if info.builtin]
    for info in builtin:
        assert info.errors == [], f"built-in plugin {info.name} failed: {info.errors}"
        assert info.distribution == "pmx"
    assert all(reg.plugin in host.plugins for reg in host.registry.registrations())
