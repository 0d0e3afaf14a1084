"""On-the-fly augmentation of representative regions: random resized crop, flip, normalisation.

ContraMAE's recipe is torchvision's ``RandomResizedCrop(size, scale=(0.2, 1.0))`` +
``RandomHorizontalFlip`` + ImageNet normalisation, drawn afresh every time a region is used
(the authors' code crops once and caches that view; pmx never does).

Two equivalent entry points:

* :class:`RegionAugment` works on a whole batch on any device: crop boxes are sampled per
  sample with torchvision's rule, and all crops are resampled to ``size`` in one
  ``roi_align`` call (bilinear, averaging ``ceil(crop / size)`` samples per output pixel when
  shrinking). With the regions held as uint8 in GPU memory this keeps the data path on the GPU.
  It draws from torch's global RNG (or a given generator), so a re-run micro-batch sees the
  same crops when the trainer restores the RNG state.
* :func:`region_transform` is the per-sample torchvision pipeline for CPU DataLoader workers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RegionAugment", "random_resized_boxes", "region_transform"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def random_resized_boxes(
    batch: int,
    height: int,
    width: int,
    scale: Sequence[float] = (0.2, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    attempts: int = 10,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``[B, 4]`` crop boxes ``(x0, y0, x1, y1)`` in pixel-edge coordinates (x1 - x0 = width).

    torchvision's rule, vectorised: up to ``attempts`` draws of area fraction ~ U(scale) and
    log aspect ratio ~ U(log ratio); the first draw that fits is used; if none fits, the
    largest centred crop with the aspect ratio clamped into ``ratio``.
    """
    area = float(height * width)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    u = torch.rand(batch, attempts, 2, device=device, generator=generator)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(dim=1)
    rows = torch.arange(batch, device=w.device)
    w, h = w[rows, first], h[rows, first]

    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), float(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = float(round(height * ratio[1])), float(height)
    else:
        fw, fh = float(width), float(height)
    ok = fits.any(dim=1)
    w = torch.where(ok, w, torch.full_like(w, fw))
    h = torch.where(ok, h, torch.full_like(h, fh))

    pos = torch.rand(batch, 2, device=w.device, generator=generator)
    x0 = torch.where(ok, torch.floor(pos[:, 0] * (width - w + 1)), torch.floor((width - w) / 2))
    y0 = torch.where(ok, torch.floor(pos[:, 1] * (height - h + 1)), torch.floor((height - h) / 2))
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


class RegionAugment(nn.Module):
    """Batched RandomResizedCrop + horizontal flip + normalisation (training) or resize + normalise.

    Input: ``[B, C, H, W]`` uint8 (0-255) or float in [0, 1]; output: float ``[B, C, size, size]``
    normalised with ``mean``/``std``. In eval mode (or ``train=False``) the whole region is
    resized to ``size`` (a no-op when it already has that size) and normalised.
    """

    def __init__(
        self,
        size: int,
        scale: Sequence[float] = (0.2, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"crop scale must satisfy 0 < min <= max <= 1, got {tuple(scale)}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"crop ratio must satisfy 0 < min <= max, got {tuple(ratio)}")
        self.size = int(size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip = float(flip)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        """uint8 0-255 -> float 0-1; float passes through."""
        if images.dtype == torch.uint8:
            return images.float().div_(255.0)
        return images.float()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean.to(images.device)) / self.std.to(images.device)

    def forward(self, images: torch.Tensor, train: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"RegionAugment needs [B, C, H, W] images, got shape {tuple(images.shape)}")
        train = self.training if train is None else train
        x = self.to_unit(images)
        b, _, h, w = x.shape
        if train:
            from torchvision.ops import roi_align

            boxes = random_resized_boxes(b, h, w, self.scale, self.ratio, device=x.device, generator=generator)
            rois = torch.cat([torch.arange(b, device=x.device, dtype=x.dtype).unsqueeze(1), boxes.to(x.dtype)], dim=1)
            x = roi_align(x, rois, output_size=(self.size, self.size), spatial_scale=1.0,
                          sampling_ratio=-1, aligned=True)
            if self.flip > 0:
                flip = torch.rand(b, device=x.device, generator=generator) < self.flip
                x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        elif (h, w) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return self.normalize(x)


def region_transform(size: int, train: bool, scale: Sequence[float] = (0.2, 1.0),
                     ratio: Sequence[float] = (3 / 4, 4 / 3), flip: float = 0.5):  # type: ignore[no-untyped-def]
    """Per-sample torchvision v2 pipeline (``[C, H, W]`` uint8 tensor or PIL image -> normalised float)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import v2

    steps: list = [v2.ToImage()]
    if train:
        steps += [
            v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(ratio),
                                 interpolation=InterpolationMode.BILINEAR, antialias=True),
            v2.RandomHorizontalFlip(flip),
        ]
    else:
        steps.append(v2.Resize((size, size), interpolation=InterpolationMode.BILINEAR, antialias=True))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)
