"""ContraMAE's cross-modal ViT encoder and its lightweight pretraining decoder.

Token sequence (paper eq. 3)::

    [cls, RNA-seq, miRNA, methylation, image patch 1 .. L]
      cls                      learned token (its learned position is folded into it)
      omics tokens             one shared Linear(omics_dim, d) + a learned type/position embedding each
      image patches            Conv2d(3, d, kernel = stride = patch) + fixed 2-D sin-cos positions

The encoder is a stack of pre-LN ViT blocks (timm's ``Block``: attention + MLP, drop-path)
followed by a LayerNorm. With a :class:`~pmx_contramae.masking.MaskPlan` only the visible
tokens enter it, ordered ``[cls, visible omics, visible patches]``. The decoder (pretraining
only) maps the encodings to its narrower width, re-inserts a learned mask token for every
masked token in the original order, adds its own positions and runs its blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from timm.models.vision_transformer import Block
from torch import nn

import pmx
from pmx.errors import DataError

from .masking import MaskPlan, TokenMask, gather_tokens, unshuffle
from .patches import patchify_chw
from .positions import sincos_2d

__all__ = ["BackboneConfig", "ContraMAEBackbone", "ContraMAEDecoder", "DecoderOutput", "EncoderOutput"]


class BackboneConfig(pmx.ComponentConfig):
    image_size: int = pmx.Field(1024, ge=8, description="edge of the (square) region the model sees, pixels")
    patch_size: int = pmx.Field(128, ge=1, description="patch edge = kernel = stride of the patch-embedding conv")
    in_chans: int = pmx.Field(3, ge=1, description="image channels")
    omics_dim: int = pmx.Field(300, ge=1, description="features per omics type (the selector's top_k)")
    n_omics: int = pmx.Field(3, ge=1, description="omics tokens: RNA-seq, miRNA, methylation")
    embed_dim: int = pmx.Field(768, ge=4, description="encoder width d")
    depth: int = pmx.Field(12, ge=1, description="encoder transformer blocks")
    num_heads: int = pmx.Field(12, ge=1, description="encoder attention heads")
    mlp_ratio: float = pmx.Field(4.0, gt=0, description="MLP hidden width / d")
    qkv_bias: bool = pmx.Field(True, description="bias on the attention's q, k, v projections")
    drop_path: float = pmx.Field(0.0, ge=0.0, lt=1.0, description="stochastic depth of the last encoder block (linear ramp)")
    norm_eps: float = pmx.Field(1e-6, gt=0, description="LayerNorm epsilon")
    omics_positions: Literal["learned", "zeros"] = pmx.Field(
        "learned", description="omics type/position embeddings: learned (paper) or zeros (authors' code)")
    decoder_dim: int = pmx.Field(512, ge=4, description="decoder width (pretraining only)")
    decoder_depth: int = pmx.Field(8, ge=1, description="decoder transformer blocks")
    decoder_heads: int = pmx.Field(16, ge=1, description="decoder attention heads")


def _check_geometry(cfg: BackboneConfig) -> None:
    if cfg.image_size % cfg.patch_size:
        raise pmx.ConfigError(
            f"model.image_size {cfg.image_size} is not a multiple of model.patch_size {cfg.patch_size}")
    for width, heads, what in ((cfg.embed_dim, cfg.num_heads, "embed_dim/num_heads"),
                               (cfg.decoder_dim, cfg.decoder_heads, "decoder_dim/decoder_heads")):
        if width % heads:
            raise pmx.ConfigError(f"model.{what}: width {width} is not divisible by {heads} heads")
        if width % 4:
            raise pmx.ConfigError(f"model.{what}: width {width} must be divisible by 4 (2-D sin-cos positions)")


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float, qkv_bias: bool, eps: float,
            drop_path: float) -> nn.ModuleList:
    rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
    norm = partial(nn.LayerNorm, eps=eps)
    return nn.ModuleList(
        Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_layer=norm, drop_path=rate)
        for rate in rates
    )


def _init_weights(module: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform linears (and the patch conv as a linear), unit norms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _omics_positions(cfg: BackboneConfig, dim: int, owner: nn.Module, name: str) -> None:
    if cfg.omics_positions == "learned":
        param = nn.Parameter(torch.zeros(1, cfg.n_omics, dim))
        nn.init.normal_(param, std=0.02)
        owner.register_parameter(name, param)
    else:
        owner.register_buffer(name, torch.zeros(1, cfg.n_omics, dim), persistent=False)


@dataclass
class EncoderOutput:
    """Encoder tokens ``[cls, omics..., image...]`` and how many of each it holds."""

    tokens: torch.Tensor  #: [B, 1 + n_omics + n_image, d]
    n_omics: int
    n_image: int

    @property
    def cls(self) -> torch.Tensor:
        return self.tokens[:, 0]

    @property
    def omics_tokens(self) -> torch.Tensor:
        return self.tokens[:, 1 : 1 + self.n_omics]

    @property
    def image_tokens(self) -> torch.Tensor:
        return self.tokens[:, 1 + self.n_omics :]

    def omics_mean(self) -> torch.Tensor:
        """Mean of the omics encodings (paper eq. 8); only omics tokens, never an image token."""
        if self.n_omics == 0:
            raise ValueError("the encoder saw no omics token")
        return self.omics_tokens.mean(dim=1)

    def image_mean(self) -> torch.Tensor:
        """Mean of the image-patch encodings (paper eq. 9)."""
        if self.n_image == 0:
            raise ValueError("the encoder saw no image token")
        return self.image_tokens.mean(dim=1)


class ContraMAEBackbone(pmx.Component, nn.Module):
    """ContraMAE cross-modal ViT: [cls, 3 omics tokens, image patches] through one encoder."""

    kind: ClassVar[str] = "encoder"
    name: ClassVar[str] = "contramae-vit"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[BackboneConfig]] = BackboneConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        cfg: BackboneConfig = self.config
        _check_geometry(cfg)
        d = cfg.embed_dim
        self.grid = cfg.image_size // cfg.patch_size
        self.patch_embed = nn.Conv2d(cfg.in_chans, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.omics_embed = nn.Linear(cfg.omics_dim, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        _omics_positions(cfg, d, self, "omics_pos")
        self.register_buffer("image_pos", sincos_2d(d, self.grid, self.grid).unsqueeze(0), persistent=False)
        self.blocks = _blocks(d, cfg.depth, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.norm_eps, cfg.drop_path)
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.apply(_init_weights)
        nn.init.normal_(self.cls_token, std=0.02)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    # ---- embeddings -----------------------------------------------------------------------
    def embed_image(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, C, S, S]`` (normalised) -> patch tokens with positions, ``[B, L, d]``.

        With ``keep`` ``[B, K]`` only those patches are embedded (``[B, K, d]``): the conv is a
        linear map of each patch's pixels, so the masked 75% are never computed.
        """
        cfg = self.config
        if images.ndim != 4 or images.shape[1] != cfg.in_chans or images.shape[-2:] != (cfg.image_size, cfg.image_size):
            raise DataError(
                f"image batch of shape {tuple(images.shape)} does not fit the model "
                f"([B, {cfg.in_chans}, {cfg.image_size}, {cfg.image_size}]); resize the regions "
                "(the plugin's RegionAugment does) or set model.image_size")
        pos = self.image_pos.to(images.dtype)
        if keep is None:
            return self.patch_embed(images).flatten(2).transpose(1, 2) + pos
        pixels = gather_tokens(patchify_chw(images, cfg.patch_size), keep)
        weight = self.patch_embed.weight.flatten(1)
        tokens = nn.functional.linear(pixels, weight.to(pixels.dtype), self.patch_embed.bias)
        return tokens + gather_tokens(pos.expand(images.shape[0], -1, -1), keep)

    def embed_omics(self, omics: torch.Tensor) -> torch.Tensor:
        """``[B, n_omics, omics_dim]`` -> omics tokens with type embeddings ``[B, n_omics, d]``."""
        cfg = self.config
        if omics.ndim != 3 or tuple(omics.shape[1:]) != (cfg.n_omics, cfg.omics_dim):
            raise DataError(
                f"omics batch of shape {tuple(omics.shape)} does not fit the model "
                f"([B, {cfg.n_omics}, {cfg.omics_dim}]: RNA-seq, miRNA, methylation x top_k); "
                "make data.top_k and model.omics_dim agree")
        tokens = self.omics_embed(omics)
        return tokens + self.omics_pos.to(tokens.dtype)

    # ---- encoder --------------------------------------------------------------------------
    def forward(self, images: torch.Tensor | None = None, omics: torch.Tensor | None = None,
                plan: MaskPlan | None = None) -> EncoderOutput:
        """Encode the visible tokens; either modality may be ``None`` (unimodal ablations)."""
        if images is None and omics is None:
            raise ValueError("ContraMAE needs images, omics or both")
        parts: list[torch.Tensor] = []
        n_omics = n_image = 0
        if omics is not None:
            o = self.embed_omics(omics)
            if plan is not None and plan.omics is not None:
                o = gather_tokens(o, plan.omics.keep)
            parts.append(o)
            n_omics = o.shape[1]
        if images is not None:
            p = self.embed_image(images, plan.image.keep if plan is not None and plan.image is not None else None)
            parts.append(p)
            n_image = p.shape[1]
        batch = parts[0].shape[0]
        x = torch.cat([self.cls_token.to(parts[0].dtype).expand(batch, -1, -1), *parts], dim=1)
        for block in self.blocks:
            x = block(x)
        return EncoderOutput(self.norm(x), n_omics=n_omics, n_image=n_image)

    # ---- optimiser helpers ----------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "omics_pos"}

    def layer_id(self, name: str) -> int:
        """0 for embeddings, ``i + 1`` for block i, ``depth + 1`` for the rest (final norm)."""
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        if name.startswith(("patch_embed", "omics_embed", "cls_token", "omics_pos")):
            return 0
        return self.config.depth + 1


