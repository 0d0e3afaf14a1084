"""The two trainable ContraMAE models, as :class:`pmx.training.TrainTask` s.

* :class:`ContraMAEPretrainModel` - masked encoder + decoder + PGC / GR / PR (paper II-A/B).
* :class:`ContraMAESurvivalModel` - the same encoder without masking or decoder, pooled omics and
  image encodings into the ``concat-cox`` head (paper II-C).

Batches are dicts: ``image`` ``[B, 3, H, W]`` (uint8 regions, augmented/normalised by the
model's :class:`~pmx_contramae.augment.RegionAugment`; or float already normalised to the model
size when the model has no augment), ``omics`` ``[B, n_omics, omics_dim]`` float, and for
fine-tuning ``time`` / ``event``. Both models use pmx's *group* contract (``features`` +
``group_losses``): PGC and the Cox loss need the whole batch, so with gradient accumulation or
several processes the trainer computes them over the full group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from pmx.errors import ConfigError, DataError
from pmx.training.task import TensorDict, TrainTask

from .augment import RegionAugment
from .backbone import BackboneConfig, ContraMAEBackbone, ContraMAEDecoder, DecoderOutput, EncoderOutput
from .config import AugmentSection, HeadSection, Modalities, ObjectivesSection
from .head import ConcatCoxHead
from .masking import MaskPlan, sample_mask_plan
from .objectives import GenomicsReconstruction, PathologyGenomicsContrast, PathologyReconstruction

__all__ = [
    "ContraMAEPretrainModel",
    "ContraMAESurvivalModel",
    "PretrainOutputs",
    "count_parameters",
    "make_augment",
]


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def make_augment(size: int, section: AugmentSection | None) -> RegionAugment:
    section = section or AugmentSection()
    if section.scale_min > section.scale_max or section.ratio_min > section.ratio_max:
        raise ConfigError("augment: scale_min/ratio_min must not exceed scale_max/ratio_max")
    return RegionAugment(size, scale=(section.scale_min, section.scale_max),
                         ratio=(section.ratio_min, section.ratio_max), flip=section.flip)


def _uses(modalities: str) -> tuple[bool, bool]:
    """(omics, images) used by a modality setting."""
    if modalities not in ("both", "omics", "pathology"):
        raise ConfigError(f"modalities must be both, omics or pathology, got {modalities!r}")
    return modalities != "pathology", modalities != "omics"


class _ContraMAETask(TrainTask):
    """Input handling and optimiser grouping shared by both models."""

    backbone: ContraMAEBackbone
    augment: RegionAugment | None
    use_omics: bool
    use_images: bool
    #: random crops / flips on training batches (validation and prediction always see the whole region)
    augment_train: bool = True

    def inputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(images ready for the encoder, omics) for the modalities in use."""
        images = omics = None
        if self.use_images:
            if "image" not in batch:
                raise DataError("the batch has no 'image' (representative regions); modalities includes pathology")
            images = batch["image"]
            if self.augment is not None:
                images = self.augment(images, train=self.training and self.augment_train)
            elif images.dtype == torch.uint8:
                raise DataError("uint8 regions need the model's augment (RegionAugment) to be normalised")
        if self.use_omics:
            if "omics" not in batch:
                raise DataError("the batch has no 'omics'; modalities includes omics")
            omics = batch["omics"].float()
        return images, omics

    def no_weight_decay(self) -> set[str]:
        return {f"backbone.{name}" for name in self.backbone.no_weight_decay()}

    def layer_id(self, name: str) -> int | None:
        if name.startswith("backbone."):
            return self.backbone.layer_id(name[len("backbone."):])
        return self.backbone.config.depth + 1

    def num_layers(self) -> int | None:
        return self.backbone.config.depth


