"""The model contract: one module, one check per rule.

Run once at load time. Combines the backend's tensor details with the model's
metadata into one immutable :class:`ModelSpec` that pre- and postprocessing
consume; nothing on the per-call path re-reads metadata. Each task picks the
rule set of its input and output kinds (:func:`check_image_embedder`,
:func:`check_text_embedder`).

The rules (each message says expected vs actual):

Image input
  * exactly one input tensor
  * dtype uint8 or float32
  * rank 4, batch 1, 3 (RGB) channels in the layout the backend declares
    (NHWC; ONNX graphs may be NCHW, which preprocessing then writes)
  * float32 input needs NormalizationOptions (1 or 3 means and stds, stds
    non-zero) in the metadata; uint8 input is fed raw pixels
  * when the metadata names a colour space it is RGB
Text input (token ids)
  * exactly one input tensor
  * dtype int32 or int64
  * shape [1, L]: rank 2, batch 1, a fixed sequence length L >= 2, or a
    dynamic sequence axis (ONNX; the tokenizer's max_length is then L)
  * every other shape the file offers (``Backend.input_shapes``: TFLite
    signatures, ONNX dynamic axes) is [B, l], rank 2, with 2 <= l <= L
Embedding outputs
  * at least one output tensor
  * each dtype uint8 or float32; uint8 outputs carry quantization params
  * each shape [1, N] or [1, 1, 1, N] (text models: [1, N])
Classification outputs (the embedding-output rules, and per output)
  * each ``TENSOR_AXIS_LABELS`` file has exactly N labels (one per class);
    the first one gives the category names, the others display names by locale
  * ``ScoreCalibrationOptions`` and a ``TENSOR_AXIS_SCORE_CALIBRATION`` file
    come together: exactly one file, one valid line per class (N lines)
  * a score threshold, when present, is a finite number (the default threshold)
Metadata
  * when present, as many input / output tensor metadata as tensors
  * a preprocessing recipe, when present, is valid and ends at the input size
  * text models: metadata present, with the tokenizer entry
    (``edge_embedder.tokenizer``: max_length, bos (or null) / eos / pad ids,
    lowercase, optionally eos_if_absent and padding "max_length")
    whose max_length is L (or, with a dynamic sequence axis, >= 2), and the
    tokenizer file it names packed in the model; with padding "max_length"
    every text runs at L (the other shapes the file offers are not used)
  * an embedding-space id, when present, is a non-empty string; a logit
    scale, when present, is a finite number > 0; a logit bias, when present,
    is a finite number
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputContractError, MetadataError, ModelContractError, OutputContractError
from ..metadata import (
    EMBEDDING_SPACE_KEY,
    LOGIT_BIAS_KEY,
    LOGIT_SCALE_KEY,
    RECIPE_KEY,
    TOKENIZER_KEY,
    CalibrationParams,
    ModelMetadata,
    NormalizationOptions,
    TensorMetadata,
    parse_label_file,
    parse_score_calibration,
)
from .backends.base import Backend, TensorSpec
from .recipe import DEFAULT_RECIPE, Recipe

__all__ = ["ModelSpec", "OutputSpec", "TextModelSpec", "TextShapes", "TokenizerSpec", "check_image_embedder", "check_contract",
           "check_text_embedder", "check_text_contract", "ClassifierSpec", "ClassificationHeadSpec", "LabelFile",
           "ScoreCalibrationSpec", "check_image_classifier", "has_classification_metadata",
           "declared_embedding_space"]

_INPUT_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_TEXT_INPUT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_OUTPUT_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


@dataclass(frozen=True)
class OutputSpec:
    """One embedding head."""

    index: int  # position among the model outputs (= head_index)
    name: Optional[str]  # head_name: from the output tensor metadata
    dtype: np.dtype
    size: int
    scale: float
    zero_point: int


class _Heads:
    """The output-head lookup both specs share (``outputs`` is the spec's field)."""

    outputs: tuple[OutputSpec, ...]

    def head(self, key: int | str) -> OutputSpec:
        """The output head ``key``: its index (0-based) or its metadata name.

        Raises:
          OptionsError: no such head (the message lists them).
        """
        from ..errors import OptionsError

        names = [f"{o.index} ({o.name})" if o.name else str(o.index) for o in self.outputs]
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise OptionsError(f"head: expected an index or a name, got {key!r}")
        if isinstance(key, str):
            for o in self.outputs:
                if o.name == key:
                    return o
            try:
                int(key)
            except ValueError:
                raise OptionsError(f"head: no head named {key!r}; the model's heads are {', '.join(names)}") from None
        i = int(key)
        if not 0 <= i < len(self.outputs):
            raise OptionsError(f"head: expected an index from 0 to {len(self.outputs) - 1} or a name, got {key!r}; "
                               f"the model's heads are {', '.join(names)}")
        return self.outputs[i]


@dataclass(frozen=True)
class ModelSpec(_Heads):
    """Everything an image task needs to know about a model, checked."""

    height: int
    width: int
    input_dtype: np.dtype
    layout: str  # "NHWC" or "NCHW": the layout preprocessing writes
    normalization: Optional[NormalizationOptions]  # None for uint8 input
    recipe: Recipe
    outputs: tuple[OutputSpec, ...]
    #: The metadata's embedding-space id (None when the file has none: tasks derive one from its sha256).
    embedding_space: Optional[str] = None
    #: The contrastive model's logit scale (``exp`` of the checkpoint's parameter), None when absent.
    logit_scale: Optional[float] = None
    #: The sigmoid-trained contrastive model's logit bias (SigLIP), None when absent (CLIP).
    logit_bias: Optional[float] = None
    metadata: Optional[ModelMetadata] = field(default=None, compare=False)


@dataclass(frozen=True)
class TokenizerSpec:
    """How a text model frames token ids (the ``edge_embedder.tokenizer`` metadata entry), checked."""

    file: str  # the associated file holding the tokenizer.json
    max_length: int
    bos_id: Optional[int]  # None: no start-of-text id (SigLIP)
    eos_id: int
    pad_id: int
    lowercase: bool = False
    pooling: Optional[str] = None  # "first_eos", "argmax" or "last": how the exported tower pools (information)
    #: No end-of-text id after a text whose own ids already end with it (transformers' SentencePiece tokenizers).
    eos_if_absent: bool = False
    #: "max_length": the tower attends to every position (SigLIP), so every text runs at max_length;
    #: None: causal, pooled at the end of text, so a text may run at any length that holds its ids (CLIP).
    padding: Optional[str] = None


@dataclass(frozen=True)
class TextShapes:
    """The ``[batch, length]`` shapes a text model runs its token ids at, checked.

    Attributes:
      max_length: L, the longest sequence (the tokenizer's max_length).
      lengths: the fixed lengths offered at batch 1, ascending (L last); empty
        when the sequence axis is dynamic (any length 2..L runs).
      batches: fixed ``(batch, length)`` shapes with batch > 1 (TFLite batch
        signatures), ascending by length.
      dynamic_length: the sequence axis takes any length (ONNX dynamic axis).
      dynamic_batch: the batch axis takes any size (ONNX dynamic axis).
    """

    max_length: int
    lengths: tuple[int, ...] = ()
    batches: tuple[tuple[int, int], ...] = ()
    dynamic_length: bool = False
    dynamic_batch: bool = False

    def describe(self) -> dict[str, object]:
        """JSON-able summary (``inspect``)."""
        return {
            "lengths": "any 2..%d (dynamic axis)" % self.max_length if self.dynamic_length else list(self.lengths),
            "batch": "any (dynamic axis)" if self.dynamic_batch else [list(b) for b in self.batches] or 1,
        }


@dataclass(frozen=True)
class TextModelSpec(_Heads):
    """Everything a text task needs to know about a model, checked."""

    sequence_length: int  # L of the [1, L] input (the longest sequence it runs)
    input_dtype: np.dtype  # int32 or int64
    outputs: tuple[OutputSpec, ...]
    tokenizer: TokenizerSpec
    tokenizer_json: bytes = field(default=b"", repr=False, compare=False)
    embedding_space: Optional[str] = None
    logit_scale: Optional[float] = None
    logit_bias: Optional[float] = None
    metadata: Optional[ModelMetadata] = field(default=None, compare=False)
    #: Every [batch, length] shape the file runs (lengths below L: signatures or a dynamic axis); when not
    #: given, the one shape [1, sequence_length].
    shapes: TextShapes = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.shapes is None:
            object.__setattr__(self, "shapes", TextShapes(self.sequence_length, (self.sequence_length,)))


# -- input rules ---------------------------------------------------------------


def _check_input_count(inputs: Sequence[TensorSpec]) -> TensorSpec:
    if len(inputs) != 1:
        raise InputContractError(f"expected exactly 1 input tensor, got {len(inputs)}")
    return inputs[0]


def _check_input_dtype(t: TensorSpec) -> None:
    if t.dtype not in _INPUT_DTYPES:
        raise InputContractError(f"input tensor {t.name!r}: expected dtype uint8 or float32, got {t.dtype}")


def _check_input_rank(t: TensorSpec) -> None:
    if len(t.shape) != 4:
        raise InputContractError(
            f"input tensor {t.name!r}: expected shape [1, H, W, 3] (rank 4), got {list(t.shape)}"
        )


def _check_input_batch(t: TensorSpec) -> None:
    if t.shape[0] != 1:
        raise InputContractError(f"input tensor {t.name!r}: expected batch size 1, got {t.shape[0]} (shape {list(t.shape)})")


def _check_input_channels(t: TensorSpec, layout: Optional[str]) -> str:
    if layout == "NCHW" and t.shape[1] == 3:
        return "NCHW"
    if t.shape[3] == 3:
        return "NHWC"
    hint = " (the layout looks like NCHW; export with NHWC input)" if t.shape[1] == 3 else ""
    raise InputContractError(
        f"input tensor {t.name!r}: expected 3 (RGB) channels in shape [1, H, W, 3], "
        f"got {t.shape[3]} channels (shape {list(t.shape)}){hint}"
    )


def _check_input_size(t: TensorSpec, layout: str) -> tuple[int, int]:
    h, w = (t.shape[1], t.shape[2]) if layout == "NHWC" else (t.shape[2], t.shape[3])
    if h < 1 or w < 1:
        raise InputContractError(f"input tensor {t.name!r}: expected a fixed positive H and W, got {list(t.shape)}")
    return h, w


def _check_normalization(t: TensorSpec, md: Optional[ModelMetadata]) -> Optional[NormalizationOptions]:
    if t.dtype == np.uint8:
        return None  # raw pixels, as MediaPipe feeds uint8 models
    if md is None:
        raise InputContractError(
            f"input tensor {t.name!r} is float32: expected NormalizationOptions in the model metadata, "
            "got a model without metadata (TFLite: add it with edge_embedder.metadata.populate_tflite_metadata; "
            "ONNX: write edge_embedder.metadata.to_onnx_props(md) into the model's metadata_props)"
        )
    norm = md.inputs[0].normalization if md.inputs else None
    if norm is None:
        raise InputContractError(
            f"input tensor {t.name!r} is float32: expected NormalizationOptions in the input tensor metadata, got none"
        )
    if len(norm.mean) not in (1, 3) or len(norm.std) not in (1, 3):
        raise InputContractError(
            f"normalization: expected 1 or 3 means and stds, got {len(norm.mean)} means and {len(norm.std)} stds"
        )
    if any((not math.isfinite(s)) or s == 0 for s in norm.std) or not all(math.isfinite(m) for m in norm.mean):
        raise InputContractError(f"normalization: expected finite means and non-zero stds, got mean={norm.mean} std={norm.std}")
    return norm


def _check_color_space(md: Optional[ModelMetadata]) -> None:
    if md is None or not md.inputs:
        return
    cs = md.inputs[0].color_space
    if cs not in (None, "RGB", "UNKNOWN"):
        raise InputContractError(f"input color space: expected RGB, got {cs}")


# -- output rules --------------------------------------------------------------


def _check_output_count(outputs: Sequence[TensorSpec]) -> None:
    if not outputs:
        raise OutputContractError("expected at least 1 output tensor, got 0")


def _check_output_dtype(t: TensorSpec) -> None:
    if t.dtype not in _OUTPUT_DTYPES:
        raise OutputContractError(f"output tensor {t.name!r}: expected dtype uint8 or float32, got {t.dtype}")
    if t.dtype == np.uint8 and not t.scale > 0:
        raise OutputContractError(
            f"output tensor {t.name!r}: uint8 output needs quantization parameters (scale > 0), got scale={t.scale}"
        )


def _check_output_shape(t: TensorSpec) -> int:
    s = list(t.shape)
    if (len(s) == 2 and s[0] == 1 and s[1] >= 1) or (len(s) == 4 and s[:3] == [1, 1, 1] and s[3] >= 1):
        return s[-1]
    raise OutputContractError(f"output tensor {t.name!r}: expected shape [1, N] or [1, 1, 1, N], got {s}")


# -- metadata rules ------------------------------------------------------------


def _check_metadata_counts(md: Optional[ModelMetadata], n_in: int, n_out: int) -> None:
    if md is None:
        return
    if md.inputs and len(md.inputs) != n_in:
        raise MetadataError(
            f"The number of input tensors ({n_in}) should match the number of input tensor metadata ({len(md.inputs)})"
        )
    if md.outputs and len(md.outputs) != n_out:
        raise MetadataError(
            f"The number of output tensors ({n_out}) should match the number of output tensor metadata ({len(md.outputs)})"
        )


def _check_recipe(md: Optional[ModelMetadata], h: int, w: int) -> Recipe:
    data = md.custom_json(RECIPE_KEY) if md is not None else None
    if data is None:
        return DEFAULT_RECIPE
    try:
        recipe = Recipe.from_json(data)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ModelContractError):
            raise
        raise ModelContractError(f"recipe: cannot parse {data!r}: {exc}") from None
    recipe.validate(h, w)
    return recipe


