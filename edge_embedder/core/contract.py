"""The model contract: one module, one check per rule.

Run once at load time. Combines the backend's tensor details with the model's
metadata into one immutable :class:`ModelSpec` that pre- and postprocessing
consume; nothing on the per-call path re-reads metadata. Each task picks the
rule set of its input and output kinds (:func:`check_image_embedder`).

The rules (each message says expected vs actual):

Image input
  * exactly one input tensor
  * dtype uint8 or float32
  * rank 4, batch 1, 3 (RGB) channels in the layout the backend declares
    (NHWC; ONNX graphs may be NCHW, which preprocessing then writes)
  * float32 input needs NormalizationOptions (1 or 3 means and stds, stds
    non-zero) in the metadata; uint8 input is fed raw pixels
  * when the metadata names a colour space it is RGB
Embedding outputs
  * at least one output tensor
  * each dtype uint8 or float32; uint8 outputs carry quantization params
  * each shape [1, N] or [1, 1, 1, N]
Classification outputs (the embedding-output rules, and per output)
  * each ``TENSOR_AXIS_LABELS`` file has exactly N labels (one per class);
    the first one gives the category names, the others display names by locale
  * ``ScoreCalibrationOptions`` and a ``TENSOR_AXIS_SCORE_CALIBRATION`` file
    come together: exactly one file, one valid line per class (N lines)
  * a score threshold, when present, is a finite number (the default threshold)
Metadata
  * when present, as many input / output tensor metadata as tensors
  * a preprocessing recipe, when present, is valid and ends at the input size
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputContractError, MetadataError, ModelContractError, OutputContractError
from ..metadata import (
    RECIPE_KEY,
    CalibrationParams,
    ModelMetadata,
    NormalizationOptions,
    TensorMetadata,
    parse_label_file,
    parse_score_calibration,
)
from .backends.base import Backend, TensorSpec
from .recipe import DEFAULT_RECIPE, Recipe

__all__ = ["ModelSpec", "OutputSpec", "check_image_embedder", "check_contract", "ClassifierSpec",
           "ClassificationHeadSpec", "LabelFile", "ScoreCalibrationSpec", "check_image_classifier",
           "has_classification_metadata"]

_INPUT_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
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


@dataclass(frozen=True)
class ModelSpec:
    """Everything an image task needs to know about a model, checked."""

    height: int
    width: int
    input_dtype: np.dtype
    layout: str  # "NHWC" or "NCHW": the layout preprocessing writes
    normalization: Optional[NormalizationOptions]  # None for uint8 input
    recipe: Recipe
    outputs: tuple[OutputSpec, ...]
    metadata: Optional[ModelMetadata] = field(default=None, compare=False)

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
