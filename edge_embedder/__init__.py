"""edge_embedder: on-device embeddings and classification with a TFLite-style model contract.

The public names are re-exported here (and listed in ``__all__``); the
subpackages ``edge_embedder.metadata``, ``edge_embedder.vision``,
``edge_embedder.text``, ``edge_embedder.containers`` and the modules
``edge_embedder.errors``, ``edge_embedder.exit_codes``, ``edge_embedder.files``,
``edge_embedder.folder``, ``edge_embedder.resources`` and
``edge_embedder.zero_shot`` are public too; everything else is private.
``import edge_embedder`` never imports torch, transformers, litert-torch or
tokenizers (the ``text`` extra is imported when a text model is opened).
"""

from .containers import (
    BatchItem,
    Category,
    ClassificationResult,
    Classifications,
    Embedding,
    EmbeddingResult,
    ImageClassifierResult,
    ImageEmbedderResult,
    TextEmbedderResult,
)
from .core.base_options import BaseOptions
from .core.contract import ClassificationHeadSpec, ClassifierSpec, ModelSpec, OutputSpec, TextModelSpec, TokenizerSpec
from .core.live_stream import LiveStreamStats
from .core.running_mode import RunningMode
from .core.timing import Timings
from .errors import (
    BackendUnavailableError,
    EdgeEmbedderError,
    EmbedderClosedError,
    EmbeddingMismatchError,
    EmbeddingSpaceMismatchError,
    ImageDecodeError,
    ImageError,
    InputContractError,
    MetadataError,
    MissingDependencyError,
    ModelContractError,
    ModelError,
    ModelLoadError,
    ModelOutputError,
    OptionsError,
    OutputContractError,
    TextInputError,
    UnsupportedImageError,
)
from .metadata import ModelMetadata
from .model_info import inspect_model
from .text import TextEmbedder, TextEmbedderOptions
from .vision import (
    Image,
    ImageClassifier,
    ImageClassifierOptions,
    ImageEmbedder,
    ImageEmbedderOptions,
    ImageLike,
    ImageProcessingOptions,
    RectF,
)
from .zero_shot import ZeroShotImageClassifier, ZeroShotImageClassifierOptions

__version__ = "0.1.0"

__all__ = [
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "ImageClassifier",
    "ImageClassifierOptions",
    "TextEmbedder",
    "TextEmbedderOptions",
    "ZeroShotImageClassifier",
    "ZeroShotImageClassifierOptions",
    "BaseOptions",
    "ImageProcessingOptions",
    "RectF",
    "RunningMode",
    "Image",
    "ImageLike",
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedderResult",
    "Category",
    "Classifications",
    "ClassificationResult",
    "ImageClassifierResult",
    "TextEmbedderResult",
    "BatchItem",
    "LiveStreamStats",
    "Timings",
    "ModelSpec",
    "OutputSpec",
    "ClassifierSpec",
    "ClassificationHeadSpec",
    "TextModelSpec",
    "TokenizerSpec",
    "ModelMetadata",
    "inspect_model",
    "EdgeEmbedderError",
    "ModelError",
    "ModelLoadError",
    "ModelOutputError",
    "MetadataError",
    "ModelContractError",
    "InputContractError",
    "OutputContractError",
    "BackendUnavailableError",
    "MissingDependencyError",
    "ImageError",
    "ImageDecodeError",
    "UnsupportedImageError",
    "TextInputError",
    "OptionsError",
    "EmbeddingMismatchError",
    "EmbeddingSpaceMismatchError",
    "EmbedderClosedError",
]