def declared_embedding_space(md: Optional[ModelMetadata]) -> Optional[str]:
    """The model's ``edge_embedder.embedding_space`` metadata entry, checked; None when absent.

    Raises:
      MetadataError: the entry is not UTF-8 text, or blank.
    """
    if md is None:
        return None
    space = md.custom_text(EMBEDDING_SPACE_KEY)
    if space is None:
        return None
    if not space.strip():
        raise MetadataError(f"custom metadata {EMBEDDING_SPACE_KEY!r}: expected a non-empty string, got {space!r}")
    return space


def _check_logit_scale(md: Optional[ModelMetadata]) -> Optional[float]:
    value = md.custom_json(LOGIT_SCALE_KEY) if md is not None else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise MetadataError(f"custom metadata {LOGIT_SCALE_KEY!r}: expected a finite number > 0, got {value!r}")
    return float(value)


def _check_logit_bias(md: Optional[ModelMetadata]) -> Optional[float]:
    value = md.custom_json(LOGIT_BIAS_KEY) if md is not None else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetadataError(f"custom metadata {LOGIT_BIAS_KEY!r}: expected a finite number, got {value!r}")
    return float(value)


# -- text rules ----------------------------------------------------------------


def _check_text_input_dtype(t: TensorSpec) -> None:
    if t.dtype not in _TEXT_INPUT_DTYPES:
        raise InputContractError(f"input tensor {t.name!r}: expected dtype int32 or int64 (token ids), got {t.dtype}")


