"""Optimizer groups, layer-wise decay, the per-step schedule and optimizer-state round trips."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pmx.training import TrainConfig, TrainTask, WarmupCosineSchedule, build_optimizer, lr_at, param_groups
from pmx.training.checkpoint import optimizer_state_join, optimizer_state_split


class TinyViT(TrainTask):
    """timm-like names: cls_token, pos_embed, patch_embed, blocks.i, norm, head."""

    def __init__(self, depth: int = 3, dim: int = 4):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = nn.Linear(2, dim)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim)) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def losses(self, batch):
        x = self.patch_embed(batch)
        for block in self.blocks:
            x = block(x)
        return {"out": self.head(self.norm(x)).pow(2).mean()}


def _where(groups, name_of, wanted):
    for group in groups:
        if any(name_of[id(p)] == wanted for p in group["params"]):
            return group
    raise AssertionError(wanted)


def test_weight_decay_groups_exempt_biases_norms_and_tokens() -> None:
    model = TinyViT()
    groups = param_groups(model, weight_decay=0.05, no_weight_decay=model.no_weight_decay())
    name_of = {id(p): n for n, p in model.named_parameters()}
    decayed = {name_of[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {"patch_embed.weight", "blocks.0.1.weight", "blocks.1.1.weight",
                       "blocks.2.1.weight", "head.weight"}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_layer_wise_lr_decay_scales() -> None:
    model = TinyViT(depth=3)
    groups = param_groups(model, weight_decay=0.0, layer_decay=0.5)
    name_of = {id(p): n for n, p in model.named_parameters()}
    # L = 3 blocks: embeddings 0.5^4, block i 0.5^(3 - i), head and final norm 1
    expected = {"cls_token": 0.5**4, "patch_embed.weight": 0.5**4, "blocks.0.1.weight": 0.5**3,
                "blocks.2.0.bias": 0.5**1, "norm.weight": 1.0, "head.weight": 1.0}
    for name, scale in expected.items():
        assert _where(groups, name_of, name)["lr_scale"] == pytest.approx(scale), name
    optimizer = build_optimizer(model, TrainConfig(lr=0.1, layer_decay=0.5))
    WarmupCosineSchedule(optimizer, base_lr=0.1, total_steps=10, schedule="constant")
    rates = sorted({round(g["lr"], 8) for g in optimizer.param_groups})
    assert rates == [round(0.1 * 0.5**k, 8) for k in (4, 3, 2, 1, 0)]


def test_frozen_parameters_are_left_out() -> None:
    model = TinyViT()
    model.patch_embed.requires_grad_(False)
    groups = param_groups(model, weight_decay=0.1)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters())) - 2


def test_warmup_cosine_values() -> None:
    kw = dict(base_lr=1.0, total_steps=110, warmup_steps=10, min_lr=0.1)
    assert [lr_at(s, **kw) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, **kw) == pytest.approx(0.1) and lr_at(500, **kw) == pytest.approx(0.1)
    assert lr_at(50, **{**kw, "schedule": "constant"}) == 1.0


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_optimizer_state_survives_the_json_safetensors_split(name: str, tmp_path) -> None:
    def make():
        torch.manual_seed(0)
        model = TinyViT()
        opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.01, weight_decay=0.1, layer_decay=0.8))
        return model, opt

    def steps(model, opt, n, seed):
        g = torch.Generator().manual_seed(seed)
        for _ in range(n):
            opt.zero_grad()
            model.losses(torch.randn(3, 5, 2, generator=g))["out"].backward()
            opt.step()

    a, opt_a = make()
    steps(a, opt_a, 3, 0)
    tensors, plain = optimizer_state_split(opt_a)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    import json

    from safetensors.torch import load_file, save_file

    save_file(tensors, str(tmp_path / "optimizer.safetensors"))
    tensors = load_file(str(tmp_path / "optimizer.safetensors"))
    plain = json.loads(json.dumps(plain))  # must be plain JSON
    b, opt_b = make()
    b.load_state_dict(a.state_dict())
    opt_b.load_state_dict(optimizer_state_join(tensors, plain))
    steps(a, opt_a, 2, 1)
    steps(b, opt_b, 2, 1)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), key


def test_train_config_is_a_method_section_with_set_overrides() -> None:
    import pmx
    from pmx.components import check_component_class
    from pmx.errors import ConfigError

    class Recipe(pmx.Method):
        name = "training-config-probe"

        class Config(pmx.ComponentConfig):
            finetune: TrainConfig = pmx.Field(default_factory=TrainConfig, description="fine-tuning")

    check_component_class(Recipe)  # every field documented, defaults valid
    config = Recipe.resolve_config(None, None, ["finetune.lr=1e-4", "finetune.betas=[0.9, 0.95]"])
    assert config.finetune.lr == 1e-4 and config.finetune.betas == (0.9, 0.95)
    with pytest.raises(ConfigError, match=r"unknown key .finetune.warmup.; did you mean .finetune.warmup_(steps|epochs)"):
        Recipe.resolve_config(None, None, ["finetune.warmup=3"])
