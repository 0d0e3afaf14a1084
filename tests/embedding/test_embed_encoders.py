"""Built-in tile encoders: shapes, determinism, weights files, fingerprints and error paths."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

import pmx
from pmx.encoders import RANDOM_INIT_WARNING, ResNet50Trunc, ViTB16, ViTS16, weights_env_var
from pmx.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch):
    """Tests must not pick up weights from the developer's environment."""
    for var in ("PMX_WEIGHTS_DIR", weights_env_var("resnet50-trunc"), weights_env_var("vit-s16"),
                weights_env_var("vit-b16")):
        monkeypatch.delenv(var, raising=False)


def _tiles(n: int = 2, size: int = 256, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=generator)


def _random(cls, **overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = cls(random_init=True, **overrides)
        encoder.module  # noqa: B018 - build now, inside the warning filter
    return encoder


class _Payload:
    """A pickled object that a weights-only load must refuse."""


def _full_resnet50_state(seed: int) -> dict[str, torch.Tensor]:
    """A complete timm ResNet-50 state dict (with layer4 and fc) with random weights and
    non-trivial batch-norm statistics, as a real ImageNet checkpoint would have."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("resnet50", pretrained=False)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean"):
            state[key] = torch.randn_like(value) * 0.1
        elif key.endswith("running_var"):
            state[key] = torch.rand_like(value) + 0.5
    return state


def test_builtins_are_registered_encoders(fresh_host):
    registry = pmx.get_registry()
    for name in ("resnet50-trunc", "vit-s16", "vit-b16"):
        cls = registry.get("encoder", name)
        assert cls.kind == "encoder"
    assert ResNet50Trunc.Config().input_size == 256
    assert ViTS16.Config().input_size == 224


@pytest.mark.parametrize("cls, dim", [(ResNet50Trunc, 1024), (ViTS16, 384), (ViTB16, 768)])
def test_output_width(cls, dim):
    tiles = _tiles(2, size=64)
    encoder = _random(cls, input_size=64)  # the width does not depend on the input size
    out = encoder.encode(tiles)
    assert out.shape == (2, dim) and out.dtype == torch.float32
    assert encoder.embed_dim == dim
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # different tiles, different vectors
    assert torch.equal(out, encoder.encode(tiles))  # same input, same output


def test_random_init_is_deterministic_per_seed():
    tiles = _tiles(2, size=64)
    a, b, c = (_random(ViTS16, input_size=64, seed=s) for s in (0, 0, 1))
    out = a.encode(tiles)
    assert torch.equal(out, b.encode(tiles))
    assert a.fingerprint == b.fingerprint
    assert not torch.allclose(out, c.encode(tiles))
    assert c.fingerprint != a.fingerprint


def test_resnet_truncation_matches_timm_feature_map(tmp_path):
    """resnet50-trunc = mean over the layer3 feature map of timm's ResNet-50 (1024 channels)."""
    import timm
    from safetensors.torch import save_file

    state = _full_resnet50_state(seed=3)
    path = tmp_path / "rn50.safetensors"
    save_file(state, str(path))
    encoder = ResNet50Trunc(weights=str(path), input_size=128)

    reference = timm.create_model("resnet50", pretrained=False, features_only=True,
                                  out_indices=(3,))
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith(("layer4", "fc"))})
    reference.eval()
    tiles = _tiles(2, size=128, seed=5)
    x = tiles.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = reference((x - mean) / std)[0].mean(dim=(2, 3))
    got = encoder.encode(tiles)
    assert expected.shape == (2, 1024)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert encoder.lineage()["random_init"] is False
    assert encoder.lineage()["warnings"] == []
    assert encoder.lineage()["weights_sha256"] == encoder.weights_sha256


def test_fingerprint_follows_weights_content_not_path(tmp_path):
    from safetensors.torch import save_file

    module = _random(ViTS16).module
    first = tmp_path / "a.safetensors"
    save_file(module.state_dict(), str(first))
    fp_first = ViTS16(weights=str(first)).fingerprint

    moved = tmp_path / "elsewhere" / "b.safetensors"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    assert ViTS16(weights=str(moved)).fingerprint == fp_first  # same bytes, another path

    other = _random(ViTS16, seed=9).module
    save_file(other.state_dict(), str(first))  # new content at the same path
    assert ViTS16(weights=str(first)).fingerprint != fp_first
    assert ViTS16(weights=str(moved), dtype="float16").fingerprint != fp_first