def _check_text_input_shape(t: TensorSpec) -> Optional[int]:
    """L of the ``[1, L]`` input; None for a dynamic sequence axis."""
    s = list(t.shape)
    if len(s) != 2:
        raise InputContractError(f"input tensor {t.name!r}: expected shape [1, L] (rank 2, token ids), got {s}")
    if s[0] != 1:
        raise InputContractError(f"input tensor {t.name!r}: expected batch size 1, got {s[0]} (shape {s})")
    if s[1] == -1:
        return None
    if s[1] < 2:
        raise InputContractError(f"input tensor {t.name!r}: expected a fixed sequence length L >= 2, got {s}")
    return s[1]


def _check_text_shapes(t: TensorSpec, offered: Sequence[Sequence[int]], max_length: int) -> TextShapes:
    """The shapes ``offered`` (``Backend.input_shapes``; the file's own shape first), each checked."""
    lengths: set[int] = set()
    batches: set[tuple[int, int]] = set()
    dynamic_length = dynamic_batch = False
    for shape in offered or [t.shape]:
        s = [int(v) for v in shape]
        if len(s) != 2:
            raise InputContractError(f"input tensor {t.name!r}: the file also runs shape {s}; expected [B, l] "
                                     "(rank 2, token ids)")
        b, n = s
        if n != -1 and not 2 <= n <= max_length:
            raise InputContractError(f"input tensor {t.name!r}: the file also runs shape {s}; expected a sequence "
                                     f"length 2..{max_length} (the tokenizer's max_length)")
        if b != -1 and b < 1:
            raise InputContractError(f"input tensor {t.name!r}: the file also runs shape {s}; expected batch >= 1")
        dynamic_length |= n == -1
        dynamic_batch |= b == -1
        if n != -1 and b == 1:
            lengths.add(n)
        elif n != -1 and b > 1:
            batches.add((b, n))
        elif n != -1:  # dynamic batch, fixed length
            lengths.add(n)
    if not dynamic_length and max_length not in lengths:
        raise InputContractError(f"input tensor {t.name!r}: expected the full length [1, {max_length}] among the "
                                 f"shapes the file runs, got {sorted(lengths)}")
    return TextShapes(
        max_length=max_length,
        lengths=() if dynamic_length else tuple(sorted(lengths)),
        batches=tuple(sorted(batches, key=lambda bn: (bn[1], bn[0]))),
        dynamic_length=dynamic_length,
        dynamic_batch=dynamic_batch,
    )


