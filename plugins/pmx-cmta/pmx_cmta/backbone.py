"""The CMTA backbone: two parallel encoder-decoder branches bridged by cross-modal attention.

pathology bag [M, 1024] -> Linear+ReLU+Dropout x2 -> tokens [M, d] -> encoder (PPEG) -> p, P
gene families [6 x w_i] -> SNN blocks per family  -> tokens [6, d] -> encoder        -> g, G
P attends to G -> [M, d] -> decoder (PPEG) -> p_hat      (pathology translated from genomics)
G attends to P -> [6, d] -> decoder        -> g_hat      (genomics translated from pathology)
fused = MLP(concat((p + p_hat) / 2, (g + g_hat) / 2))   -> a survival head (discrete-time)

It is registered as an ``encoder`` (pmx's kind for trainable method backbones); the alignment
loss is the ``cmta-alignment`` objective and the survival head is pmx's ``discrete-time`` head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from pydantic import model_validator
from torch import nn

import pmx
from pmx.errors import DataError

from .layers import CrossAttention, TokenEncoder, init_weights, snn_block
from .sampling import subsample_tiles


@dataclass
class CMTAOutputs:
    """What one forward pass produces; every tensor has the batch as its first dimension."""

    fused: torch.Tensor  #: [b, fusion_hidden[-1]]: the survival head's input
    p: torch.Tensor  #: [b, d] intra-modal pathology class token (encoder)
    p_hat: torch.Tensor  #: [b, d] cross-modal pathology representation (decoder, from genomics)
    g: torch.Tensor  #: [b, d] intra-modal genomics class token (encoder)
    g_hat: torch.Tensor  #: [b, d] cross-modal genomics representation (decoder, from pathology)
    attention_path_to_gen: torch.Tensor | None = None  #: [b, M, 6] tiles attending to families
    attention_gen_to_path: torch.Tensor | None = None  #: [b, 6, M] families attending to tiles
    tiles_used: int = 0  #: bag size after optional training-time subsampling


class CMTABackbone(pmx.Component, nn.Module):
    """CMTA backbone: Nystrom encoders/decoders with PPEG, two-way cross-modal attention, fusion MLP."""

    kind: ClassVar[str] = "encoder"
    name: ClassVar[str] = "cmta-backbone"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        path_input_dim: int = pmx.Field(1024, ge=1, description="width of the cached tile embeddings (resnet50-trunc: 1024)")
        path_hidden: list[int] = pmx.Field(
            [256, 256], min_length=1,
            description="pathology FC widths, each Linear+ReLU+Dropout (authors' 'small': 1024->256->256)",
        )
        path_dropout: float = pmx.Field(0.25, ge=0.0, lt=1.0, description="dropout after each pathology FC layer")
        omic_sizes: list[int] = pmx.Field(
            [100, 200, 300, 400, 500, 600], min_length=1,
            description="input width of each gene-family group (one genomic token each); set from the selector",
        )
        omic_hidden: list[int] = pmx.Field(
            [1024, 256], min_length=1,
            description="SNN block widths per family (authors' 'small': w->1024->256)",
        )
        omic_dropout: float = pmx.Field(0.25, ge=0.0, lt=1.0, description="AlphaDropout rate of the SNN blocks")
        heads: int = pmx.Field(8, ge=1, description="Nystrom attention heads (head width = d / heads)")
        landmarks: int = pmx.Field(128, ge=1, description="Nystrom landmarks (segment means); exact attention when >= tokens")
        pinv_iterations: int = pmx.Field(6, ge=1, description="iterations of the Moore-Penrose pseudo-inverse")
        residual_kernel: int = pmx.Field(33, ge=1, description="kernel of the depthwise residual conv on the values (odd)")
        attention_dropout: float = pmx.Field(0.1, ge=0.0, lt=1.0, description="dropout on the Nystrom output projection")
        exact_short_attention: bool = pmx.Field(
            False,
            description="sequences with no more tokens than landmarks: exact softmax attention (the Nystrom limit) instead of the iterative pseudo-inverse; faster, no parameters change (paper: false)",
        )
        fusion_hidden: list[int] = pmx.Field(
            [256, 256], min_length=1, description="fusion MLP widths after concat (each Linear+ReLU)"
        )
        ppeg: bool = pmx.Field(True, description="PPEG in the pathology encoder and decoder (false = Table 2 'w/o PPEG')")
        cross_attention: bool = pmx.Field(
            True,
            description="cross-modal attention before the decoders (false = Table 2 ablation: each decoder reads the other modality's encoder tokens directly)",
        )
        max_train_tiles: int = pmx.Field(
            0, ge=0, description="randomly keep at most K tiles of a bag in training (0 = all); evaluation uses full bags"
        )

        @model_validator(mode="after")
        def _widths_agree(self) -> "CMTABackbone.Config":
            if self.path_hidden[-1] != self.omic_hidden[-1]:
                raise ValueError(
                    f"path_hidden[-1] ({self.path_hidden[-1]}) and omic_hidden[-1] ({self.omic_hidden[-1]}) "
                    "must be equal: both branches share the token width d"
                )
            if self.path_hidden[-1] % self.heads:
                raise ValueError(f"token width {self.path_hidden[-1]} is not divisible by heads={self.heads}")
            if self.residual_kernel % 2 == 0:
                raise ValueError(f"residual_kernel must be odd, got {self.residual_kernel}")
            if any(w < 1 for w in [*self.path_hidden, *self.omic_sizes, *self.omic_hidden, *self.fusion_hidden]):
                raise ValueError("every width must be >= 1")
            return self

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        c = self.config
        d = c.path_hidden[-1]
        self.dim = d
        self.out_dim = c.fusion_hidden[-1]

        widths = [c.path_input_dim, *c.path_hidden]
        path_layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            path_layers += [nn.Linear(w_in, w_out), nn.ReLU(), nn.Dropout(c.path_dropout)]
        self.path_fc = nn.Sequential(*path_layers)

        self.omic_fc = nn.ModuleList()
        for size in c.omic_sizes:
            widths = [size, *c.omic_hidden]
            self.omic_fc.append(
                nn.Sequential(*(snn_block(a, b, c.omic_dropout) for a, b in zip(widths[:-1], widths[1:])))
            )

        attention = dict(
            heads=c.heads, landmarks=c.landmarks, pinv_iterations=c.pinv_iterations,
            residual=True, residual_kernel=c.residual_kernel, dropout=c.attention_dropout,
            exact_short=c.exact_short_attention,
        )
        self.path_encoder = TokenEncoder(d, ppeg=c.ppeg, **attention)
        self.gen_encoder = TokenEncoder(d, ppeg=False, **attention)
        self.path_from_gen: CrossAttention | None = None
        self.gen_from_path: CrossAttention | None = None
        if c.cross_attention:
            self.path_from_gen = CrossAttention(d)
            self.gen_from_path = CrossAttention(d)
        self.path_decoder = TokenEncoder(d, ppeg=c.ppeg, **attention)
        self.gen_decoder = TokenEncoder(d, ppeg=False, **attention)

        widths = [2 * d, *c.fusion_hidden]
        fusion: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            fusion += [nn.Linear(w_in, w_out), nn.ReLU()]
        self.fusion = nn.Sequential(*fusion)
        self.apply(init_weights)

    # -- inputs --------------------------------------------------------------------------
    def _bag(self, path: torch.Tensor) -> torch.Tensor:
        if path.ndim == 2:
            path = path.unsqueeze(0)
        width = self.config.path_input_dim
        if path.ndim != 3 or path.shape[-1] != width:
            raise DataError(
                f"cmta: a pathology bag must be [tiles, {width}] or [batch, tiles, {width}]; got "
                f"{tuple(path.shape)}. Set model.path_input_dim to the tile encoder's width."
            )
        if path.shape[1] == 0:
            raise DataError("cmta: empty pathology bag (a patient without tiles); re-tile the slide or drop the patient")
        return path

    def _families(self, omics: torch.Tensor | Sequence[torch.Tensor], batch: int) -> list[torch.Tensor]:
        sizes = list(self.config.omic_sizes)
        if isinstance(omics, torch.Tensor):
            flat = omics.unsqueeze(0) if omics.ndim == 1 else omics
            if flat.ndim != 2 or flat.shape[-1] != sum(sizes):
                raise DataError(
                    f"cmta: concatenated gene-family vector must have {sum(sizes)} values "
                    f"(model.omic_sizes={sizes}); got shape {tuple(omics.shape)}"
                )
            groups = list(torch.split(flat, sizes, dim=-1))
        else:
            groups = [g.unsqueeze(0) if g.ndim == 1 else g for g in omics]
        if len(groups) != len(sizes) or any(g.ndim != 2 or g.shape[-1] != s for g, s in zip(groups, sizes)):
            got = [tuple(g.shape) for g in groups]
            raise DataError(
                f"cmta: expected {len(sizes)} gene-family vectors of widths {sizes}; got shapes {got}. "
                "model.omic_sizes must match the gene-families selector's output."
            )
        if any(g.shape[0] != batch for g in groups):
            raise DataError(f"cmta: omics batch size differs from the pathology batch size {batch}")
        return groups

    # -- forward -------------------------------------------------------------------------
    def forward(self, path: torch.Tensor, omics: torch.Tensor | Sequence[torch.Tensor]) -> CMTAOutputs:
        """``path``: tile embeddings [tiles, D] or [batch, tiles, D] (batch > 1 needs equal bag
        sizes); ``omics``: one vector per gene family ([w_i] or [batch, w_i]) or their concatenation."""
        bag = self._bag(path)
        if self.training and self.config.max_train_tiles:
            bag = subsample_tiles(bag, self.config.max_train_tiles, dim=1)
        families = self._families(omics, bag.shape[0])

        path_tokens = self.path_fc(bag)  # [b, M, d]
        gen_tokens = torch.stack([fc(x) for fc, x in zip(self.omic_fc, families)], dim=1)  # [b, 6, d]

        p, path_inst = self.path_encoder(path_tokens)
        g, gen_inst = self.gen_encoder(gen_tokens)

        attn_pg = attn_gp = None
        if self.path_from_gen is not None and self.gen_from_path is not None:
            path_translated, attn_pg = self.path_from_gen(path_inst, gen_inst)  # [b, M, d]
            gen_translated, attn_gp = self.gen_from_path(gen_inst, path_inst)  # [b, 6, d]
        else:  # ablation: each decoder translates the other modality's tokens without the bridge
            path_translated, gen_translated = gen_inst, path_inst
        p_hat, _ = self.path_decoder(path_translated)
        g_hat, _ = self.gen_decoder(gen_translated)

        fused = self.fusion(torch.cat([(p + p_hat) / 2, (g + g_hat) / 2], dim=-1))
        return CMTAOutputs(
            fused=fused, p=p, p_hat=p_hat, g=g, g_hat=g_hat,
            attention_path_to_gen=attn_pg, attention_gen_to_path=attn_gp, tiles_used=int(bag.shape[1]),
        )

    # -- introspection -------------------------------------------------------------------
    def parameter_breakdown(self) -> dict[str, int]:
        """Trainable parameters per part (what ``--dry-run`` prints)."""
        parts = {
            "pathology_fc": self.path_fc,
            "genomics_snn": self.omic_fc,
            "pathology_encoder": self.path_encoder,
            "genomics_encoder": self.gen_encoder,
            "cross_attention": nn.ModuleList([m for m in (self.path_from_gen, self.gen_from_path) if m is not None]),
            "pathology_decoder": self.path_decoder,
            "genomics_decoder": self.gen_decoder,
            "fusion_mlp": self.fusion,
        }
        return {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
