"""``inspect_model``: what a model file says about itself, and whether it passes the contract.

The ``inspect`` command prints it; the converters check every file they write
with it before keeping the file.
"""

from __future__ import annotations

import os
from typing import Any, Union

from .core.backends import TensorSpec, open_backend, read_model_bytes
from .core.contract import check_image_embedder
from .errors import EdgeEmbedderError, ModelLoadError

__all__ = ["inspect_model"]


def inspect_model(path: Union[str, "os.PathLike[str]"]) -> dict[str, Any]:
    """Format, runtime, tensors, metadata and the contract verdict of a model file, as a dict.

    ``report["contract"]["ok"]`` is False (with ``error_type`` and ``error``)
    when the model loads but breaks the contract.

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
        try:
            spec = check_image_embedder(backend)
        except ModelLoadError:
            raise
        except EdgeEmbedderError as exc:
            report["contract"] = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
        else:
            report["contract"] = {
                "ok": True,
                "task": "image_embedder",
                "input": {"height": spec.height, "width": spec.width, "dtype": str(spec.input_dtype),
                          "layout": spec.layout},
                "normalization": None if spec.normalization is None else {
                    "mean": list(spec.normalization.mean), "std": list(spec.normalization.std)},
                "recipe": spec.recipe.to_json(),
                "heads": [{"head_index": o.index, "head_name": o.name, "size": o.size, "dtype": str(o.dtype)}
                          for o in spec.outputs],
            }
    finally:
        backend.close()
    return report


def _tensor_json(t: TensorSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}
    if t.scale:
        d["quantization"] = {"scale": t.scale, "zero_point": t.zero_point}
    return d