def _check_text_output_shape(t: TensorSpec) -> int:
    s = list(t.shape)
    if len(s) == 2 and s[0] == 1 and s[1] >= 1:
        return s[1]
    raise OutputContractError(f"output tensor {t.name!r}: expected shape [1, N], got {s}")


_TOKENIZER_INTS = ("max_length", "eos_id", "pad_id")
_PADDINGS = ("max_length",)


def _check_tokenizer(md: Optional[ModelMetadata], length: Optional[int]) -> tuple[TokenizerSpec, bytes]:
    if md is None:
        raise MetadataError(
            "a text model needs its tokenizer in the model metadata, got a model without metadata "
            f"(expected the {TOKENIZER_KEY!r} entry and the tokenizer.json it names; convert with "
            "edge-embedder convert --tower text)"
        )
    entry = md.custom_json(TOKENIZER_KEY)
    if entry is None:
        raise MetadataError(f"a text model needs its tokenizer: expected the custom metadata entry {TOKENIZER_KEY!r}, "
                            "got none (convert with edge-embedder convert --tower text)")
    if not isinstance(entry, dict):
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected a JSON object, got {type(entry).__name__}")
    name = entry.get("file")
    if not isinstance(name, str) or not name:
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'file' to name the tokenizer file, got {name!r}")
    values = {}
    for key in _TOKENIZER_INTS:
        v = entry.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected {key!r} to be an integer >= 0, got {v!r}")
        values[key] = v
    bos = entry.get("bos_id")
    if bos is not None and (isinstance(bos, bool) or not isinstance(bos, int) or bos < 0):
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'bos_id' to be an integer >= 0 or null "
                            f"(no start-of-text id), got {bos!r}")
    eos_if_absent = entry.get("eos_if_absent", False)
    if not isinstance(eos_if_absent, bool):
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'eos_if_absent' to be a bool, got {eos_if_absent!r}")
    padding = entry.get("padding")
    if padding is not None and padding not in _PADDINGS:
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'padding' to be one of {list(_PADDINGS)} "
                            f"or absent, got {padding!r}")
    lowercase = entry.get("lowercase", False)
    if not isinstance(lowercase, bool):
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'lowercase' to be a bool, got {lowercase!r}")
    pooling = entry.get("pooling")
    if pooling is not None and not isinstance(pooling, str):
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'pooling' to be a string, got {pooling!r}")
    if length is None and values["max_length"] < 2:
        raise MetadataError(f"custom metadata {TOKENIZER_KEY!r}: expected 'max_length' >= 2 (room for BOS and EOS), "
                            f"got {values['max_length']}")
    if length is not None and values["max_length"] != length:
        raise InputContractError(
            f"tokenizer max_length {values['max_length']} should match the input sequence length {length}"
        )
    data = md.file(name)
    if data is None:
        raise MetadataError(f"the tokenizer file {name!r} named by {TOKENIZER_KEY!r} is not packed in the model "
                            f"(packed: {[k for k, _ in md.files]})")
    if not data:
        raise MetadataError(f"the tokenizer file {name!r} is empty")
    return TokenizerSpec(file=name, lowercase=lowercase, pooling=pooling, bos_id=bos, eos_if_absent=eos_if_absent,
                         padding=padding, **values), data


