"""The tile-encoder contract: what the embedding pipeline needs from any frozen encoder.

A tile encoder declares its input size and normalisation and maps a batch of RGB tiles to one
vector per tile. The pipeline feeds it raw ``uint8`` tiles and lets :meth:`TileEncoder.preprocess`
resize and normalise them on the device, so data-loader workers only decode pixels (the cheap
part of the data path) and the per-pixel float work runs where the model runs.

Built-in encoders (``pmx.encoders.timm_encoders``) and plugin encoders (for example a method's
stage-1 MAE encoder) subclass :class:`TileEncoder` and implement :meth:`build_module`; the class
imports no torch at import time, so registering encoders keeps ``pmx`` cheap to import.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..components import Component, fingerprint_of
from ..config import ComponentConfig, Field
from ..errors import ConfigError
from .weights import file_sha256, load_into, read_state_dict, resolve_weights, weights_env_var

if TYPE_CHECKING:
    import torch

log = logging.getLogger("pmx.encoders")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RANDOM_INIT_WARNING = (
    "random initialisation: this encoder was built without pretrained weights "
    "(random_init=true), so its vectors carry no learned image features; use it for tests only"
)


class TileEncoderConfig(ComponentConfig):
    """Options every tile encoder has (subclasses change the defaults)."""

    weights: str = Field(
        "", description="weights file (.safetensors or a .pth/.pt/.bin checkpoint); empty = "
        "$PMX_WEIGHTS_<NAME>, then $PMX_WEIGHTS_DIR/<name>.safetensors")
    random_init: bool = Field(
        False, description="build with random weights instead of loading a file (tests only; "
        "recorded as a warning in the lineage)")
    seed: int = Field(0, description="seed of the random initialisation (random_init only)")
    input_size: int = Field(
        256, ge=0, description="side in pixels tiles are resized to before the encoder; 0 = "
        "feed tiles at their own size")
    mean: tuple[float, float, float] = Field(IMAGENET_MEAN, description="per-channel mean "
                                             "subtracted from [0, 1] RGB")
    std: tuple[float, float, float] = Field(IMAGENET_STD, description="per-channel std "
                                            "dividing [0, 1] RGB")
    dtype: Literal["float32", "float16"] = Field("float32", description="precision of the "
                                                 "stored vectors")


class TileEncoder(Component):
    """Frozen tile encoder: uint8 RGB tiles -> one ``embed_dim`` vector per tile."""

    kind: ClassVar[str] = "encoder"
    Config: ClassVar[type[ComponentConfig]] = TileEncoderConfig
    #: width of the output vectors
    embed_dim: ClassVar[int] = 0
    #: keys of a full checkpoint the encoder does not use (e.g. the classifier), allowed extra
    ignored_weight_prefixes: ClassVar[tuple[str, ...]] = ()
    #: False for encoders without a weights file: fixed features, or a plugin whose
    #: ``build_module`` loads weights shipped inside its own package
    needs_weights: ClassVar[bool] = True

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        if self.config.random_init and self.config.weights:
            raise ConfigError(
                f"encoder '{self.name}': random_init=true and weights={self.config.weights!r} "
                "contradict each other; drop one of them"
            )
        self._module: Any = None
        self._weights_path: Path | None = None
        self._weights_source = ""
        self._resolved = False

    # -- what the pipeline reads ---------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.config.input_size)

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.config.mean)  # type: ignore[return-value]

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.config.std)  # type: ignore[return-value]

    @property
    def vector_dtype(self) -> str:
        return str(self.config.dtype)

    # -- weights and identity ------------------------------------------------------------------
    def _resolve(self) -> None:
        if self._resolved:
            return
        if self.needs_weights and not self.config.random_init:
            path, source = resolve_weights(self.name, self.config.weights)
            if path is None:
                raise ConfigError(
                    f"encoder '{self.name}' has no weights file: looked in {source}. Nothing is "
                    f"downloaded. Fix: --set encoder.weights=PATH (a .safetensors or .pth file), or "
                    f"export {weights_env_var(self.name)}=PATH, or put {self.name}.safetensors in "
                    "$PMX_WEIGHTS_DIR; see docs/embedding.md ('Weights') for how to obtain them. "
                    "For tests only: --set encoder.random_init=true."
                )
            self._weights_path, self._weights_source = path, source
        self._resolved = True

    @property
    def weights_path(self) -> Path | None:
        self._resolve()
        return self._weights_path

    @property
    def weights_sha256(self) -> str | None:
        path = self.weights_path
        return file_sha256(path) if path is not None else None

    @property
    def fingerprint(self) -> str:
        """Hash of kind, name, version, config (minus the path) and the weights' content."""
        config = self.config.model_dump(mode="json")
        config.pop("weights", None)
        if not self.config.random_init:
            config.pop("seed", None)
        return fingerprint_of({
            "kind": self.kind, "name": self.name, "version": self.version, "config": config,
            "weights_sha256": self.weights_sha256,
        })

    def lineage(self) -> dict[str, Any]:
        """What the store's artifact record says about where the vectors came from."""
        warn = [RANDOM_INIT_WARNING] if self.config.random_init and self.needs_weights else []
        return {
            "encoder": self.name, "version": self.version, "fingerprint": self.fingerprint,
            "weights": str(self.weights_path) if self.weights_path else None,
            "weights_source": self._weights_source or None,
            "weights_sha256": self.weights_sha256, "random_init": bool(self.config.random_init),
            "embed_dim": self.embed_dim, "input_size": self.input_size, "mean": list(self.mean),
            "std": list(self.std), "dtype": self.vector_dtype, "warnings": warn,
        }

    # -- the network ---------------------------------------------------------------------------
    def build_module(self) -> "torch.nn.Module":
        """A freshly initialised network: normalised float (N, 3, S, S) -> (N, embed_dim)."""
        raise NotImplementedError(f"encoder {self.name!r} does not implement build_module()")

    def adapt_state_dict(self, state: dict[str, "torch.Tensor"],
                         module: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
        """Hook to convert a checkpoint's keys to the module's (e.g. resize position embeddings)."""
        return state

    @property
    def module(self) -> "torch.nn.Module":
        """The network with its weights loaded (built once), in eval mode, frozen."""
        if self._module is None:
            self._module = self._load_module()
        return self._module

    def _load_module(self) -> "torch.nn.Module":
        import torch

        self._resolve()
        if self.config.random_init and self.needs_weights:
            warnings.warn(f"encoder '{self.name}': {RANDOM_INIT_WARNING}", UserWarning,
                          stacklevel=2)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                module = self.build_module()
        elif not self.needs_weights:
            module = self.build_module()
        else:
            module = self.build_module()
            assert self._weights_path is not None
            state = read_state_dict(self._weights_path)
            state = self.adapt_state_dict(state, module)
            load_into(module, state, path=self._weights_path, encoder=self.name,
                      ignore_prefixes=self.ignored_weight_prefixes)
            log.info("encoder '%s': loaded weights %s (sha256 %s, from %s)", self.name,
                     self._weights_path, self.weights_sha256[:12] if self.weights_sha256 else "?",
                     self._weights_source)
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        return module

    # -- running it ----------------------------------------------------------------------------
    def preprocess(self, tiles: "torch.Tensor", dtype: "torch.dtype | None" = None) -> "torch.Tensor":
        """uint8 tiles (N, H, W, 3) or (N, 3, H, W) -> normalised float (N, 3, S, S).

        Runs on the tiles' device; resizes (bilinear, antialiased) only when the tile side differs
        from ``input_size``. The result is channels_last, the fast layout for convolutions.
        """
        import torch
        import torch.nn.functional as F

        if tiles.ndim != 4:
            raise ValueError(f"tiles must be a 4-d batch, got shape {tuple(tiles.shape)}")
        if tiles.shape[-1] == 3 and tiles.shape[1] != 3:
            tiles = tiles.permute(0, 3, 1, 2)
        x = tiles.float() if tiles.dtype == torch.uint8 else tiles.to(torch.float32) * 255.0
        size = self.input_size
        if size and (x.shape[-2] != size or x.shape[-1] != size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1) * 255.0
        x = (x - mean) / std
        if dtype is not None:
            x = x.to(dtype)
        return x.contiguous(memory_format=torch.channels_last)

    def encode(self, tiles: "torch.Tensor") -> "torch.Tensor":
        """Convenience for small batches: preprocess + forward in inference mode, float32 out."""
        import torch

        module = self.module
        device = next(module.parameters()).device
        with torch.inference_mode():
            return module(self.preprocess(tiles.to(device))).float()
