"""On-the-fly region augmentation: crop boxes, batched crop/flip/normalise, per-sample pipeline."""

from __future__ import annotations

import math

import pytest
import torch

from pmx_contramae import IMAGENET_MEAN, IMAGENET_STD, RegionAugment, random_resized_boxes, region_transform


def normalised(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def test_boxes_respect_scale_ratio_and_bounds():
    g = torch.Generator().manual_seed(0)
    boxes = random_resized_boxes(2000, 100, 100, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), generator=g)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert torch.all(boxes[:, :2] >= 0) and torch.all(boxes[:, 2] <= 100) and torch.all(boxes[:, 3] <= 100)
    area = w * h / 10000
    assert area.min() >= 0.19 and area.max() <= 1.0  # rounding to whole pixels
    assert torch.all(w / h >= 0.74) and torch.all(w / h <= 1.36)
    # same distribution as torchvision's RandomResizedCrop.get_params (rejections bias it below 0.6)
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    reference = [RandomResizedCrop.get_params(torch.zeros(3, 100, 100), [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(2000)]
    ref_area = torch.tensor([hh * ww / 10000 for _, _, hh, ww in reference])
    assert area.mean().item() == pytest.approx(ref_area.mean().item(), abs=0.02)
    assert area.std().item() == pytest.approx(ref_area.std().item(), abs=0.02)
    again = random_resized_boxes(2000, 100, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, boxes)


def test_boxes_fall_back_to_a_centred_crop_when_no_draw_fits():
    boxes = random_resized_boxes(4, 10, 100, scale=(0.9, 1.0), ratio=(1.0, 1.0))  # squares of >= 900 px^2 don't fit
    assert torch.equal(boxes, torch.tensor([[45.0, 0.0, 55.0, 10.0]] * 4))


def test_whole_region_crop_without_flip_is_exact_normalisation():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=g)
    aug = RegionAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0).train()
    out = aug(images)
    assert out.dtype == torch.float32 and out.shape == (3, 3, 16, 16)
    assert torch.allclose(out, normalised(images.float() / 255), atol=1e-5)
    flipped = RegionAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0).train()(images)
    assert torch.allclose(flipped, normalised(images.float() / 255).flip(-1), atol=1e-5)


def test_random_crops_resample_to_the_model_size_and_differ_every_call():
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    aug = RegionAugment(32).train()
    a, b = aug(images), aug(images)
    assert a.shape == b.shape == (4, 3, 32, 32)
    assert not torch.allclose(a, b)  # a fresh view each time: nothing is cached


def test_a_crop_shows_the_content_of_its_box():
    # left half black, right half white: a crop's mean brightness tracks where its box lies.
    image = torch.zeros(1, 3, 64, 64)
    image[..., 32:] = 1.0
    g = torch.Generator().manual_seed(4)
    boxes = random_resized_boxes(1, 64, 64, generator=torch.Generator().manual_seed(4))
    aug = RegionAugment(16, flip=0.0).train()
    out = aug(image, generator=g) * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    x0, _, x1, _ = boxes[0].tolist()
    white = max(0.0, x1 - max(x0, 32.0)) / (x1 - x0)
    assert out.mean().item() == pytest.approx(white, abs=0.05)


def test_eval_mode_resizes_the_whole_region():
    images = torch.rand(2, 3, 8, 8)
    aug = RegionAugment(8).eval()
    assert torch.allclose(aug(images), normalised(images), atol=1e-6)
    flat = torch.full((1, 3, 16, 16), 0.25)
    out = aug(flat)
    assert out.shape == (1, 3, 8, 8)
    assert torch.allclose(out, normalised(torch.full((1, 3, 8, 8), 0.25)), atol=1e-6)


def test_per_sample_torchvision_pipeline():
    image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    train = region_transform(32, train=True)
    out = train(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    evaluated = region_transform(40, train=False)(image)
    assert torch.allclose(evaluated, normalised(image.float().unsqueeze(0) / 255)[0], atol=1e-5)
    assert math.isfinite(out.sum().item())