def check_text_embedder(backend: Backend) -> TextModelSpec:
    """The text-embedder contract (token-id input, embedding outputs, tokenizer in the metadata) of a backend."""
    return check_text_contract(backend.input_specs, backend.output_specs, backend.metadata,
                               input_shapes=getattr(backend, "input_shapes", None))


def check_text_contract(
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    metadata: Optional[ModelMetadata],
    *,
    input_shapes: Optional[Sequence[Sequence[int]]] = None,
) -> TextModelSpec:
    """Check every token-id-input, embedding-output and tokenizer rule; return the model's spec.

    ``input_shapes``: every shape the file runs input 0 at (``Backend.input_shapes``);
    None: only input 0's own shape.

    Raises:
      InputContractError, OutputContractError, MetadataError.
    """
    t = _check_input_count(inputs)
    _check_text_input_dtype(t)
    length = _check_text_input_shape(t)
    _check_metadata_counts(metadata, len(inputs), len(outputs))
    _check_output_count(outputs)
    heads = []
    for i, o in enumerate(outputs):
        _check_output_dtype(o)
        size = _check_text_output_shape(o)
        name = metadata.outputs[i].name if metadata is not None and i < len(metadata.outputs) else None
        heads.append(OutputSpec(i, name, o.dtype, size, o.scale, o.zero_point))
    tokenizer, data = _check_tokenizer(metadata, length)
    max_length = tokenizer.max_length if length is None else length
    shapes = _check_text_shapes(t, list(input_shapes) if input_shapes else [t.shape], max_length)
    if tokenizer.padding == "max_length":  # the tower reads every position: the full length only
        shapes = TextShapes(max_length=max_length, lengths=(max_length,),
                            batches=tuple(bn for bn in shapes.batches if bn[1] == max_length),
                            dynamic_batch=shapes.dynamic_batch)
    return TextModelSpec(
        sequence_length=max_length,
        shapes=shapes,
        input_dtype=t.dtype,
        outputs=tuple(heads),
        tokenizer=tokenizer,
        tokenizer_json=data,
        embedding_space=declared_embedding_space(metadata),
        logit_scale=_check_logit_scale(metadata),
        logit_bias=_check_logit_bias(metadata),
        metadata=metadata,
    )


