"""The exception tree of edge_embedder.

Everything that can go wrong with a user's model file, image or option is one
of these, with the expected and the actual value in its message. Each class
also derives from the builtin that a caller would naturally catch
(``ValueError`` for bad input, ``RuntimeError`` for bad state), so code written
against MediaPipe's ``ValueError`` keeps working::

    EdgeEmbedderError
    ├── ModelError
    │   ├── ModelLoadError            (ValueError)   not a model: truncated, garbage, unreadable file
    │   ├── MetadataError             (ValueError)   the metadata flatbuffer / props cannot be read or written
    │   ├── ModelContractError        (ValueError)   the model loads but breaks the contract
    │   │   ├── InputContractError                   input count, type, shape, channels, normalization
    │   │   └── OutputContractError                  output count, type, shape
    │   └── BackendUnavailableError   (ImportError)  no interpreter / runtime package installed
    ├── ImageError                    (ValueError)
    │   ├── ImageDecodeError                         corrupt, truncated or non-image file
    │   └── UnsupportedImageError                    dtype / channel layout that has no single meaning
    ├── OptionsError                  (ValueError)   an option out of its range (ROI, rotation, threads)
    ├── EmbeddingMismatchError        (ValueError)   cosine similarity of incompatible embeddings
    └── EmbedderClosedError           (RuntimeError) the embedder was used after close()

Converters add their own branch under ``ConversionError`` (see ``converters``).
"""

from __future__ import annotations

__all__ = [
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
]


class EdgeEmbedderError(Exception):
    """Base class of every error raised by edge_embedder."""


class ModelError(EdgeEmbedderError):
    """Something is wrong with a model file or the runtime that loads it."""


class ModelLoadError(ModelError, ValueError):
    """The file is not a loadable model (missing, truncated, not a flatbuffer...)."""


class MetadataError(ModelError, ValueError):
    """The model's metadata cannot be parsed or written."""


class ModelContractError(ModelError, ValueError):
    """The model loads but does not satisfy the image-embedder contract."""


class InputContractError(ModelContractError):
    """The model's input tensor breaks the contract."""


class OutputContractError(ModelContractError):
    """One of the model's output tensors breaks the contract."""


class BackendUnavailableError(ModelError, ImportError):
    """No interpreter package able to run the model is installed."""


class ImageError(EdgeEmbedderError, ValueError):
    """An input image cannot be used."""


class ImageDecodeError(ImageError):
    """The file or bytes could not be decoded as an image."""


class UnsupportedImageError(ImageError):
    """The pixel data has a type or layout whose meaning is ambiguous."""


class OptionsError(EdgeEmbedderError, ValueError):
    """An option is out of its allowed range."""


class EmbeddingMismatchError(EdgeEmbedderError, ValueError):
    """Two embeddings cannot be compared (size, quantization or zero norm)."""


class EmbedderClosedError(EdgeEmbedderError, RuntimeError):
    """The embedder was used after ``close()``."""


class MissingDependencyError(EdgeEmbedderError, ImportError):
    """An optional package that a feature needs is not installed; the message names the extra."""
