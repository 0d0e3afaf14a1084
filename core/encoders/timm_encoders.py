"""Built-in tile encoders built with timm (never ``pretrained=True``: weights come from a file).

- ``resnet50-trunc``: ImageNet ResNet-50 cut after ``layer3`` and average-pooled, 1024-d per
  tile at 256 px: the CLAM / CMTA feature convention. Takes a full ResNet-50 checkpoint
  (torchvision or timm key names; ``layer4`` and ``fc`` are ignored), e.g. ``resnet50.tv_in1k``.
- ``vit-s16`` / ``vit-b16``: timm ``vit_small_patch16_224`` (384-d) and ``vit_base_patch16_224``
  (768-d), class-token output at 224 px. Checkpoints in timm layout (DINO / Lunit / UNI-style
  keys are the same); position embeddings of another grid are resized by timm's filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import field_validator

from ..config import Field
from ..hookspecs import hookimpl
from .base import IMAGENET_MEAN, IMAGENET_STD, TileEncoder, TileEncoderConfig

if TYPE_CHECKING:
    import torch


def _resnet_trunk_class() -> type:
    import torch

    class ResNetTrunk(torch.nn.Module):
        """ResNet stem + layer1..layer3, global average pool: (N, 3, S, S) -> (N, 1024)."""

        def __init__(self, resnet: torch.nn.Module):
            super().__init__()
            self.conv1, self.bn1, self.act1 = resnet.conv1, resnet.bn1, resnet.act1
            self.maxpool = resnet.maxpool
            self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
            x = self.layer3(self.layer2(self.layer1(x)))
            return x.mean(dim=(2, 3))

    return ResNetTrunk


class ResNet50Trunc(TileEncoder):
    """ImageNet ResNet-50 truncated after layer3, average-pooled (1024-d; CLAM/CMTA features)."""

    name: ClassVar[str] = "resnet50-trunc"
    version: ClassVar[str] = "1"
    embed_dim: ClassVar[int] = 1024
    ignored_weight_prefixes: ClassVar[tuple[str, ...]] = ("layer4.", "fc.")

    class Config(TileEncoderConfig):
        input_size: int = Field(256, ge=0, description="side in pixels tiles are resized to; "
                                "0 = feed tiles at their own size (CLAM feeds 256 px tiles as is)")

    def build_module(self) -> "torch.nn.Module":
        import timm

        resnet = timm.create_model("resnet50", pretrained=False, num_classes=0)
        return _resnet_trunk_class()(resnet)


class _TimmViT(TileEncoder):
    """Shared code of the timm ViT encoders (class-token or mean-pooled output)."""

    timm_name: ClassVar[str] = ""
    ignored_weight_prefixes: ClassVar[tuple[str, ...]] = ("head.", "head_drop.")

    class Config(TileEncoderConfig):
        input_size: int = Field(224, ge=16, description="side in pixels tiles are resized to "
                                "(a multiple of the patch size, 16)")
        mean: tuple[float, float, float] = Field(IMAGENET_MEAN, description="per-channel mean "
                                                 "(timm's augreg ViTs use 0.5, 0.5, 0.5)")
        std: tuple[float, float, float] = Field(IMAGENET_STD, description="per-channel std "
                                                "(timm's augreg ViTs use 0.5, 0.5, 0.5)")
        pool: Literal["token", "avg"] = Field("token", description="class token, or mean of "
                                              "the patch tokens")

        @field_validator("input_size")
        @classmethod
        def _whole_patches(cls, value: int) -> int:
            if value % 16:
                raise ValueError("must be a multiple of the patch size 16 (e.g. 224 or 256)")
            return value

    def build_module(self) -> "torch.nn.Module":
        import timm

        return timm.create_model(self.timm_name, pretrained=False, num_classes=0,
                                 img_size=self.input_size, global_pool=self.config.pool)

    def adapt_state_dict(self, state, module):
        from timm.models.vision_transformer import checkpoint_filter_fn

        return checkpoint_filter_fn(state, module)


class ViTS16(_TimmViT):
    """ViT-S/16 (timm vit_small_patch16_224), 384-d class token."""

    name: ClassVar[str] = "vit-s16"
    version: ClassVar[str] = "1"
    embed_dim: ClassVar[int] = 384
    timm_name: ClassVar[str] = "vit_small_patch16_224"


class ViTB16(_TimmViT):
    """ViT-B/16 (timm vit_base_patch16_224), 768-d class token."""

    name: ClassVar[str] = "vit-b16"
    version: ClassVar[str] = "1"
    embed_dim: ClassVar[int] = 768
    timm_name: ClassVar[str] = "vit_base_patch16_224"


BUILTIN_ENCODERS: tuple[type[TileEncoder], ...] = (ResNet50Trunc, ViTS16, ViTB16)


@hookimpl
def pmx_register_encoders(register) -> None:
    for cls in BUILTIN_ENCODERS:
        register(cls)
