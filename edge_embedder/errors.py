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
    │   ├── ModelOutputError          (RuntimeError) the model returned NaN / infinite values (or scores that
    │   │                                            cannot be what they claim): never handed back as a result
    │   └── BackendUnavailableError   (ImportError)  no usable interpreter / runtime package installed
    ├── ImageError                    (ValueError)
    │   ├── ImageDecodeError                         corrupt, truncated or non-image file
    │   └── UnsupportedImageError                    dtype / channel layout that has no single meaning
    ├── TextInputError                (TypeError,    a text to embed is not a str (or a batch not a sequence of str),
    │                                  ValueError)   or is not valid Unicode (a lone surrogate: undecodable bytes)
    ├── OptionsError                  (ValueError)   an option out of its range (ROI, rotation, threads)
    ├── EmbeddingMismatchError        (ValueError)   cosine similarity of incompatible embeddings
    │   └── EmbeddingSpaceMismatchError              vectors, queries or models (towers) from different embedding spaces
    ├── EmbedderClosedError           (RuntimeError) the embedder was used after close()
    ├── IndexFormatError              (ValueError)   an index file that is truncated, corrupt or not an index
    └── MissingDependencyError        (ImportError)  an optional extra is not installed (names it);
                                                     BackendUnavailableError is one too

The converters (``edge_embedder.convert``) add their own branch under
``ConversionError``.

:func:`first_line` is the one way every layer turns a foreign exception
(an interpreter's, an exporter's) into the one-line text our messages quote.
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
    "ModelOutputError",
    "BackendUnavailableError",
    "ImageError",
    "ImageDecodeError",
    "UnsupportedImageError",
    "TextInputError",
    "OptionsError",
    "EmbeddingMismatchError",
    "EmbeddingSpaceMismatchError",
    "EmbedderClosedError",
    "IndexFormatError",
    "MissingDependencyError",
    "first_line",
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


class ModelOutputError(ModelError, RuntimeError):
    """The model returned values that cannot be a result: NaN or infinite outputs, or scores out of their domain.

    A damaged model file (bit-flipped weights), or an input that drives the
    model out of its numeric range. Single calls raise it; batch work
    (``iter_embed``, ``embed-dir``, Ray) lists the item as skipped with
    :attr:`reason` and goes on.

    Attributes:
      reason: the message without the input's name (what reports list next to the path).
      head_index: the output head concerned (None when not one head).
    """

    def __init__(self, message: str, *, reason: str | None = None, head_index: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message
        self.head_index = head_index


class MissingDependencyError(EdgeEmbedderError, ImportError):
    """An optional package is not installed; the message says which extra to install."""


class BackendUnavailableError(ModelError, MissingDependencyError):
    """No interpreter package able to run the model (correctly) is installed."""


class ImageError(EdgeEmbedderError, ValueError):
    """An input image cannot be used.

    Attributes:
      source: the file the image came from, when it came from a file.
      reason: the message without the file name (what reports list next to the path).
    """

    def __init__(self, message: str, *, source: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason if reason is not None else message


class ImageDecodeError(ImageError):
    """The file or bytes could not be decoded as an image."""


class UnsupportedImageError(ImageError):
    """The pixel data has a type or layout whose meaning is ambiguous."""


class TextInputError(EdgeEmbedderError, TypeError, ValueError):
    """The text to embed or tokenize is not a ``str`` (or the batch is not a sequence of ``str``), or is not valid Unicode.

    A ``str`` holding a surrogate code point (U+D800..U+DFFF) is refused: that
    is what Python makes of bytes that are not UTF-8 (a command-line argument,
    a file name, ``errors="surrogateescape"``), and no tokenizer can encode it.
    It is a ``TypeError`` (a non-str) and a ``ValueError`` (a str whose value
    cannot be text), so either ``except`` catches it.
    """


class OptionsError(EdgeEmbedderError, ValueError):
    """An option is out of its allowed range."""


class EmbeddingMismatchError(EdgeEmbedderError, ValueError):
    """Two embeddings cannot be compared (size, quantization or zero norm)."""


class EmbeddingSpaceMismatchError(EmbeddingMismatchError):
    """Vectors, a query or two models (towers) from different embedding spaces would be compared.

    A space is a model and one of its heads. Every model file has an embedding-space id (``embedding_space_id``): the
    converters write the same id into both towers of one CLIP checkpoint;
    files without one get ``sha256:<the file's sha256>``, a space of their own.
    """


class EmbedderClosedError(EdgeEmbedderError, RuntimeError):
    """The embedder was used after ``close()``."""


class IndexFormatError(EdgeEmbedderError, ValueError):
    """An embedding index file is truncated, corrupt, or not an index at all."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)`` (ANSI colours removed), or the type's name."""
    import re

    for line in str(exc).splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if line:
            return line
    return type(exc).__name__
