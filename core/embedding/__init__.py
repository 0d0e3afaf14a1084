"""Embedding extraction: tiles of a tiling -> a frozen tile encoder -> vectors in the store.

    from pmx.embedding import embed
    from pmx.encoders import ResNet50Trunc
    from pmx.featurestore import open_store

    summary = embed(open_store(), ResNet50Trunc(weights="resnet50.safetensors"))

Runs on one process or on every rank of a torchrun launch (slides sharded across ranks, one
commit publishes all ranks' fragments); see docs/embedding.md.
"""

from .config import EmbedConfig
from .pipeline import (
    STAGE_NAME,
    EmbeddingFailed,
    EmbedSummary,
    embed,
    resolve_tiler,
    slide_paths_from_store,
    stage_params,
    tilings,
)

__all__ = [
    "STAGE_NAME",
    "EmbedConfig",
    "EmbedSummary",
    "EmbeddingFailed",
    "embed",
    "resolve_tiler",
    "slide_paths_from_store",
    "stage_params",
    "tilings",
]
