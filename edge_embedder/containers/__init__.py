"""Result value types shared by the tasks: embeddings (and their similarity), batch items."""

from .batch_item import BatchItem
from .embedding_result import (
    Embedding,
    EmbeddingResult,
    ImageEmbedderResult,
    TextEmbedderResult,
    VectorLike,
    cosine_similarity,
    dequantize,
    head_embeddings,
    l2_normalize,
    quantize,
)

__all__ = [
    "BatchItem",
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedderResult",
    "TextEmbedderResult",
    "VectorLike",
    "cosine_similarity",
    "dequantize",
    "head_embeddings",
    "l2_normalize",
    "quantize",
]
