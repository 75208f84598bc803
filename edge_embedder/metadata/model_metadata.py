"""The metadata a model file carries, as plain frozen dataclasses.

One :class:`ModelMetadata` maps to and from both containers: the TFLite
metadata flatbuffer (:mod:`.tflite`) and ONNX ``metadata_props`` (:mod:`.onnx`).
Keys of the custom metadata entries the project writes are defined here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import MetadataError

__all__ = ["NormalizationOptions", "ScoreCalibration", "AssociatedFile", "TensorMetadata", "ModelMetadata",
           "RECIPE_KEY", "TOKENIZER_KEY", "EMBEDDING_SPACE_KEY", "LOGIT_SCALE_KEY", "LOGIT_BIAS_KEY",
           "ASSOCIATED_FILE_TYPES",
           "SCORE_TRANSFORMATIONS"]

#: Custom metadata entry holding the preprocessing recipe (UTF-8 JSON).
RECIPE_KEY = "edge_embedder.recipe"
#: Custom metadata entry of a text model: how its tokenizer frames ids (UTF-8 JSON object:
#: ``file`` (the associated file holding tokenizer.json), ``max_length``, ``bos_id`` (null:
#: no start token), ``eos_id``, ``pad_id``, ``lowercase``; optionally ``eos_if_absent``
#: (true: no end-of-text id after a text whose own ids end with it), ``padding``
#: (``"max_length"``: the tower reads every position, so every text runs at the full
#: length) and ``pooling`` for information).
TOKENIZER_KEY = "edge_embedder.tokenizer"
#: Custom metadata entry naming the model's embedding space (a UTF-8 string): vectors of
#: two models are comparable only when their ids are equal (both towers of one CLIP checkpoint).
EMBEDDING_SPACE_KEY = "edge_embedder.embedding_space"
#: Custom metadata entry: the contrastive model's logit scale, ``exp(logit_scale)`` of the
#: checkpoint (UTF-8 JSON number; 100 for trained CLIP), which zero-shot scores multiply cosines by.
LOGIT_SCALE_KEY = "edge_embedder.logit_scale"
#: Custom metadata entry: the logit bias of a sigmoid-trained contrastive model (SigLIP; UTF-8
#: JSON number). Its presence means zero-shot scores are ``sigmoid(scale * cosine + bias)``,
#: each label on its own; without it (CLIP) they are a softmax over the labels.
LOGIT_BIAS_KEY = "edge_embedder.logit_bias"

#: TFLite Support's ``AssociatedFileType`` enum, by name (metadata_schema.fbs).
ASSOCIATED_FILE_TYPES = (
    "UNKNOWN",
    "DESCRIPTIONS",
    "TENSOR_AXIS_LABELS",
    "TENSOR_VALUE_LABELS",
    "TENSOR_AXIS_SCORE_CALIBRATION",
    "VOCABULARY",
    "SCANN_INDEX_FILE",
)


@dataclass(frozen=True)
class NormalizationOptions:
    """Per-channel ``(x - mean) / std``; one value applies to every channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))


#: TFLite Support's ``ScoreTransformationType`` enum, by name.
SCORE_TRANSFORMATIONS = ("IDENTITY", "LOG", "INVERSE_LOGISTIC")


@dataclass(frozen=True)
class ScoreCalibration:
    """``ScoreCalibrationOptions`` of an output tensor (the parameters are in its calibration file).

    Attributes:
      transformation: ``g(x)`` applied to the score before the sigmoid:
        IDENTITY, LOG or INVERSE_LOGISTIC.
      default_score: the score of classes without calibration parameters.
    """

    transformation: str = "IDENTITY"
    default_score: float = 0.0

    def __post_init__(self) -> None:
        if self.transformation not in SCORE_TRANSFORMATIONS:
            raise MetadataError(f"score calibration: transformation expected one of {SCORE_TRANSFORMATIONS}, "
                                f"got {self.transformation!r}")
        object.__setattr__(self, "default_score", float(self.default_score))


@dataclass(frozen=True)
class AssociatedFile:
    """A file packed with the model (labels, score calibration, a tokenizer...).

    The flatbuffer (or ONNX property) records the name, type, locale and
    description; the bytes travel in the model file too (TFLite: a zip archive
    appended to the flatbuffer, as TFLite Support's MetadataPopulator writes
    it; ONNX: base64 in ``metadata_props``) and are in :attr:`ModelMetadata.files`.
    """

    name: str
    type: str = "UNKNOWN"
    description: str | None = None
    locale: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise MetadataError(f"associated file name: expected a plain file name, got {self.name!r}")
        if self.type not in ASSOCIATED_FILE_TYPES:
            raise MetadataError(f"associated file {self.name!r}: type expected one of {ASSOCIATED_FILE_TYPES}, "
                                f"got {self.type!r}")


