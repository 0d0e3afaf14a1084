"""``pmx doctor``: is this installation able to run pmx, and on what hardware?"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import platform
from typing import Any, Callable

import click

from pmx.cli.output import echo_json


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _check_torch() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"version": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["bf16"] = torch.cuda.is_bf16_supported()
    return info


def _check_openslide() -> dict[str, Any]:
    import openslide

    return {"python": openslide.__version__, "library": openslide.__library_version__}


def _check_module(name: str) -> Callable[[], dict[str, Any]]:
    def check() -> dict[str, Any]:
        module = importlib.import_module(name)
        return {"version": getattr(module, "__version__", None) or _version(name)}

    return check


REQUIRED: dict[str, Callable[[], dict[str, Any]]] = {
    "torch": _check_torch,
    "openslide": _check_openslide,
    "lancedb": _check_module("lancedb"),
    "timm": _check_module("timm"),
    "polars": _check_module("polars"),
    "sksurv": _check_module("sksurv"),
    "pydeseq2": _check_module("pydeseq2"),
}
OPTIONAL: dict[str, Callable[[], dict[str, Any]]] = {
    "torch_tensorrt": _check_module("torch_tensorrt"),
}


def diagnose() -> tuple[dict[str, Any], list[str]]:
    """All checks as a dict, and the list of problems that make pmx unusable."""
    from pmx import __version__
    from pmx.plugins import get_host

    report: dict[str, Any] = {"pmx": __version__, "python": platform.python_version(),
                              "platform": platform.platform(), "required": {}, "optional": {}}
    problems: list[str] = []
    for section, checks in (("required", REQUIRED), ("optional", OPTIONAL)):
        for name, check in checks.items():
            try:
                report[section][name] = {"ok": True, **check()}
            except Exception as exc:  # report, do not crash: that is the point of doctor
                report[section][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                if section == "required":
                    problems.append(f"{name}: {exc}")
    if not report["optional"]["torch_tensorrt"]["ok"]:
        report["optional"]["torch_tensorrt"]["note"] = (
            "optional: pip install 'pmx[tensorrt]' on a CUDA machine for TensorRT inference"
        )
    host = get_host()
    host.check()  # import components registered by path, so a broken one is a problem now
    report["plugins"] = {name: {"builtin": i.builtin, "distribution": i.distribution,
                                "components": len(i.components), "errors": i.errors}
                         for name, i in host.plugins.items()}
    for name, errors in host.errors.items():
        problems.extend(f"plugin {name}: {e}" for e in errors)
    return report, problems


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Check torch/CUDA, OpenSlide, LanceDB, optional TensorRT and plugin health."""
    report, problems = diagnose()
    if as_json:
        echo_json({**report, "problems": problems})
    else:
        click.echo(f"pmx {report['pmx']} on Python {report['python']} ({report['platform']})")
        for section in ("required", "optional"):
            for name, item in report[section].items():
                mark = "ok " if item["ok"] else ("MISSING" if section == "required" else "absent")
                details = ", ".join(f"{k}={v}" for k, v in item.items() if k != "ok")
                click.echo(f"  [{mark}] {name}: {details}")
        click.echo(f"  plugins: {len(report['plugins'])} loaded")
        for problem in problems:
            click.secho(f"  problem: {problem}", fg="red")
    if problems:
        raise SystemExit(1)
