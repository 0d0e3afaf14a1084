"""Magnification <-> microns-per-pixel, by the convention the field uses.

Scanners report an objective power (20x, 40x) and a pixel size; the two are tied by the
convention ``mpp = 10 um / magnification`` (20x ~ 0.5 um/px, 40x ~ 0.25 um/px). pmx stores and
compares physical sizes in mpp and uses magnification only as the user-facing spelling.
"""

from __future__ import annotations

from ..errors import ConfigError

#: Microns per pixel at 1x under the 10 um / magnification convention.
MICRONS_AT_1X = 10.0


def magnification_to_mpp(magnification: float) -> float:
    """20 -> 0.5, 40 -> 0.25."""
    if not magnification or magnification <= 0:
        raise ConfigError(f"magnification must be > 0 (got {magnification!r})")
    return MICRONS_AT_1X / float(magnification)


def mpp_to_magnification(mpp: float) -> float:
    """0.5 -> 20, 0.25 -> 40."""
    if not mpp or mpp <= 0:
        raise ConfigError(f"mpp must be > 0 (got {mpp!r})")
    return MICRONS_AT_1X / float(mpp)


def target_mpp(magnification: float | str | None, mpp: float | None) -> float | None:
    """The physical pixel size a tiler asks for: ``mpp`` wins; ``"native"``/None means level 0.

    Returns None when the tiler works in the slide's own level-0 pixels (no physical size).
    """
    if mpp is not None:
        if mpp <= 0:
            raise ConfigError(f"mpp must be > 0 (got {mpp!r})")
        return float(mpp)
    if magnification is None or magnification == "native":
        return None
    return magnification_to_mpp(float(magnification))
