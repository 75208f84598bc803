"""``inspect_model``: what a model file says about itself, and whether it passes the contract.

The ``inspect`` command prints it; the converters check every file they write
with it before keeping the file.
"""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from .core.backends import TensorSpec, open_backend, read_model_bytes
from .core.contract import (
    ClassifierSpec,
    check_image_classifier,
    check_image_embedder,
    check_text_embedder,
    has_classification_metadata,
)
from .errors import EdgeEmbedderError, ModelLoadError
from .metadata.checksum import verify_checksum

__all__ = ["inspect_model"]


def inspect_model(path: Union[str, "os.PathLike[str]"]) -> dict[str, Any]:
    """Format, runtime, tensors, metadata and the contract verdict of a model file, as a dict.

    The contract checked follows the model: the text embedder's when input 0 is
    int32 or int64 (token ids); the image classifier's when its outputs carry
    labels, score calibration or a score threshold (each head then with its
    label count, first labels, locales, calibration and threshold); else the
    image embedder's. ``report["contract"]["task"]`` names the one checked
    (``"text_embedder"``, ``"image_classifier"``, ``"image_embedder"``), and
    ``report["contract"]["ok"]`` is False (with ``error_type`` and ``error``)
    when the model loads but breaks it.

    ``report["checksum"]`` says whether the file's own checksum was verified.

    Raises:
      ModelLoadError: the file is missing, empty, not a loadable model, or its checksum does not match.
      BackendUnavailableError: the runtime for its format is not installed.
      MetadataError: the metadata cannot be parsed.
    """
    data = read_model_bytes(path)
    report: dict[str, Any] = {"file": os.fspath(path), "size_bytes": len(data)}
    digest = verify_checksum(data, os.fspath(path))
    report["checksum"] = ({"verified": True, "scheme": "edge_embedder.checksum/1 chunked-crc32", "digest": digest}
                          if digest is not None else {"verified": False, "reason": "the file carries no checksum record"})
    backend = open_backend(data, num_threads=1, source=os.fspath(path))
    try:
        report["format"] = backend.name
        report["runtime"] = backend.runtime
        report["inputs"] = [_tensor_json(t) for t in backend.input_specs]
        report["outputs"] = [_tensor_json(t) for t in backend.output_specs]
        md = backend.metadata
        report["metadata"] = md.to_dict() if md is not None else None
        text = bool(backend.input_specs) and backend.input_specs[0].dtype in (np.dtype(np.int32), np.dtype(np.int64))
        task = "text_embedder" if text else "image_classifier" if has_classification_metadata(md) else "image_embedder"
        try:
            report["contract"] = _text_verdict(backend) if text else _image_verdict(backend, task)
        except ModelLoadError:
            raise
        except EdgeEmbedderError as exc:
            report["contract"] = {"ok": False, "task": task, "error_type": type(exc).__name__, "error": str(exc)}
    finally:
        backend.close()
    return report


FIRST_LABELS = 5  #: how many labels ``inspect`` shows per head


def _heads(outputs: Any) -> list[dict[str, Any]]:
    return [{"head_index": o.index, "head_name": o.name, "size": o.size, "dtype": str(o.dtype)} for o in outputs]


def _classifier_head_json(h: Any) -> dict[str, Any]:
    labels = h.labels
    return {
        "labels": len(labels) if labels is not None else 0,
        "first_labels": list(labels[:FIRST_LABELS]) if labels is not None else [],
        "label_files": [{"name": f.name, "locale": f.locale} for f in h.label_files],
        "score_calibration": None if h.calibration is None else {
            "transformation": h.calibration.transformation, "default_score": h.calibration.default_score,
            "file": h.calibration.file},
        "score_threshold": h.score_threshold,
    }


def _image_verdict(backend: Any, task: str) -> dict[str, Any]:
    spec = check_image_classifier(backend) if task == "image_classifier" else check_image_embedder(backend)
    heads = _heads(spec.outputs)
    if isinstance(spec, ClassifierSpec):
        for head, h in zip(heads, spec.heads):
            head.update(_classifier_head_json(h))
    return {
        "ok": True,
        "task": task,
        "input": {"height": spec.height, "width": spec.width, "dtype": str(spec.input_dtype), "layout": spec.layout},
        "normalization": None if spec.normalization is None else {
            "mean": list(spec.normalization.mean), "std": list(spec.normalization.std)},
        "recipe": spec.recipe.to_json(),
        "heads": heads,
        "embedding_space": spec.embedding_space,
        "logit_scale": spec.logit_scale,
        "logit_bias": spec.logit_bias,
    }


def _text_verdict(backend: Any) -> dict[str, Any]:
    spec = check_text_embedder(backend)
    t = spec.tokenizer
    return {
        "ok": True,
        "task": "text_embedder",
        "input": {"sequence_length": spec.sequence_length, "dtype": str(spec.input_dtype),
                  **spec.shapes.describe()},
        "tokenizer": {"file": t.file, "size_bytes": len(spec.tokenizer_json), "max_length": t.max_length,
                      "bos_id": t.bos_id, "eos_id": t.eos_id, "pad_id": t.pad_id, "lowercase": t.lowercase,
                      "pooling": t.pooling, "eos_if_absent": t.eos_if_absent, "padding": t.padding},
        "heads": _heads(spec.outputs),
        "embedding_space": spec.embedding_space,
        "logit_scale": spec.logit_scale,
        "logit_bias": spec.logit_bias,
    }


def _tensor_json(t: TensorSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}
    if t.scale:
        d["quantization"] = {"scale": t.scale, "zero_point": t.zero_point}
    return d
