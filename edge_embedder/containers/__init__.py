"""Result value types shared by the tasks: embeddings (and their similarity), batch items."""

from .batch_item import BatchItem
from .embedding_result import (
    Embedding,
    EmbeddingResult,
    ImageEmbedderResult,
    VectorLike,
    cosine_similarity,
    dequantize,
    l2_normalize,
    quantize,
)

__all__ = [
    "BatchItem",
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedderResult",
    "VectorLike",
    "cosine_similarity",
    "dequantize",
    "l2_normalize",
    "quantize",
]
