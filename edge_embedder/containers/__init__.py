"""Result value types shared by the tasks: embeddings (and their similarity), classifications, batch items."""

from .batch_item import BatchItem
from .classification_result import Category, ClassificationResult, Classifications, ImageClassifierResult
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
    "Category",
    "Classifications",
    "ClassificationResult",
    "ImageClassifierResult",
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedderResult",
    "VectorLike",
    "cosine_similarity",
    "dequantize",
    "l2_normalize",
    "quantize",
]
