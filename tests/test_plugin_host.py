"""Plugin discovery, isolation of broken plugins, the allow-list and duplicate names."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
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


# -- lazy registration by import path ---------------------------------------------------------

LAZY_IMPL = """
    import pmx

    class LazyTiler(pmx.Component):
        '''A tiler whose module a plugin registers by path.'''
        kind = "tiler"
        name = "lazy-tiler"
        class Config(pmx.ComponentConfig):
            size: int = pmx.Field(64, description="tile size")

    class Misnamed(pmx.Component):
        kind = "tiler"
        name = "other-name"
"""


def _path_plugin(mod_name: str, *entries: tuple[str, str | None]) -> types.ModuleType:
    module = types.ModuleType(mod_name)

    @pmx.hookimpl
    def pmx_register_tilers(register):
        for target, name in entries:
            register(target) if name is None else register(target, name=name)

    module.pmx_register_tilers = pmx_register_tilers
    return module


def test_registering_by_import_path_imports_on_first_use(module_on_path):
    module_on_path("pmx_test_lazy_impl", LAZY_IMPL)
    host = PluginHost()
    info = host.register(_path_plugin("lazy_mod", ("pmx_test_lazy_impl:LazyTiler", "lazy-tiler")), "lazy")
    assert info.errors == [] and info.components == [("tiler", "lazy-tiler")]
    assert host.registry.names("tiler") == ["lazy-tiler"]
    reg = host.registry.lookup("tiler", "lazy-tiler")
    assert not reg.loaded and "pmx_test_lazy_impl" not in sys.modules
    cls = host.registry.get("tiler", "lazy-tiler")
    assert reg.loaded and cls is sys.modules["pmx_test_lazy_impl"].LazyTiler
    described = reg.describe()
    assert described["summary"] == "A tiler whose module a plugin registers by path."
    assert described["config"] == [{"name": "size", "type": "int", "default": 64, "doc": "tile size"}]
    # the same class registered eagerly elsewhere: same key, same fingerprint
    eager = PluginHost()
    eager.register(_plugin_module("eager_mod", cls), "eager")
    assert (host.registry.create("tiler", "lazy-tiler", size=32).fingerprint
            == eager.registry.create("tiler", "lazy-tiler", size=32).fingerprint)


def test_path_registrations_conflict_without_importing(module_on_path):
    module_on_path("pmx_test_lazy_impl", LAZY_IMPL)
    host = PluginHost()
    host.register(_path_plugin("a_mod", ("pmx_test_lazy_impl:LazyTiler", "shared")), "first")
    host.register(_path_plugin("b_mod", ("pmx_test_lazy_b:OtherTiler", "shared")), "second")
    (message,) = host.errors["second"]
    assert "'first'" in message and "'second'" in message and "pmx_test_lazy_b.OtherTiler" in message
    assert "pmx_test_lazy_impl" not in sys.modules and "pmx_test_lazy_b" not in sys.modules
    with pytest.raises(pmx.DuplicateComponentError):
        host.registry.get("tiler", "shared")
    # the same path twice (e.g. a re-registered plugin) is not a conflict
    host.register(_path_plugin("c_mod", ("pmx_test_lazy_impl:LazyTiler", "shared")), "third")
    assert "third" not in host.errors


def test_broken_path_registrations_fail_on_use_and_in_check(module_on_path):
    module_on_path("pmx_test_lazy_impl", LAZY_IMPL)
    host = PluginHost()
    info = host.register(
        _path_plugin(
            "broken_mod",
            ("pmx_test_no_such_module_abc:Tiler", "missing-module"),
            ("pmx_test_lazy_impl:Misnamed", "misnamed"),
            ("pmx_test_lazy_impl:LazyTiler", None),
            ("no-colon-here", "bad-path"),
        ),
        "broken",
    )
    assert info.components == [("tiler", "missing-module"), ("tiler", "misnamed")]
    assert len(info.errors) == 2
    assert "without a name" in info.errors[0] and "name=" in info.errors[0]
    assert "expected an import path 'package.module:ClassName'" in info.errors[1]
    with pytest.raises(pmx.PluginError) as excinfo:
        host.registry.get("tiler", "missing-module")
    message = str(excinfo.value)
    assert "plugin 'broken'" in message and "'pmx_test_no_such_module_abc:Tiler'" in message
    assert "ModuleNotFoundError" in message
    with pytest.raises(pmx.PluginError, match="says it is tiler 'other-name'"):
        host.registry.get("tiler", "misnamed")
    errors = host.check()["broken"]
    assert len(errors) == 4 and any("ModuleNotFoundError" in e for e in errors)
    assert host.check()["broken"] == errors  # checking again adds nothing


def test_loading_plugins_imports_no_heavy_library():
    """`pmx plugins` and `pmx --help` in a fresh interpreter, with every installed plugin."""
    code = textwrap.dedent("""
        import json, sys
        from click.testing import CliRunner
        from pmx.cli.main import cli
        help_out = CliRunner().invoke(cli, ["--help"])
        out = CliRunner().invoke(cli, ["plugins", "--json"])
        assert out.exit_code == 0 and help_out.exit_code == 0, out.output + help_out.output
        # pmx.tiling and pmx.omics export their names lazily, so not even numpy or pandas
        heavy = ["torch", "torchvision", "timm", "sklearn", "sksurv", "pydeseq2", "lifelines",
                 "lancedb", "matplotlib", "numpy", "pandas", "pyarrow", "openslide", "scipy",
                 "polars"]
        plugins = json.loads(out.output)
        print(json.dumps({
            "imported": [m for m in heavy if m in sys.modules],
            "components": sum(len(p["components"]) for p in plugins),
            "errors": [e for p in plugins for e in p["errors"]],
        }))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PMX_LOAD_PLUGINS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["components"] >= 14  # the built-ins alone register 14
    assert report["imported"] == []
