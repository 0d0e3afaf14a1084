"""Fixtures for the tiling tests: small synthetic pyramidal slides with known tissue, written
with tifffile in Aperio style so OpenSlide reads them like scanner files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pmx.slides.synthetic import synthetic_he_image
from pmx.slides.writer import write_pyramidal_tiff

#: tissue: two ellipses; a dark (nuclei-dense) box inside the left one
ELLIPSES = ((0.33, 0.5, 0.22, 0.34), (0.78, 0.45, 0.13, 0.22))
DARK_BOX = (0.22, 0.35, 0.12, 0.15)  # x, y, w, h as fractions
WIDTH, HEIGHT = 3000, 2400


@dataclass(frozen=True)
class SyntheticSlide:
    path: Path
    tissue: np.ndarray  # planted level-0 tissue mask
    mpp: float | None
    dark_box: tuple[int, int, int, int]  # level-0 x, y, w, h

    @property
    def width(self) -> int:
        return self.tissue.shape[1]

    @property
    def height(self) -> int:
        return self.tissue.shape[0]


@pytest.fixture(scope="session")
def synthetic_image() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_he_image(WIDTH, HEIGHT, ellipses=ELLIPSES, dark_boxes=(DARK_BOX,), seed=3)


def _dark_box_px() -> tuple[int, int, int, int]:
    x, y, w, h = DARK_BOX
    return int(x * WIDTH), int(y * HEIGHT), int(w * WIDTH), int(h * HEIGHT)


@pytest.fixture(scope="session")
def slide_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slides")


@pytest.fixture(scope="session")
def synth20(synthetic_image, slide_dir) -> SyntheticSlide:
    """3000x2400 px at 0.5 um/px (20x), levels at downsample 1 and 4."""
    image, tissue = synthetic_image
    path = write_pyramidal_tiff(slide_dir / "synth20.svs", image, mpp=0.5, magnification=20)
    return SyntheticSlide(path, tissue, 0.5, _dark_box_px())


@pytest.fixture(scope="session")
def synth40(synthetic_image, slide_dir) -> SyntheticSlide:
    """The same pixels declared as 0.25 um/px (40x)."""
    image, tissue = synthetic_image
    path = write_pyramidal_tiff(slide_dir / "synth40.svs", image, mpp=0.25, magnification=40)
    return SyntheticSlide(path, tissue, 0.25, _dark_box_px())


@pytest.fixture(scope="session")
def synth_no_mpp(synthetic_image, slide_dir) -> SyntheticSlide:
    """The same pixels with neither MPP nor AppMag in the description."""
    image, tissue = synthetic_image
    path = write_pyramidal_tiff(slide_dir / "nompp.svs", image, mpp=None, magnification=None)
    return SyntheticSlide(path, tissue, None, _dark_box_px())


@pytest.fixture(scope="session")
def blank_slide(slide_dir) -> Path:
    """White glass only (with noise): no tissue."""
    rng = np.random.default_rng(0)
    image = np.clip(243 + rng.normal(0, 3, (1024, 1024, 1)), 0, 255).astype(np.uint8)
    return write_pyramidal_tiff(slide_dir / "blank.svs", np.repeat(image, 3, axis=2))


@pytest.fixture(scope="session")
def cmu(testdata) -> Path:
    return testdata / "CMU-1-Small-Region.svs"


@pytest.fixture(scope="session")
def cmu_pyramid(testdata) -> Path:
    return testdata / "CMU-1-Small-Region-pyramid.svs"


@pytest.fixture(scope="session")
def broken(testdata) -> Path:
    return testdata / "broken.svs"


@pytest.fixture(scope="session")
def truncated(synthetic_image, slide_dir) -> Path:
    """A single-level slide cut to 60%: the header is intact, tile data is missing."""
    full = write_pyramidal_tiff(slide_dir / "full.svs", synthetic_image[0][:1024, :1024].copy(),
                                downsamples=(1,))
    data = full.read_bytes()
    path = slide_dir / "truncated.svs"
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


@pytest.fixture(scope="session")
def corrupt_tile(synthetic_image, slide_dir) -> Path:
    """A pyramid whose level-0 tile data is zeroed in places: opens, fails when read there."""
    import tifffile

    path = write_pyramidal_tiff(slide_dir / "corrupt.svs", synthetic_image[0])
    with tifffile.TiffFile(path) as tif:
        offsets = tif.pages[0].dataoffsets
    data = bytearray(path.read_bytes())
    for index in range(0, len(offsets)):
        data[offsets[index]:offsets[index] + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def copy_slides(tmp_path):
    """Copy slide files into a fresh folder (for tests that add/remove slides)."""

    def copy(*paths: Path, names: tuple[str, ...] | None = None) -> list[Path]:
        out = []
        for i, path in enumerate(paths):
            target = tmp_path / "in" / (names[i] if names else path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            out.append(target)
        return out

    return copy
