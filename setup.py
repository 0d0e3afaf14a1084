"""Maps the design-card folders into the `pmx` import package.

pyproject.toml cannot express "every sub-folder of core/ is a sub-package of pmx", so the
package list is computed here; everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {"pmx": "core", "pmx.featurestore": "featurestore", "pmx.cli": "cli"}


def _packages() -> list[str]:
    names: list[str] = []
    for prefix, folder in ROOTS.items():
        names.append(prefix)
        names.extend(f"{prefix}.{sub}" for sub in find_packages(folder))
    return names


setup(packages=_packages(), package_dir=ROOTS, package_data={"pmx": ["py.typed", "data/*"]})
