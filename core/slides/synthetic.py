"""A cheap, deterministic H&E-looking image: pink tissue blobs with dark nuclei on white glass.

For tests and benchmarks that need slides with known tissue geometry; the demo cohort generator
(``pmx.cohorts``) makes richer ones with planted survival signal.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

#: background glass, eosin-pink stroma and haematoxylin-purple nuclei (RGB)
GLASS = np.array([243, 241, 244], dtype=np.float32)
STROMA = np.array([222, 150, 190], dtype=np.float32)
NUCLEUS = np.array([90, 50, 140], dtype=np.float32)


def ellipse_mask(width: int, height: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.ogrid[:height, :width]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def synthetic_he_image(
    width: int,
    height: int,
    ellipses: Sequence[tuple[float, float, float, float]] = ((0.5, 0.5, 0.3, 0.35),),
    nuclei_density: float = 0.004,
    dark_boxes: Sequence[tuple[float, float, float, float]] = (),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(image, tissue mask): tissue = union of ellipses (cx, cy, rx, ry as fractions of the size).

    ``dark_boxes`` (x, y, w, h fractions) get ten times the nuclei density, i.e. darker, denser
    tissue, so region scores have a known winner.
    """
    rng = np.random.default_rng(seed)
    tissue = np.zeros((height, width), dtype=bool)
    for cx, cy, rx, ry in ellipses:
        tissue |= ellipse_mask(width, height, cx * width, cy * height, rx * width, ry * height)
    density = np.full((height, width), nuclei_density, dtype=np.float32)
    for bx, by, bw, bh in dark_boxes:
        x0, y0 = int(bx * width), int(by * height)
        density[y0:y0 + int(bh * height), x0:x0 + int(bw * width)] *= 10.0
    seeds = (rng.random((height, width), dtype=np.float32) < density) & tissue
    nuclei = ndimage.binary_dilation(seeds, iterations=3)
    image = np.broadcast_to(GLASS, (height, width, 3)).copy()
    image[tissue] = STROMA
    image[nuclei] = NUCLEUS
    noise = rng.normal(0.0, 6.0, size=(height, width, 1)).astype(np.float32)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image, tissue