@dataclass
class DecoderOutput:
    """Decoder tokens in the original order (masked positions included)."""

    omics: torch.Tensor | None  #: [B, n_omics, decoder_dim]
    image: torch.Tensor | None  #: [B, L, decoder_dim]


class ContraMAEDecoder(nn.Module):
    """Lightweight decoder: re-insert mask tokens in the original order, add positions, blocks, norm."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        cfg = config
        _check_geometry(cfg)
        dd = cfg.decoder_dim
        grid = cfg.image_size // cfg.patch_size
        self.embed = nn.Linear(cfg.embed_dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        _omics_positions(cfg, dd, self, "omics_pos")
        self.register_buffer("image_pos", sincos_2d(dd, grid, grid).unsqueeze(0), persistent=False)
        self.blocks = _blocks(dd, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.norm_eps, 0.0)
        self.norm = nn.LayerNorm(dd, eps=cfg.norm_eps)
        self.apply(_init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def _restore(self, visible: torch.Tensor, mask: TokenMask | None) -> torch.Tensor:
        return visible if mask is None else unshuffle(visible, self.mask_token, mask)

    def forward(self, encoded: EncoderOutput, plan: MaskPlan | None) -> DecoderOutput:
        x = self.embed(encoded.tokens)
        cls = x[:, :1]
        n_o = encoded.n_omics
        parts = [cls]
        omics = image = None
        if n_o:
            omics = self._restore(x[:, 1 : 1 + n_o], plan.omics if plan else None)
            omics = omics + self.omics_pos.to(omics.dtype)
            parts.append(omics)
        if encoded.n_image:
            image = self._restore(x[:, 1 + n_o :], plan.image if plan else None)
            image = image + self.image_pos.to(image.dtype)
            parts.append(image)
        x = torch.cat(parts, dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        n_full_o = omics.shape[1] if omics is not None else 0
        return DecoderOutput(
            omics=x[:, 1 : 1 + n_full_o] if omics is not None else None,
            image=x[:, 1 + n_full_o :] if image is not None else None,
        )
