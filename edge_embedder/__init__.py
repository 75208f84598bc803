"""edge_embedder: on-device image embeddings with a TFLite-style model contract.

The public names are re-exported here; implementation modules are private.
``import edge_embedder`` never imports torch, transformers or litert-torch.
"""

from .contract import ModelSpec, OutputSpec
from .embedder import ImageEmbedder
from .embedding import Embedding, ImageEmbedderResult
from .errors import (
    BackendUnavailableError,
    EdgeEmbedderError,
    EmbedderClosedError,
    EmbeddingMismatchError,
    ImageDecodeError,
    ImageError,
    InputContractError,
    MetadataError,
    ModelContractError,
    ModelError,
    ModelLoadError,
    OptionsError,
    OutputContractError,
    UnsupportedImageError,
)
from .image import Image
from .options import BaseOptions, ImageEmbedderOptions, ImageProcessingOptions, RectF, RunningMode

__version__ = "0.1.0"

__all__ = [
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "BaseOptions",
    "ImageProcessingOptions",
    "RectF",
    "RunningMode",
    "Image",
    "Embedding",
    "ImageEmbedderResult",
    "ModelSpec",
    "OutputSpec",
    "EdgeEmbedderError",
    "ModelError",
    "ModelLoadError",
    "MetadataError",
    "ModelContractError",
    "InputContractError",
    "OutputContractError",
    "BackendUnavailableError",
    "ImageError",
    "ImageDecodeError",
    "UnsupportedImageError",
    "OptionsError",
    "EmbeddingMismatchError",
    "EmbedderClosedError",
    "__version__",
]