def check_image_embedder(backend: Backend) -> ModelSpec:
    """The image-embedder contract (image input, embedding outputs) of an opened backend."""
    return check_contract(backend.input_specs, backend.output_specs, backend.metadata, layout=backend.input_layout)


def check_contract(
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    metadata: Optional[ModelMetadata],
    *,
    layout: Optional[str] = "NHWC",
) -> ModelSpec:
    """Check every image-input and embedding-output rule and return the model's spec.

    Args:
      layout: the input layout the backend declares (``"NHWC"`` or ``"NCHW"``).

    Raises:
      InputContractError, OutputContractError, ModelContractError, MetadataError.
    """
    t = _check_input_count(inputs)
    _check_input_dtype(t)
    _check_input_rank(t)
    _check_input_batch(t)
    layout = _check_input_channels(t, layout)
    h, w = _check_input_size(t, layout)
    _check_metadata_counts(metadata, len(inputs), len(outputs))
    norm = _check_normalization(t, metadata)
    _check_color_space(metadata)
    _check_output_count(outputs)
    heads = []
    for i, o in enumerate(outputs):
        _check_output_dtype(o)
        size = _check_output_shape(o)
        name = None
        if metadata is not None and i < len(metadata.outputs):
            name = metadata.outputs[i].name
        heads.append(OutputSpec(i, name, o.dtype, size, o.scale, o.zero_point))
    recipe = _check_recipe(metadata, h, w)
    return ModelSpec(
        height=h,
        width=w,
        input_dtype=t.dtype,
        layout=layout,
        normalization=norm,
        recipe=recipe,
        outputs=tuple(heads),
        embedding_space=declared_embedding_space(metadata),
        logit_scale=_check_logit_scale(metadata),
        logit_bias=_check_logit_bias(metadata),
        metadata=metadata,
    )


