"""Typed configs, overrides and their error messages."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import model_validator

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


def test_unknown_key_suggests_the_closest_field():
    with pytest.raises(pmx.ConfigError) as excinfo:
        GridLike(tile_sise=512)
    message = str(excinfo.value)
    assert message.startswith("invalid config for tiler 'grid-like': unknown key 'tile_sise'; "
                              "did you mean 'tile_size'?")
    assert "--set tile_size=VALUE" in message
    assert "`pmx components tiler grid-like`" in message


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    with pytest.raises(pmx.ConfigError) as excinfo:
        GridLike(colour="red")
    assert "unknown key 'colour'; valid keys here: tile_size, magnification, image_format" in str(excinfo.value)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [({"tile_size": "big"}, "tile_size = 'big': Input should be a valid integer"),
     ({"tile_size": -1}, "tile_size = -1: Input should be greater than 0 (expects int)"),
     ({"image_format": "gif"}, "image_format = 'gif': Input should be 'jpeg' or 'png'")],
)
def test_ill_typed_values_are_rejected(overrides, fragment):
    with pytest.raises(pmx.ConfigError) as excinfo:
        GridLike(**overrides)
    assert fragment in str(excinfo.value)


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


def test_nested_unknown_key_suggests_the_dotted_path():
    with pytest.raises(pmx.ConfigError) as excinfo:
        Recipe.resolve_config("tiny", sets=["train.lrr=1"])
    assert "unknown key 'train.lrr'; did you mean 'train.lr'?" in str(excinfo.value)
    with pytest.raises(pmx.ConfigError) as excinfo:  # a section's key given at the top level
        Recipe.resolve_config("tiny", sets=["epochs=3"])
    assert "unknown key 'epochs'; did you mean 'train.epochs'?" in str(excinfo.value)
    assert "`pmx components method recipe`" in str(excinfo.value)


def test_nested_wrong_type_names_the_dotted_path_value_and_type():
    with pytest.raises(pmx.ConfigError) as excinfo:
        Recipe.resolve_config("paper", sets=['train.epochs="many"'])
    message = str(excinfo.value)
    first, hint = message.splitlines()
    assert first == ("invalid config for method 'recipe' (preset paper): train.epochs = 'many': "
                     "Input should be a valid integer, unable to parse string as an integer (expects int)")
    assert hint.startswith("Fix: --set train.epochs=VALUE")


class Widths(pmx.ComponentConfig):
    hidden: int = pmx.Field(64, description="token width")
    heads: int = pmx.Field(4, description="attention heads")
    notes: list[str] = pmx.Field(["x" * 50] * 20, description="a long value that must not be dumped")

    @model_validator(mode="after")
    def _divisible(self) -> "Widths":
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
        return self


class WithModel(pmx.Method):
    name = "with-model"

    class Config(pmx.ComponentConfig):
        model: Widths = pmx.Field(default_factory=Widths, description="model")


def test_model_level_validator_error_names_the_fields_not_the_whole_input():
    with pytest.raises(pmx.ConfigError) as excinfo:
        WithModel.resolve_config("tiny", sets=["model.heads=3"])
    message = str(excinfo.value)
    first, hint = message.splitlines()
    assert first == ("invalid config for method 'with-model' (preset tiny): model: hidden=64 is not "
                     "divisible by heads=3 (model.hidden = 64, model.heads = 3)")
    assert hint == ("Fix: --set model.hidden=VALUE (or the --config file); `pmx components method "
                    "with-model` lists every field with its type and default.")
    assert "xxxx" not in message and "Value error" not in message


def test_several_problems_are_listed_one_per_line():
    with pytest.raises(pmx.ConfigError) as excinfo:
        Recipe.resolve_config("tiny", sets=["train.lr=fast", "tiler=[1]", "trian.epochs=2"])
    lines = str(excinfo.value).splitlines()
    assert lines[0] == "invalid config for method 'recipe' (preset tiny):"
    assert lines[1].startswith("  - tiler = [1]: Input should be a valid string")
    assert lines[2].startswith("  - train.lr = 'fast': Input should be a valid number")
    assert lines[3] == "  - unknown key 'trian'; did you mean 'train'?"
    assert lines[4].startswith("Fix: --set tiler=VALUE")


def test_unknown_preset_and_bad_file(tmp_path):
    with pytest.raises(pmx.ConfigError, match="presets: paper, small, tiny"):
        Recipe.resolve_config("huge")
    bad = tmp_path / "bad.toml"
    bad.write_text("train = [")
    with pytest.raises(pmx.ConfigError, match="bad.toml is not valid TOML"):
        Recipe.resolve_config("tiny", bad)
    with pytest.raises(pmx.ConfigError, match="does not exist"):
        Recipe.resolve_config("tiny", tmp_path / "missing.toml")
