"""Result value types shared by the tasks: embeddings (and their similarity), classifications, batch items."""

from .batch_item import BatchItem
from .classification_result import Category, ClassificationResult, Classifications, ImageClassifierResult
from .embedding_result import (
    QUANTIZATION_SCALE,
    Embedding,
    EmbeddingResult,
    ImageEmbedderResult,
    TextEmbedderResult,
    VectorLike,
    check_finite_output,
    cosine_similarity,
    dequantize,
    head_embeddings,
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
    "TextEmbedderResult",
    "VectorLike",
    "check_finite_output",
    "cosine_similarity",
    "dequantize",
    "head_embeddings",
    "l2_normalize",
    "quantize",
    "QUANTIZATION_SCALE",
]
