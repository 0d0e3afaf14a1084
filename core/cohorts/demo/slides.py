"""Synthetic H&E-like slides written as Aperio-style pyramidal TIFFs that OpenSlide opens.

The picture is built the way stained tissue forms colour: hematoxylin (nuclei) and eosin
(stroma) concentration maps are mixed with Beer-Lambert optical densities, so the slide-level
factors that drive survival change what a pathologist (or a tile encoder) would see:

- ``density``  -> nuclei per tissue area,
- ``hue``      -> the hematoxylin/eosin stain vectors (bluer vs more magenta),
- ``texture``  -> spatial frequency and contrast of the stroma fibres,
- ``grade``    -> nuclear size (shared with the omics),
- ``immune``   -> number of lymphocyte clusters (small dark nuclei; shared with the omics).

Tissue fragments lie on a white background, with pen marks, folds and dust as artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = ["SlideLook", "render_slide", "write_aperio_tiff", "render_to_file", "BASE_MPP", "BASE_MAGNIFICATION"]

BASE_MPP = 0.5
BASE_MAGNIFICATION = 20
_TILE = 256
_H_VECTOR = np.array([0.65, 0.70, 0.29], dtype=np.float32)
_E_VECTOR = np.array([0.07, 0.99, 0.11], dtype=np.float32)


@dataclass(frozen=True)
class SlideLook:
    """Visual parameters of one slide, each a standardised latent factor (mean 0, sd 1)."""

    density: float = 0.0
    hue: float = 0.0
    texture: float = 0.0
    grade: float = 0.0
    immune: float = 0.0
    site_tint: float = 0.0  # nuisance: per-site staining batch effect, unrelated to survival


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _stain_vectors(look: SlideLook) -> tuple[np.ndarray, np.ndarray]:
    shift = 0.11 * float(np.clip(look.hue, -2.5, 2.5))
    hematoxylin = _unit(_H_VECTOR + np.array([-shift, 0.6 * shift, -shift * 1.2], dtype=np.float32))
    eosin = _unit(_E_VECTOR + np.array([0.5 * shift, 0.0, 0.35 * shift], dtype=np.float32))
    tint = 0.04 * float(look.site_tint)
    eosin = _unit(eosin + np.array([tint, -tint, 0.0], dtype=np.float32))
    return hematoxylin, eosin


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _upsample(array: np.ndarray, width: int, height: int) -> np.ndarray:
    resized = Image.fromarray(array.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.array(resized, dtype=np.float32)


def _tissue_field(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Soft tissue mask in [0, 1]: one to three irregular fragments covering ~35-60%."""
    cw, ch = max(width // 16, 8), max(height // 16, 8)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    prior = np.full((ch, cw), -3.0, dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0.3, 0.7) * cw, rng.uniform(0.3, 0.7) * ch
        rx, ry = rng.uniform(0.18, 0.32) * cw, rng.uniform(0.2, 0.35) * ch
        blob = 1.0 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2
        prior = np.maximum(prior, 3.0 * blob)
    field = prior + 0.9 * _smooth_noise(rng, (ch, cw), 3.0)
    qw, qh = width // 4, height // 4
    quarter = _upsample(field, qw, qh) + 0.35 * _smooth_noise(rng, (qh, qw), 2.0)
    if (quarter > 0).mean() < 0.15:  # tiny fragment: add a central ellipse so tiles always exist
        yq, xq = np.ogrid[0:qh, 0:qw]
        ellipse = 1.0 - ((xq - qw / 2) / (0.3 * qw)) ** 2 - ((yq - qh / 2) / (0.3 * qh)) ** 2
        quarter = np.maximum(quarter, ellipse.astype(np.float32))
    soft = _upsample(quarter, width, height)
    soft *= np.float32(4.0)
    soft += np.float32(0.5)
    return np.clip(soft, 0.0, 1.0, out=soft)


def _stroma(rng: np.random.Generator, look: SlideLook, width: int, height: int) -> np.ndarray:
    """Eosin concentration: wavy fibres whose frequency and contrast follow ``texture``.

    Computed at half resolution (fibres are tens of pixels wide) and upsampled.
    """
    t = float(np.clip(look.texture, -2.5, 2.5))
    hw, hh = width // 2, height // 2
    period = 15.0 * np.exp(-0.3 * t)  # half-res px; high texture = fine, busy fibres
    contrast = max(0.13 + 0.05 * t, 0.02)
    angle = rng.uniform(0, np.pi)
    warp = 10.0 * _upsample(_smooth_noise(rng, (hh // 16 + 2, hw // 16 + 2), 1.5), hw, hh)
    yy, xx = np.mgrid[0:hh, 0:hw].astype(np.float32)
    phase = xx * np.float32(np.cos(angle))
    phase += yy * np.float32(np.sin(angle))
    phase += warp
    phase *= np.float32(2 * np.pi / period)
    fibres = np.sin(phase)
    fibres *= _upsample(np.abs(_smooth_noise(rng, (hh // 8, hw // 8), 2.0)), hw, hh)  # patchy fibres
    base = 0.36 + 0.07 * _upsample(_smooth_noise(rng, (hh // 4, hw // 4), 3.0), hw, hh)
    base += np.float32(contrast) * fibres
    return np.clip(_upsample(base, width, height), 0.05, 1.0)


def _sprites(radius: float, rng: np.random.Generator, variants: int = 8) -> tuple[np.ndarray, list[np.ndarray]]:
    """Nucleus stamps: slightly elliptical disks with a one-pixel soft edge, random angles."""
    half = int(np.ceil(radius * 1.4)) + 1
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    offsets = np.stack([yy.ravel(), xx.ravel()]).astype(np.int64)
    stamps = []
    for _ in range(variants):
        angle, squash = rng.uniform(0, np.pi), rng.uniform(0.7, 1.0)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / squash
        stamps.append(np.clip(radius + 0.5 - np.sqrt(u * u + v * v), 0.0, 1.0).ravel())
    return offsets, stamps


def _stamp(canvas: np.ndarray, ys: np.ndarray, xs: np.ndarray, amplitude: np.ndarray, radius: float,
           rng: np.random.Generator) -> None:
    """Draw nuclei centred at (ys, xs) into a padded flat canvas (maximum, so overlaps merge)."""
    if ys.size == 0:
        return
    offsets, stamps = _sprites(radius, rng)
    width = canvas.shape[1]
    flat = canvas.reshape(-1)
    delta = offsets[0] * width + offsets[1]
    choice = rng.integers(0, len(stamps), ys.size)
    centres = ys.astype(np.int64) * width + xs.astype(np.int64)
    for k, stamp in enumerate(stamps):
        pick = choice == k
        if not pick.any():
            continue
        index = (centres[pick, None] + delta[None, :]).ravel()
        values = (amplitude[pick, None] * stamp[None, :]).ravel().astype(np.float32)
        np.maximum.at(flat, index, values)


def _nuclei(rng: np.random.Generator, look: SlideLook, tissue: np.ndarray) -> np.ndarray:
    """Hematoxylin concentration from tumour nuclei (density, size) and lymphocyte clusters."""
    height, width = tissue.shape
    tissue_ys, tissue_xs = np.nonzero(tissue[::4, ::4] > 0.5)
    radius = 4.2 * np.exp(0.15 * float(np.clip(look.grade, -2.5, 2.5)))
    pad = int(np.ceil(radius * 1.4)) + 2
    canvas = np.zeros((height + 2 * pad, width + 2 * pad), dtype=np.float32)
    if tissue_xs.size:
        tissue_px = tissue_xs.size * 16.0
        per_kpx = 2.2 * np.exp(0.36 * float(np.clip(look.density, -2.5, 2.5)))  # per 1000 px^2
        count = rng.poisson(per_kpx * tissue_px / 1000.0)
        pick = rng.integers(0, tissue_xs.size, count)
        xs = tissue_xs[pick] * 4 + rng.integers(0, 4, count)
        ys = tissue_ys[pick] * 4 + rng.integers(0, 4, count)
        _stamp(canvas, ys + pad, xs + pad, rng.uniform(0.85, 1.2, count), radius, rng)
        clusters = rng.poisson(2.0 * np.exp(0.6 * float(np.clip(look.immune, -2.5, 2.5))) * tissue_px / 1e6)
        lymph_y, lymph_x = [], []
        for _ in range(clusters):
            k = int(rng.integers(0, tissue_xs.size))
            n = int(rng.integers(80, 220))
            spread = rng.uniform(20, 45)
            lymph_x.append(tissue_xs[k] * 4 + rng.normal(0, spread, n))
            lymph_y.append(tissue_ys[k] * 4 + rng.normal(0, spread, n))
        if lymph_x:  # small, round, dark lymphocytes
            lx = np.clip(np.concatenate(lymph_x).astype(np.int64), 0, width - 1)
            ly = np.clip(np.concatenate(lymph_y).astype(np.int64), 0, height - 1)
            _stamp(canvas, ly + pad, lx + pad, np.full(lx.size, 1.15), 2.6, rng)
    return canvas[pad:pad + height, pad:pad + width]


def _artefacts(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Pen marks (coloured optical density), folds (darker tissue) and dust on some slides."""
    pen_mask = fold_mask = None
    if rng.random() < 0.3:
        pen = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(pen)
        x0, y0 = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.95) * height
        points = [(x0 + i * width * 0.04, y0 + rng.normal(0, 0.02) * height) for i in range(int(rng.integers(4, 9)))]
        draw.line(points, fill=255, width=max(4, width // 180))
        pen_mask = np.asarray(pen, dtype=np.float32) / 255.0
    if rng.random() < 0.25:
        fold = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(fold)
        cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
        length, thick = rng.uniform(0.1, 0.25) * width, rng.uniform(0.01, 0.02) * height
        draw.ellipse([cx - length, cy - thick, cx + length, cy + thick], fill=255)
        fold_mask = np.asarray(fold, dtype=np.float32) / 255.0
    for _ in range(int(rng.integers(0, 6))):  # dust specks anywhere
        if pen_mask is None:
            pen_mask = np.zeros((height, width), dtype=np.float32)
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(2, 6))
        region = pen_mask[max(0, y - r):y + r, max(0, x - r):x + r]
        np.maximum(region, 0.5, out=region)
    return pen_mask, fold_mask


_H_LEVELS, _E_LEVELS = 96, 64
_NOISE = np.array([-3, -1, 1, 3], dtype=np.float32)  # pixel noise, folded into the colour table


def _colour_table(hema_vec: np.ndarray, eosin_vec: np.ndarray) -> np.ndarray:
    """RGB of every (quantised hematoxylin, quantised eosin, noise step): Beer-Lambert mixing
    done once per slide instead of once per pixel."""
    h = np.linspace(0.0, 1.3, _H_LEVELS, dtype=np.float32)
    e = np.linspace(0.0, 1.0, _E_LEVELS, dtype=np.float32)
    od = h[:, None, None] * hema_vec + e[None, :, None] * eosin_vec + np.float32(0.035)
    rgb = 255.0 * np.exp(-od)
    rgb = rgb[:, :, None, :] + _NOISE[None, None, :, None]
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(-1, 3)


def render_slide(look: SlideLook, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image (height, width, 3) of one synthetic H&E slide at the base magnification."""
    tissue = _tissue_field(rng, width, height)
    eosin = _stroma(rng, look, width, height)
    hema = _nuclei(rng, look, tissue)
    hema_vec, eosin_vec = _stain_vectors(look)
    pen, fold = _artefacts(rng, width, height)

    # concentrations inside tissue (eosin is displaced where nuclei are)
    eosin *= np.float32(1.0) - np.float32(0.6) * np.minimum(hema, 1.0)
    hema += np.float32(0.07)
    hema *= tissue
    eosin *= tissue
    if fold is not None:
        scale = 1.0 + 0.9 * fold
        hema *= scale
        eosin *= scale
    hema *= np.float32((_H_LEVELS - 1) / 1.3)
    eosin *= np.float32(_E_LEVELS - 1)
    index = np.clip(hema, 0, _H_LEVELS - 1).astype(np.int32)
    index *= _E_LEVELS
    index += np.clip(eosin, 0, _E_LEVELS - 1).astype(np.int32)
    index *= len(_NOISE)
    index += rng.integers(0, len(_NOISE), (height, width), dtype=np.int32)
    rgb = _colour_table(hema_vec, eosin_vec)[index]
    if pen is not None:  # ink absorbs on top of the stain
        rows = np.flatnonzero(pen.any(axis=1))
        cols = np.flatnonzero(pen.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ink = np.exp(-pen[box][..., None] * np.array([0.9, 0.25, 0.55], dtype=np.float32))
        rgb[box] = (rgb[box] * ink).astype(np.uint8)
    return rgb


def _description(width: int, height: int, size: tuple[int, int] | None, quality: int, mpp: float,
                 magnification: int, name: str) -> str:
    head = "Aperio Image Library v12.0.15\r\n"
    if size is None:
        geometry = f"{width}x{height} [0,0 {width}x{height}] ({_TILE}x{_TILE}) JPEG/RGB Q={quality}"
    else:
        geometry = f"{width}x{height} -> {size[0]}x{size[1]} - "
    return f"{head}{geometry}|AppMag = {magnification}|MPP = {mpp:.4f}|Filename = {name}"


def write_aperio_tiff(
    path: Path,
    image: np.ndarray,
    *,
    mpp: float = BASE_MPP,
    magnification: int = BASE_MAGNIFICATION,
    levels: int = 3,
    downsample: int = 4,
    quality: int = 80,
) -> None:
    """Write a tiled JPEG pyramid (level 0, a stripped thumbnail, then the reduced levels).

    The ImageDescription starts with "Aperio" and carries ``AppMag`` and ``MPP``, which is what
    OpenSlide's Aperio driver reads; ``metadata=None`` stops tifffile from adding its own
    description, which would otherwise replace the Aperio one.
    """
    import tifffile

    height, width = image.shape[:2]
    name = Path(path).stem
    pyramid = [image]
    pil = Image.fromarray(image)
    for _ in range(1, levels):
        pil = pil.reduce(downsample)
        pyramid.append(np.asarray(pil))
    thumb = Image.fromarray(image)
    thumb.thumbnail((768, 768))
    thumbnail = np.asarray(thumb)
    resolution = (1e4 / mpp, 1e4 / mpp)
    common = dict(photometric="rgb", compression="jpeg", compressionargs={"level": quality}, metadata=None)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        tif.write(pyramid[0], tile=(_TILE, _TILE), resolution=resolution, resolutionunit="CENTIMETER",
                  description=_description(width, height, None, quality, mpp, magnification, name), **common)
        tif.write(thumbnail, rowsperstrip=16,
                  description=_description(width, height, (thumbnail.shape[1], thumbnail.shape[0]), quality,
                                           mpp, magnification, name), **common)
        for level in pyramid[1:]:
            tif.write(level, tile=(_TILE, _TILE),
                      description=_description(width, height, (level.shape[1], level.shape[0]), quality, mpp,
                                               magnification, name), **common)


def render_to_file(task: tuple[str, dict[str, float], int, int, list[int]]) -> str:
    """Worker entry point: (path, look, width, height, seed entropy) -> one slide file.

    Lives here so spawned workers import only this module, not the whole generator.
    """
    path, look, width, height, entropy = task
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    image = render_slide(SlideLook(**look), width, height, rng)
    write_aperio_tiff(Path(path), image, mpp=BASE_MPP, magnification=BASE_MAGNIFICATION)
    return path
