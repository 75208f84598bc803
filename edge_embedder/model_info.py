"""``inspect_model``: what a model file says about itself, and whether it passes the contract.

The ``inspect`` command prints it; the converters check every file they write
with it before keeping the file.
"""

from __future__ import annotations

import os
from typing import Any, Union

from .core.backends import TensorSpec, open_backend, read_model_bytes
from .core.contract import ClassifierSpec, check_image_classifier, check_image_embedder, has_classification_metadata
from .errors import EdgeEmbedderError, ModelLoadError

__all__ = ["inspect_model"]


def inspect_model(path: Union[str, "os.PathLike[str]"]) -> dict[str, Any]:
    """Format, runtime, tensors, metadata and the contract verdict of a model file, as a dict.

    ``report["contract"]["ok"]`` is False (with ``error_type`` and ``error``)
    when the model loads but breaks the contract. A model whose outputs carry
    labels, score calibration or a score threshold is checked as an image
    classifier (``task`` ``"image_classifier"``, each head with its label
    count, first labels, locales, calibration and threshold); any other as an
    image embedder.

    Raises:
      ModelLoadError: the file is missing, empty, or not a loadable model.
      BackendUnavailableError: the runtime for its format is not installed.
      MetadataError: the metadata cannot be parsed.
    """
    data = read_model_bytes(path)
    report: dict[str, Any] = {"file": os.fspath(path), "size_bytes": len(data)}
    backend = open_backend(data, num_threads=1, source=os.fspath(path))
    try:
        report["format"] = backend.name
        report["runtime"] = backend.runtime
        report["inputs"] = [_tensor_json(t) for t in backend.input_specs]
        report["outputs"] = [_tensor_json(t) for t in backend.output_specs]
        md = backend.metadata
        report["metadata"] = md.to_dict() if md is not None else None
        classifier = has_classification_metadata(md)
        try:
            spec = check_image_classifier(backend) if classifier else check_image_embedder(backend)
        except ModelLoadError:
            raise
        except EdgeEmbedderError as exc:
            report["contract"] = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
        else:
            report["contract"] = {
                "ok": True,
                "task": "image_classifier" if classifier else "image_embedder",
                "input": {"height": spec.height, "width": spec.width, "dtype": str(spec.input_dtype),
                          "layout": spec.layout},
                "normalization": None if spec.normalization is None else {
                    "mean": list(spec.normalization.mean), "std": list(spec.normalization.std)},
                "recipe": spec.recipe.to_json(),
                "heads": [{"head_index": o.index, "head_name": o.name, "size": o.size, "dtype": str(o.dtype)}
                          for o in spec.outputs],
            }
            if isinstance(spec, ClassifierSpec):
                for head, h in zip(report["contract"]["heads"], spec.heads):
                    head.update(_classifier_head_json(h))
    finally:
        backend.close()
    return report


FIRST_LABELS = 5  #: how many labels ``inspect`` shows per head


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


def _tensor_json(t: TensorSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}
    if t.scale:
        d["quantization"] = {"scale": t.scale, "zero_point": t.zero_point}
    return d
