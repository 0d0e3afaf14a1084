"""Typed configs, overrides and their error messages."""

from __future__ import annotations

from typing import Literal

import pytest

import pmx
from pmx.config import parse_set_option


class GridLike(pmx.Component):
    kind = "tiler"
    name = "grid-like"

    class Config(pmx.ComponentConfig):
        tile_size: int = pmx.Field(256, gt=0, description="tile edge in pixels")
        magnification: float = pmx.Field(20.0, description="target objective power")
        image_format: Literal["jpeg", "png"] = pmx.Field("jpeg", description="pixel encoding")


class Train(pmx.ComponentConfig):
    lr: float = pmx.Field(1e-3, description="learning rate")
    epochs: int = pmx.Field(10, description="epochs")


class Recipe(pmx.Method):
    name = "recipe"

    class Config(pmx.ComponentConfig):
        tiler: str = pmx.Field("grid", description="tiler name")
        train: Train = pmx.Field(default_factory=Train, description="training")

    presets = {"tiny": {"train": {"epochs": 1}}, "paper": {"train": {"epochs": 80, "lr": 8e-4}}}


def test_defaults_and_overrides_are_validated():
    tiler = GridLike(tile_size="512")  # numeric strings coerce, as from the command line
    assert tiler.config.tile_size == 512
    assert GridLike().config.magnification == 20.0


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(pmx.ConfigError) as excinfo:
        GridLike(tile_sise=512)
    message = str(excinfo.value)
    assert "tiler 'grid-like'" in message
    assert "unknown key 'tile_sise'" in message
    assert "tile_size, magnification, image_format" in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [({"tile_size": "big"}, "key 'tile_size'"), ({"tile_size": -1}, "greater than 0"),
     ({"image_format": "gif"}, "'jpeg' or 'png'")],
)
def test_ill_typed_values_are_rejected(overrides, fragment):
    with pytest.raises(pmx.ConfigError, match=fragment):
        GridLike(**overrides)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("train.lr=1e-4", {"train": {"lr": 1e-4}}),
        ("train.epochs=3", {"train": {"epochs": 3}}),
        ("tiler=grid", {"tiler": "grid"}),
        ('tiler="hsv-scored"', {"tiler": "hsv-scored"}),
        ("a.b.c=true", {"a": {"b": {"c": True}}}),
        ("sizes=[1, 2]", {"sizes": [1, 2]}),
    ],
)
def test_set_option_parses_toml_literals(option, expected):
    assert parse_set_option(option) == expected


@pytest.mark.parametrize("option", ["noequals", "=3", "a..b=1"])
def test_malformed_set_option(option):
    with pytest.raises(pmx.ConfigError, match="KEY=VALUE"):
        parse_set_option(option)


def test_resolution_order_defaults_preset_file_set(tmp_path):
    assert Recipe.resolve_config("tiny").train.epochs == 1
    paper = Recipe.resolve_config("paper")
    assert (paper.train.epochs, paper.train.lr) == (80, 8e-4)
    config_file = tmp_path / "override.toml"
    config_file.write_text('tiler = "region"\n[train]\nepochs = 7\n')
    resolved = Recipe.resolve_config("paper", config_file, ["train.epochs=9"])
    assert (resolved.tiler, resolved.train.epochs, resolved.train.lr) == ("region", 9, 8e-4)


def test_nested_unknown_key_lists_the_section_keys():
    with pytest.raises(pmx.ConfigError) as excinfo:
        Recipe.resolve_config("tiny", sets=["train.lrr=1"])
    assert "unknown key 'train.lrr'; valid keys here: lr, epochs" in str(excinfo.value)


def test_unknown_preset_and_bad_file(tmp_path):
    with pytest.raises(pmx.ConfigError, match="presets: paper, small, tiny"):
        Recipe.resolve_config("huge")
    bad = tmp_path / "bad.toml"
    bad.write_text("train = [")
    with pytest.raises(pmx.ConfigError, match="bad.toml is not valid TOML"):
        Recipe.resolve_config("tiny", bad)
    with pytest.raises(pmx.ConfigError, match="does not exist"):
        Recipe.resolve_config("tiny", tmp_path / "missing.toml")
