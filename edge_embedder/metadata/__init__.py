"""Model metadata: what a model file says about itself, read and written by the project.

* :class:`ModelMetadata`, :class:`TensorMetadata`, :class:`NormalizationOptions`:
  the content, as frozen dataclasses;
* TFLite: :func:`read_tflite_metadata` / :class:`MetadataReader` and
  :func:`populate_tflite_metadata` / :class:`MetadataWriter` (the ``M001``
  metadata flatbuffer of TFLite Support, with plain ``flatbuffers``);
* ONNX: :func:`to_onnx_props` / :func:`from_onnx_props` (``metadata_props``);
* the checksum a file carries of itself (:mod:`.checksum`): :func:`seal_checksum`,
  :func:`verify_checksum` (every task verifies it when it opens a file);
* label and score-calibration files (:mod:`.labels`): :func:`parse_label_file`,
  :func:`format_label_file`, :func:`parse_score_calibration`,
  :func:`format_score_calibration`.

Only the parts the project's tasks need are modelled: model name /
description / version / author / license, per-tensor name, description,
content (image or feature), image colour space and default size,
normalization, score calibration and score threshold options, stats,
associated files (model- and tensor-level, with their bytes: labels,
per-locale display names, score calibration, tokenizers) and subgraph custom
metadata. Fields we do not model are ignored on read.
"""

from .checksum import (
    CHECKSUM_KEY,
    CHECKSUM_PLACEHOLDER,
    CHECKSUM_RECORD_PREFIX,
    find_checksum_record,
    model_checksum,
    seal_checksum,
    verify_checksum,
)
from .labels import (
    CalibrationParams,
    format_label_file,
    format_score_calibration,
    parse_label_file,
    parse_score_calibration,
)
from .model_metadata import (
    ASSOCIATED_FILE_TYPES,
    EMBEDDING_SPACE_KEY,
    LOGIT_BIAS_KEY,
    LOGIT_SCALE_KEY,
    RECIPE_KEY,
    SCORE_TRANSFORMATIONS,
    TOKENIZER_KEY,
    AssociatedFile,
    ModelMetadata,
    NormalizationOptions,
    ScoreCalibration,
    TensorMetadata,
)
from .onnx import from_onnx_props, to_onnx_props
from .tflite import (
    METADATA_NAME,
    MetadataReader,
    MetadataWriter,
    build_metadata_buffer,
    parse_metadata_buffer,
    populate_tflite_metadata,
    read_packed_files,
    read_tflite_metadata,
    share_quantization_tables,
)

__all__ = [
    "ModelMetadata",
    "TensorMetadata",
    "NormalizationOptions",
    "AssociatedFile",
    "ScoreCalibration",
    "ASSOCIATED_FILE_TYPES",
    "SCORE_TRANSFORMATIONS",
    "MetadataReader",
    "MetadataWriter",
    "read_tflite_metadata",
    "share_quantization_tables",
    "read_packed_files",
    "populate_tflite_metadata",
    "build_metadata_buffer",
    "parse_metadata_buffer",
    "to_onnx_props",
    "from_onnx_props",
    "METADATA_NAME",
    "RECIPE_KEY",
    "CalibrationParams",
    "parse_label_file",
    "format_label_file",
    "parse_score_calibration",
    "format_score_calibration",
    "TOKENIZER_KEY",
    "EMBEDDING_SPACE_KEY",
    "LOGIT_SCALE_KEY",
    "LOGIT_BIAS_KEY",
    "CHECKSUM_KEY",
    "CHECKSUM_PLACEHOLDER",
    "CHECKSUM_RECORD_PREFIX",
    "seal_checksum",
    "verify_checksum",
    "find_checksum_record",
    "model_checksum",
]