def test_vit_round_trip_and_torch_checkpoint_wrappers(tmp_path):
    source = _random(ViTS16, seed=4)
    tiles = _tiles(2, size=224)
    expected = source.encode(tiles)
    state = source.module.state_dict()
    # a DDP/DINO-style checkpoint: nested under "state_dict", every key prefixed with "module."
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    path = tmp_path / "vits.pth"
    torch.save(wrapped, path)
    loaded = ViTS16(weights=str(path))
    torch.testing.assert_close(loaded.encode(tiles), expected)


def test_weights_found_through_environment(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    module = _random(ViTS16, seed=2).module
    save_file(module.state_dict(), str(tmp_path / "vit-s16.safetensors"))
    monkeypatch.setenv("PMX_WEIGHTS_DIR", str(tmp_path))
    encoder = ViTS16()
    assert encoder.weights_path == (tmp_path / "vit-s16.safetensors").resolve()
    assert encoder.lineage()["weights_source"] == "$PMX_WEIGHTS_DIR"

    specific = tmp_path / "specific.safetensors"
    shutil.copy(tmp_path / "vit-s16.safetensors", specific)
    monkeypatch.setenv(weights_env_var("vit-s16"), str(specific))
    assert ViTS16().weights_path == specific.resolve()  # per-encoder variable wins over the dir


def test_random_init_is_recorded_as_a_warning():
    with pytest.warns(UserWarning, match="random initialisation"):
        encoder = ViTS16(random_init=True)
        encoder.module  # noqa: B018
    lineage = encoder.lineage()
    assert lineage["random_init"] is True and lineage["weights"] is None
    assert lineage["warnings"] == [RANDOM_INIT_WARNING]


def test_no_weights_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"no weights file.*PMX_WEIGHTS_RESNET50_TRUNC.*random_init"):
        ResNet50Trunc().fingerprint  # noqa: B018


def test_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ConfigError, match="nope.safetensors.*does not exist"):
        ResNet50Trunc(weights=str(missing)).module  # noqa: B018


def test_mismatched_weights_file_names_the_keys(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vit.safetensors"
    save_file(_random(ViTS16).module.state_dict(), str(path))
    with pytest.raises(ConfigError, match=r"does not fit encoder 'resnet50-trunc'.*missing key"):
        ResNet50Trunc(weights=str(path)).module  # noqa: B018
    # right keys, wrong shape (e.g. another width): shape mismatches are named
    state = _random(ViTS16).module.state_dict()
    state["blocks.0.attn.qkv.weight"] = torch.zeros(2304, 768)
    save_file(state, str(path))
    with pytest.raises(ConfigError, match=r"1 shape mismatch\(es\) \(blocks.0.attn.qkv.weight: file \(2304, 768\) vs model \(1152, 384\)"):
        ViTS16(weights=str(path)).module  # noqa: B018


def test_unreadable_and_unsafe_files_are_refused(tmp_path):
    corrupt = tmp_path / "bad.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="bad.safetensors is not a readable safetensors"):
        ResNet50Trunc(weights=str(corrupt)).module  # noqa: B018

    unsafe = tmp_path / "unsafe.pth"
    torch.save({"state_dict": _Payload()}, unsafe)  # arbitrary objects are never unpickled
    with pytest.raises(ConfigError, match="weights-only"):
        ResNet50Trunc(weights=str(unsafe)).module  # noqa: B018


def test_vit_input_must_be_whole_patches():
    with pytest.raises(ConfigError, match="input_size.*multiple of the patch size 16"):
        ViTS16(random_init=True, input_size=200)


def test_random_init_and_weights_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="contradict"):
        ResNet50Trunc(random_init=True, weights=str(tmp_path / "x.safetensors"))


def test_preprocess_resizes_and_normalises():
    encoder = ViTS16(random_init=True, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    white = torch.full((1, 256, 256, 3), 255, dtype=torch.uint8)
    x = encoder.preprocess(white)
    assert x.shape == (1, 3, 224, 224)
    torch.testing.assert_close(x, torch.ones_like(x))  # (1 - 0.5) / 0.5
    native = ResNet50Trunc(random_init=True, input_size=0).preprocess(_tiles(1, size=192))
    assert native.shape == (1, 3, 192, 192)