@dataclass
class PretrainOutputs:
    plan: MaskPlan
    encoded: EncoderOutput
    decoded: DecoderOutput | None
    omics_pred: torch.Tensor | None  #: [B, n_omics, omics_dim] (all tokens; the loss reads the masked one)
    pixel_pred: torch.Tensor | None  #: [B, n_masked, p * p * C]: the masked patches (plan.image.masked) only


class ContraMAEPretrainModel(_ContraMAETask):
    """Masked cross-modal encoder, decoder and the PGC / GR / PR objectives."""

    def __init__(
        self,
        backbone: ContraMAEBackbone,
        *,
        pgc: PathologyGenomicsContrast | None = None,
        gr: GenomicsReconstruction | None = None,
        pr: PathologyReconstruction | None = None,
        mask_ratio: float = 0.75,
        omics_masked: int = 1,
        modalities: Modalities = "both",
        augment: RegionAugment | None = None,
        weights: Mapping[str, float] | None = None,
    ):
        super().__init__()
        cfg = backbone.config
        self.use_omics, self.use_images = _uses(modalities)
        if pgc is not None and modalities != "both":
            raise ConfigError("the PGC objective contrasts omics with images: it needs modalities=both")
        if gr is not None and not self.use_omics:
            raise ConfigError("the GR objective reconstructs omics: modalities=pathology has none")
        if pr is not None and not self.use_images:
            raise ConfigError("the PR objective reconstructs image patches: modalities=omics has none")
        if pgc is None and gr is None and pr is None:
            raise ConfigError("pretraining needs at least one objective (objectives.pgc / gr / pr); "
                              "for no pretraining set pretrain.epochs=0")
        if gr is not None and not 1 <= omics_masked < cfg.n_omics:
            raise ConfigError(f"GR needs 1..{cfg.n_omics - 1} masked omics tokens per sample, got omics_masked={omics_masked}")
        if not 0 <= omics_masked < cfg.n_omics:
            raise ConfigError(f"omics_masked must be 0..{cfg.n_omics - 1}, got {omics_masked}")
        if pr is not None and int(backbone.num_patches * (1 - mask_ratio)) >= backbone.num_patches:
            raise ConfigError(f"PR needs masked patches: mask_ratio {mask_ratio} masks none of {backbone.num_patches}")
        for name, objective in (("gr", gr), ("pr", pr)):
            if objective is not None and objective.config.in_dim != cfg.decoder_dim:
                raise ConfigError(f"objective {name}: in_dim {objective.config.in_dim} != model.decoder_dim {cfg.decoder_dim}")
        if gr is not None and gr.config.omics_dim != cfg.omics_dim:
            raise ConfigError(f"objective gr: omics_dim {gr.config.omics_dim} != model.omics_dim {cfg.omics_dim}")
        if pr is not None and (pr.config.patch_size, pr.config.in_chans) != (cfg.patch_size, cfg.in_chans):
            raise ConfigError("objective pr: patch_size / in_chans differ from the backbone's")
        self.backbone = backbone
        self.decoder = ContraMAEDecoder(cfg) if (gr is not None or pr is not None) else None
        self.pgc, self.gr, self.pr = pgc, gr, pr
        self.mask_ratio = float(mask_ratio)
        self.omics_masked = int(omics_masked)
        self.modalities = modalities
        self.augment = augment
        self.loss_weights = dict(weights or {})

    @classmethod
    def build(cls, model: BackboneConfig, objectives: ObjectivesSection | None = None, *,
              modalities: Modalities = "both", augment: AugmentSection | None = None,
              drop_path: float = 0.0, with_augment: bool = True) -> "ContraMAEPretrainModel":
        """The pretraining model of a method config (objectives off where the modality is absent)."""
        obj = objectives or ObjectivesSection()
        use_omics, use_images = _uses(modalities)
        backbone = ContraMAEBackbone(model, drop_path=drop_path)
        cfg = backbone.config
        pgc = (PathologyGenomicsContrast(init_temperature=obj.init_temperature, max_logit_scale=obj.max_logit_scale)
               if obj.pgc and use_omics and use_images else None)
        gr = (GenomicsReconstruction(in_dim=cfg.decoder_dim, omics_dim=cfg.omics_dim)
              if obj.gr and use_omics else None)
        pr = (PathologyReconstruction(in_dim=cfg.decoder_dim, patch_size=cfg.patch_size, in_chans=cfg.in_chans,
                                      norm_pix=obj.norm_pix)
              if obj.pr and use_images else None)
        return cls(
            backbone, pgc=pgc, gr=gr, pr=pr, mask_ratio=obj.mask_ratio, omics_masked=obj.omics_masked,
            modalities=modalities, augment=make_augment(cfg.image_size, augment) if with_augment and use_images else None,
            weights={"pgc": obj.pgc_weight, "gr": obj.gr_weight, "pr": obj.pr_weight},
        )

    def sample_plan(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> MaskPlan:
        cfg = self.backbone.config
        return sample_mask_plan(
            batch,
            n_omics=cfg.n_omics if self.use_omics else 0,
            n_patches=self.backbone.num_patches if self.use_images else 0,
            omics_masked=self.omics_masked,
            mask_ratio=self.mask_ratio,
            device=device,
            generator=generator,
        )

    def forward_pretrain(self, images: torch.Tensor | None, omics: torch.Tensor | None,
                         plan: MaskPlan | None = None, generator: torch.Generator | None = None) -> PretrainOutputs:
        """Mask, encode the visible tokens, decode everything, predict omics and pixels."""
        ref = images if images is not None else omics
        assert ref is not None
        if plan is None:
            plan = self.sample_plan(ref.shape[0], ref.device, generator)
        encoded = self.backbone(images, omics, plan)
        decoded = self.decoder(encoded, plan) if self.decoder is not None else None
        omics_pred = self.gr(decoded.omics) if self.gr is not None and decoded is not None else None
        pixel_pred = None
        if self.pr is not None and decoded is not None and plan.image is not None:
            pixel_pred = self.pr.predict_masked(decoded.image, plan.image.masked)
        return PretrainOutputs(plan, encoded, decoded, omics_pred, pixel_pred)

    def features(self, batch: Mapping[str, Any]) -> TensorDict:
        images, omics = self.inputs(batch)
        out = self.forward_pretrain(images, omics)
        feats: TensorDict = {}
        if self.pgc is not None:
            feats["omics_repr"] = out.encoded.omics_mean()
            feats["image_repr"] = out.encoded.image_mean()
        if self.gr is not None:
            assert out.omics_pred is not None and out.plan.omics is not None and omics is not None
            feats["gr"] = self.gr.per_sample(out.omics_pred, omics, out.plan.omics.mask)
        if self.pr is not None:
            assert out.pixel_pred is not None and out.plan.image is not None and images is not None
            feats["pr"] = self.pr.per_sample_masked(out.pixel_pred, images, out.plan.image.masked)
        return feats

    def group_losses(self, features: TensorDict) -> TensorDict:
        losses: TensorDict = {}
        if self.pgc is not None:
            losses["pgc"] = self.pgc(features["omics_repr"], features["image_repr"])
        if self.gr is not None:
            losses["gr"] = features["gr"].mean()
        if self.pr is not None:
            losses["pr"] = features["pr"].mean()
        return losses

    def losses(self, batch: Mapping[str, Any]) -> TensorDict:
        return self.group_losses(self.features(batch))

    def parameter_breakdown(self) -> dict[str, int]:
        parts = {"encoder": count_parameters(self.backbone)}
        if self.decoder is not None:
            parts["decoder"] = count_parameters(self.decoder)
        for name in ("pgc", "gr", "pr"):
            module = getattr(self, name)
            if module is not None:
                parts[f"objective_{name}"] = count_parameters(module)
        return parts


class ContraMAESurvivalModel(_ContraMAETask):
    """Unmasked encoder -> mean omics / mean image encodings -> ``concat-cox`` risk."""

    def __init__(self, backbone: ContraMAEBackbone, head: ConcatCoxHead, *, modalities: Modalities = "both",
                 augment: RegionAugment | None = None):
        super().__init__()
        self.use_omics, self.use_images = _uses(modalities)
        parts = int(self.use_omics) + int(self.use_images)
        d = backbone.config.embed_dim
        if head.config.parts != parts or head.config.in_dim != parts * d:
            raise ConfigError(
                f"head concat-cox: needs parts={parts}, in_dim={parts * d} for modalities={modalities} "
                f"(got parts={head.config.parts}, in_dim={head.config.in_dim})")
        # The code pools the block outputs and normalises each pooled vector with one shared
        # LayerNorm (the head's); the encoder's own final norm is not used when fine-tuning.
        backbone.norm = nn.Identity()
        self.backbone = backbone
        self.head = head
        self.modalities = modalities
        self.augment = augment

    @classmethod
    def build(cls, model: BackboneConfig, head: HeadSection | None = None, *, modalities: Modalities = "both",
              augment: AugmentSection | None = None, drop_path: float = 0.1,
              with_augment: bool = True) -> "ContraMAESurvivalModel":
        head = head or HeadSection()
        use_omics, use_images = _uses(modalities)
        backbone = ContraMAEBackbone(model, drop_path=drop_path)
        parts = int(use_omics) + int(use_images)
        cox = ConcatCoxHead(in_dim=parts * backbone.config.embed_dim, parts=parts, norm_eps=backbone.config.norm_eps,
                            ties=head.ties, bound=head.bound, dropout=head.dropout)
        aug = make_augment(backbone.config.image_size, augment) if use_images and with_augment else None
        model = cls(backbone, cox, modalities=modalities, augment=aug)
        model.augment_train = augment.finetune if augment is not None else True
        return model

    def representations(self, images: torch.Tensor | None, omics: torch.Tensor | None) -> list[torch.Tensor]:
        """[mean omics encodings, mean image encodings] (the modalities in use), before the head's norm."""
        encoded = self.backbone(images, omics)
        reps = []
        if self.use_omics:
            reps.append(encoded.omics_mean())
        if self.use_images:
            reps.append(encoded.image_mean())
        return reps

    def risk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        images, omics = self.inputs(batch)
        return self.head(*self.representations(images, omics))

    def features(self, batch: Mapping[str, Any]) -> TensorDict:
        return {"risk": self.risk(batch), "time": batch["time"], "event": batch["event"]}

    def group_losses(self, features: TensorDict) -> TensorDict:
        return {"cox": self.head.loss(features["risk"].float(), features["time"], features["event"])}

    def losses(self, batch: Mapping[str, Any]) -> TensorDict:
        return self.group_losses(self.features(batch))

    def predict(self, batch: Mapping[str, Any]) -> TensorDict:
        """Risk, plus ``time`` / ``event`` / ``index`` (the patient's row) passed through, so
        predictions gathered from several processes can be matched back to patients."""
        out = {"risk": self.risk(batch)}
        for key in ("time", "event", "index"):
            if key in batch:
                out[key] = batch[key]
        return out

    def metrics(self, outputs: TensorDict) -> dict[str, float]:
        """Harrell's C of the split (NaN when it has no comparable pair)."""
        from pmx.survival.metrics import harrell_c

        if "time" not in outputs or "event" not in outputs:
            return {}
        try:
            value = harrell_c(outputs["time"].numpy(), outputs["event"].numpy().astype(bool), outputs["risk"].numpy())
        except DataError:
            value = float("nan")
        return {"c_index": float(value)}

    def parameter_breakdown(self) -> dict[str, int]:
        return {"encoder": count_parameters(self.backbone), "head": count_parameters(self.head)}
