"""Embedding results, their postprocessing and cosine similarity (shared by every embedder).

Postprocessing mirrors MediaPipe: dequantize uint8 outputs with the tensor's
quantization parameters; ``l2_normalize`` multiplies by ``1 / sqrt(sum(v*v))``
(an all-zero vector is left as it is); ``quantize`` (after L2 when both) maps
each value with ``clamp(round(v * 128), -128, 127)``, halves away from zero,
and returns int8 values.

Every raw output is checked first: a NaN or infinite value (a damaged model
file, or an input that drives the model out of range) raises
:class:`~edge_embedder.errors.ModelOutputError`; it is never normalized,
quantized or handed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ..errors import EmbeddingMismatchError, ModelOutputError

__all__ = [
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedderResult",
    "TextEmbedderResult",
    "VectorLike",
    "head_embeddings",
    "check_finite_output",
    "cosine_similarity",
    "dequantize",
    "l2_normalize",
    "quantize",
    "QUANTIZATION_SCALE",
]

#: MediaPipe's scalar quantization: an int8 value ``q`` stands for ``q / QUANTIZATION_SCALE``.
QUANTIZATION_SCALE = 128


@dataclass(frozen=True)
class Embedding:
    """One head's embedding.

    Attributes:
      embedding: float32 vector, or int8 vector when quantized.
      head_index: the model output index.
      head_name: the output tensor's metadata name, None when absent.
    """

    embedding: np.ndarray
    head_index: int
    head_name: Optional[str] = None

    @property
    def quantized(self) -> bool:
        return self.embedding.dtype == np.int8

    @property
    def quantized_bytes(self) -> bytes:
        """The int8 values as raw bytes (quantized embeddings only)."""
        if not self.quantized:
            raise EmbeddingMismatchError("quantized_bytes: the embedding is float, expected a quantized one")
        return self.embedding.tobytes()


@dataclass(frozen=True)
class EmbeddingResult:
    """All heads of one embedded input.

    ``timestamp_ms`` is the caller's timestamp in VIDEO / LIVE_STREAM mode and
    None in IMAGE mode (no timestamps are invented).
    """

    embeddings: list[Embedding]
    timestamp_ms: Optional[int] = None


#: MediaPipe's name for the image embedder's result.
ImageEmbedderResult = EmbeddingResult


@dataclass(frozen=True)
class TextEmbedderResult(EmbeddingResult):
    """All heads of one embedded text: an :class:`EmbeddingResult` that also says how the text fit.

    Attributes:
      truncated: the text had more tokens than the model's sequence length and
        was cut (the end-of-text token is kept last, as transformers'
        ``CLIPTokenizerFast(..., truncation=True)`` does).
      token_count: ids before the padding, start- and end-of-text tokens included.
    """

    truncated: bool = False
    token_count: int = 0


def dequantize(raw: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).reshape(-1)


def l2_normalize(v: np.ndarray) -> np.ndarray:
    norm_sq = float(np.dot(v.astype(np.float64), v.astype(np.float64)))
    if norm_sq == 0.0:
        return v
    return (v * np.float32(1.0 / np.sqrt(norm_sq))).astype(np.float32)


def quantize(v: np.ndarray) -> np.ndarray:
    x = v.astype(np.float64) * QUANTIZATION_SCALE
    r = np.sign(x) * np.floor(np.abs(x) + 0.5)  # halves away from zero
    return np.clip(r, -128, 127).astype(np.int8)


def check_finite_output(values: np.ndarray, head_index: int, head_name: Optional[str], what: str = "output",
                        cause: Optional[str] = None) -> None:
    """Raise :class:`ModelOutputError` when ``values`` (one head's output) hold NaN or infinite values.

    ``what`` names the values in the message ("output", "calibrated scores"),
    ``cause`` replaces the default explanation (a damaged file or an input out of range).
    """
    finite = np.isfinite(values)
    if finite.all():
        return
    n_nan = int(np.isnan(values).sum())
    n_inf = int(values.size - finite.sum()) - n_nan
    first = int(np.flatnonzero(~finite.reshape(-1))[0])
    head = f"head {head_index}" + (f" ({head_name!r})" if head_name else "")
    parts = [f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "infinite")) if n]
    cause = cause or "the model file is damaged, or the input drives the model out of its numeric range"
    reason = (f"the model's {what} of {head}: {' and '.join(parts)} value{'s' if n_nan + n_inf > 1 else ''} "
              f"of {values.size} (first at index {first}); {cause}")
    raise ModelOutputError(reason, reason=reason, head_index=head_index)


def head_embeddings(raw: Sequence[np.ndarray], heads: Iterable[Any], l2: bool, q: bool) -> list[Embedding]:
    """One :class:`Embedding` per head from a model's raw batch-1 outputs (every embedding task's postprocessing).

    ``heads`` are the model spec's output specs (``index``, ``name``, ``dtype``,
    ``scale``, ``zero_point``): uint8 outputs are dequantized, then optional L2
    normalization, then optional scalar quantization.

    Raises:
      ModelOutputError: an output holds NaN or infinite values.
    """
    out = []
    for head in heads:
        t = raw[head.index]
        if head.dtype == np.uint8:
            v = dequantize(t, head.scale, head.zero_point)
        else:
            v = t.reshape(-1).astype(np.float32, copy=False)
            check_finite_output(v, head.index, head.name)
        if l2:
            v = l2_normalize(v)
        if q:
            v = quantize(v)
        out.append(Embedding(v, head.index, head.name))
    return out


VectorLike = Union[Embedding, np.ndarray, bytes, Sequence[float]]


def _as_vector(x: VectorLike, which: str) -> tuple[np.ndarray, bool]:
    if isinstance(x, Embedding):
        return x.embedding, x.quantized
    if isinstance(x, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(x), dtype=np.int8), True
    a = np.asarray(x)
    if a.dtype in (np.int8, np.uint8) and isinstance(x, np.ndarray):
        # MediaPipe hands out quantized embeddings as uint8 arrays holding int8 values.
        return a.view(np.int8).reshape(-1), True
    if a.dtype.kind not in "fiu":
        raise EmbeddingMismatchError(f"{which}: expected a numeric vector, got dtype {a.dtype}")
    return a.reshape(-1), False


def cosine_similarity(u: VectorLike, v: VectorLike) -> float:
    """Cosine similarity of two float or two quantized embeddings.

    Accepts :class:`Embedding` objects, numpy vectors (int8/uint8 arrays count
    as quantized) or ``bytes`` (quantized).

    Raises:
      EmbeddingMismatchError (a ValueError): a float and a quantized
        embedding, different sizes, an empty vector or a zero norm.
    """
    a, qa = _as_vector(u, "u")
    b, qb = _as_vector(v, "v")
    if qa != qb:
        raise EmbeddingMismatchError(
            f"cannot compare a {'quantized' if qa else 'float'} embedding with a {'quantized' if qb else 'float'} one"
        )
    if a.size != b.size:
        raise EmbeddingMismatchError(f"embeddings have different sizes: {a.size} vs {b.size}")
    if a.size == 0:
        raise EmbeddingMismatchError("cannot compute cosine similarity of empty embeddings")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = float(np.dot(a64, a64)), float(np.dot(b64, b64))
    if na == 0.0 or nb == 0.0:
        raise EmbeddingMismatchError("cannot compute cosine similarity with a zero-norm embedding")
    return float(np.dot(a64, b64) / (np.sqrt(na) * np.sqrt(nb)))