# -- classification output rules -------------------------------------------------


@dataclass(frozen=True)
class LabelFile:
    """A ``TENSOR_AXIS_LABELS`` file of an output: its name, locale and labels."""

    name: str
    locale: Optional[str]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ScoreCalibrationSpec:
    """Sigmoid score calibration of an output (``params[i]`` None: class i gets ``default_score``)."""

    transformation: str
    default_score: float
    file: str
    params: tuple[Optional[CalibrationParams], ...]


@dataclass(frozen=True)
class ClassificationHeadSpec:
    """One classification head: the output, its label files, calibration and default threshold."""

    output: OutputSpec
    label_files: tuple[LabelFile, ...] = ()
    calibration: Optional[ScoreCalibrationSpec] = None
    score_threshold: Optional[float] = None

    @property
    def labels(self) -> Optional[tuple[str, ...]]:
        """The category names (the first label file, whatever its locale), None without labels."""
        return self.label_files[0].labels if self.label_files else None

    def display_names(self, locale: str) -> Optional[tuple[str, ...]]:
        """The labels of the first file whose locale is exactly ``locale`` ("" matches the first file)."""
        for f in self.label_files:
            if locale == "" or f.locale == locale:
                return f.labels
        return None


@dataclass(frozen=True)
class ClassifierSpec(ModelSpec):
    """A :class:`ModelSpec` plus one :class:`ClassificationHeadSpec` per output."""

    heads: tuple[ClassificationHeadSpec, ...] = ()


def _output_metadata(md: Optional[ModelMetadata], i: int) -> Optional[TensorMetadata]:
    if md is None or i >= len(md.outputs):
        return None
    return md.outputs[i]


def _file_bytes(md: ModelMetadata, name: str, what: str) -> bytes:
    data = md.file(name)
    if data is None:  # the readers refuse such files; a hand-made ModelMetadata may not
        raise MetadataError(f"{what}: the metadata names {name!r}, but its bytes are not in the model")
    return data


