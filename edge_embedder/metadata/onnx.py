"""ONNX ``metadata_props``: the same :class:`ModelMetadata` as one JSON property.

ONNX has no metadata schema of its own, so the whole metadata goes into one
string property, ``edge_embedder.metadata``, as :meth:`ModelMetadata.to_dict`
writes it (custom entries as UTF-8 text).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import MetadataError
from .model_metadata import ModelMetadata, NormalizationOptions, TensorMetadata

__all__ = ["to_onnx_props", "from_onnx_props", "ONNX_PROPS_PREFIX"]

ONNX_PROPS_PREFIX = "edge_embedder."


def to_onnx_props(md: ModelMetadata) -> dict[str, str]:
    """Flatten ``md`` into ONNX ``metadata_props`` (string to string)."""
    return {ONNX_PROPS_PREFIX + "metadata": json.dumps(md.to_dict(), sort_keys=True)}


def from_onnx_props(props: Mapping[str, str]) -> ModelMetadata | None:
    """Inverse of :func:`to_onnx_props`; None when the props carry no metadata."""
    raw = props.get(ONNX_PROPS_PREFIX + "metadata")
    if raw is None:
        return None
    try:
        d = json.loads(raw)

        def tensor(t: Mapping[str, Any]) -> TensorMetadata:
            norm = t.get("normalization")
            size = t.get("default_size")
            stats = t.get("stats") or {}
            return TensorMetadata(
                name=t.get("name"),
                description=t.get("description"),
                content=t.get("content"),
                color_space=t.get("color_space"),
                default_size=(int(size["width"]), int(size["height"])) if size else None,
                normalization=(
                    NormalizationOptions(tuple(norm["mean"]), tuple(norm["std"])) if norm else None
                ),
                stats_min=tuple(stats["min"]) if stats.get("min") is not None else None,
                stats_max=tuple(stats["max"]) if stats.get("max") is not None else None,
            )

        return ModelMetadata(
            name=d.get("name"),
            description=d.get("description"),
            version=d.get("version"),
            author=d.get("author"),
            license=d.get("license"),
            min_parser_version=d.get("min_parser_version"),
            inputs=tuple(tensor(t) for t in d.get("inputs", [])),
            outputs=tuple(tensor(t) for t in d.get("outputs", [])),
            custom_metadata=tuple(
                (k, v.encode("utf-8")) for k, v in (d.get("custom_metadata") or {}).items()
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"ONNX metadata_props {ONNX_PROPS_PREFIX}metadata is invalid: {exc}") from None