@dataclass(frozen=True)
class TensorMetadata:
    """Metadata of one input or output tensor."""

    name: str | None = None
    description: str | None = None
    content: str | None = None  # "image", "feature", ... or None when absent
    color_space: str | None = None  # "RGB", "GRAYSCALE", "UNKNOWN" (image content)
    default_size: tuple[int, int] | None = None  # (width, height)
    normalization: NormalizationOptions | None = None
    stats_min: tuple[float, ...] | None = None
    stats_max: tuple[float, ...] | None = None
    associated_files: Sequence[AssociatedFile] = ()  # stored as a tuple
    score_calibration: ScoreCalibration | None = None  # ScoreCalibrationOptions process unit
    score_threshold: float | None = None  # ScoreThresholdingOptions.global_score_threshold

    def __post_init__(self) -> None:
        object.__setattr__(self, "associated_files", tuple(self.associated_files))


@dataclass(frozen=True)
class ModelMetadata:
    """The subset of TFLite model metadata an image embedder uses."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    # Sequences and mappings are accepted and stored as tuples (the dataclass stays hashable).
    inputs: Sequence[TensorMetadata] = ()
    outputs: Sequence[TensorMetadata] = ()
    custom_metadata: Sequence[tuple[str, bytes]] = ()  # a mapping name -> bytes is accepted too
    min_parser_version: str | None = None
    associated_files: Sequence[AssociatedFile] = ()
    #: The bytes of every associated file (model- and tensor-level), by name.
    files: Sequence[tuple[str, bytes]] = ()  # a mapping name -> bytes is accepted too

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "associated_files", tuple(self.associated_files))
        for name in ("custom_metadata", "files"):
            items: Any = getattr(self, name)
            if isinstance(items, Mapping):
                items = items.items()
            object.__setattr__(self, name, tuple((str(k), bytes(v)) for k, v in items))
        names = [f.name for f in self.all_associated_files()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise MetadataError(f"associated files: names must be unique in a model, got {dupes} more than once")

    def all_associated_files(self) -> list[AssociatedFile]:
        """Model-level associated files, then each input's and each output's, in order."""
        out = list(self.associated_files)
        for t in (*self.inputs, *self.outputs):
            out += t.associated_files
        return out

    def file(self, name: str) -> bytes | None:
        """The bytes of the associated file ``name``, or None when the model does not carry it."""
        for key, value in self.files:
            if key == name:
                return value
        return None

    def custom(self, name: str) -> bytes | None:
        """The data of the custom metadata entry ``name``, or None."""
        for key, value in self.custom_metadata:
            if key == name:
                return value
        return None

    def custom_text(self, name: str) -> str | None:
        """The custom metadata entry ``name`` decoded as UTF-8 text, or None."""
        data = self.custom(name)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MetadataError(f"custom metadata {name!r}: expected UTF-8 text, got {data[:40]!r}: {exc}") from None

    def custom_json(self, name: str) -> Any:
        """The custom metadata entry ``name`` decoded as UTF-8 JSON, or None."""
        data = self.custom(name)
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MetadataError(
                f"custom metadata {name!r}: expected UTF-8 JSON, got {data[:40]!r}: {exc}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (custom data as text when it is UTF-8)."""

        def tensor(t: TensorMetadata) -> dict[str, Any]:
            d: dict[str, Any] = {
                "name": t.name,
                "description": t.description,
                "content": t.content,
            }
            if t.color_space is not None:
                d["color_space"] = t.color_space
            if t.default_size is not None:
                d["default_size"] = {"width": t.default_size[0], "height": t.default_size[1]}
            if t.normalization is not None:
                d["normalization"] = {
                    "mean": list(t.normalization.mean),
                    "std": list(t.normalization.std),
                }
            if t.stats_min is not None or t.stats_max is not None:
                d["stats"] = {"min": _opt_list(t.stats_min), "max": _opt_list(t.stats_max)}
            if t.associated_files:
                d["associated_files"] = [_file_dict(f) for f in t.associated_files]
            if t.score_calibration is not None:
                d["score_calibration"] = {"transformation": t.score_calibration.transformation,
                                          "default_score": t.score_calibration.default_score}
            if t.score_threshold is not None:
                d["score_threshold"] = t.score_threshold
            return d

        custom: dict[str, Any] = {}
        for key, value in self.custom_metadata:
            try:
                custom[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                custom[key] = value.hex()
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "author": self.author,
            "license": self.license,
            "min_parser_version": self.min_parser_version,
            "inputs": [tensor(t) for t in self.inputs],
            "outputs": [tensor(t) for t in self.outputs],
            "custom_metadata": custom,
            "associated_files": [_file_dict(f) for f in self.associated_files],
            "file_sizes": {k: len(v) for k, v in self.files},
        }


def _file_dict(f: AssociatedFile) -> dict[str, Any]:
    return {k: v for k, v in (("name", f.name), ("type", f.type), ("description", f.description),
                              ("locale", f.locale), ("version", f.version)) if v is not None}


def _opt_list(v: Sequence[float] | None) -> list[float] | None:
    return None if v is None else list(v)