def _check_label_files(md: Optional[ModelMetadata], tm: Optional[TensorMetadata], t: TensorSpec,
                       n: int) -> tuple[LabelFile, ...]:
    if md is None or tm is None:
        return ()
    out = []
    for f in tm.associated_files:
        if f.type != "TENSOR_AXIS_LABELS":
            continue
        labels = parse_label_file(_file_bytes(md, f.name, f"output tensor {t.name!r}"), f.name)
        if len(labels) != n:
            raise OutputContractError(
                f"output tensor {t.name!r}: label file {f.name!r}"
                f"{f' (locale {f.locale!r})' if f.locale else ''} expected {n} labels (one per class), "
                f"got {len(labels)}"
            )
        out.append(LabelFile(f.name, f.locale, tuple(labels)))
    return tuple(out)


def _check_score_calibration(md: Optional[ModelMetadata], tm: Optional[TensorMetadata], t: TensorSpec,
                             n: int) -> Optional[ScoreCalibrationSpec]:
    if md is None or tm is None:
        return None
    files = [f for f in tm.associated_files if f.type == "TENSOR_AXIS_SCORE_CALIBRATION"]
    cal = tm.score_calibration
    if cal is None and not files:
        return None
    if cal is None:
        raise MetadataError(
            f"output tensor {t.name!r}: score calibration file {files[0].name!r} without ScoreCalibrationOptions "
            "(expected both: the options give the transformation and the default score)"
        )
    if len(files) != 1:
        raise MetadataError(
            f"output tensor {t.name!r}: ScoreCalibrationOptions expected exactly 1 TENSOR_AXIS_SCORE_CALIBRATION "
            f"file, got {len(files)}"
        )
    name = files[0].name
    params = parse_score_calibration(_file_bytes(md, name, f"output tensor {t.name!r}"), name, num_classes=n)
    if len(params) != n:
        raise OutputContractError(
            f"output tensor {t.name!r}: score calibration file {name!r} expected {n} lines (one per class, "
            f"empty for the default score), got {len(params)}"
        )
    if not math.isfinite(cal.default_score):
        raise MetadataError(f"output tensor {t.name!r}: score calibration default_score expected finite, "
                            f"got {cal.default_score}")
    return ScoreCalibrationSpec(cal.transformation, cal.default_score, name, tuple(params))


def _check_score_threshold(tm: Optional[TensorMetadata], t: TensorSpec) -> Optional[float]:
    if tm is None or tm.score_threshold is None:
        return None
    if not math.isfinite(tm.score_threshold):
        raise MetadataError(f"output tensor {t.name!r}: score threshold expected a finite number, got {tm.score_threshold}")
    return float(tm.score_threshold)


def has_classification_metadata(md: Optional[ModelMetadata]) -> bool:
    """Whether some output carries labels, score calibration or a score threshold (a classifier's metadata)."""
    if md is None:
        return False
    return any(
        tm.score_calibration is not None or tm.score_threshold is not None
        or any(f.type in ("TENSOR_AXIS_LABELS", "TENSOR_AXIS_SCORE_CALIBRATION") for f in tm.associated_files)
        for tm in md.outputs
    )


def check_image_classifier(backend: Backend) -> ClassifierSpec:
    """The image-classifier contract (image input, classification outputs) of an opened backend.

    Raises:
      InputContractError, OutputContractError, ModelContractError, MetadataError.
    """
    base = check_image_embedder(backend)
    md = backend.metadata
    heads = []
    for out, t in zip(base.outputs, backend.output_specs):
        tm = _output_metadata(md, out.index)
        heads.append(ClassificationHeadSpec(
            output=out,
            label_files=_check_label_files(md, tm, t, out.size),
            calibration=_check_score_calibration(md, tm, t, out.size),
            score_threshold=_check_score_threshold(tm, t),
        ))
    fields = {f: getattr(base, f) for f in ModelSpec.__dataclass_fields__}
    return ClassifierSpec(**fields, heads=tuple(heads))
