"""ONNX ``metadata_props``: the same :class:`ModelMetadata` as one JSON property.

ONNX has no metadata schema of its own, so the whole metadata goes into one
string property, ``edge_embedder.metadata``, as :meth:`ModelMetadata.to_dict`
writes it (custom entries as UTF-8 text), and each associated file into a
property ``edge_embedder.file/<name>`` holding its bytes in base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import replace
from typing import Any, Mapping

from ..errors import MetadataError
from .model_metadata import AssociatedFile, ModelMetadata, NormalizationOptions, ScoreCalibration, TensorMetadata

__all__ = ["to_onnx_props", "from_onnx_props", "ONNX_PROPS_PREFIX"]

ONNX_PROPS_PREFIX = "edge_embedder."
_FILE_PREFIX = ONNX_PROPS_PREFIX + "file/"


def to_onnx_props(md: ModelMetadata, *, checksum: bool = False) -> dict[str, str]:
    """Flatten ``md`` into ONNX ``metadata_props`` (string to string).

    A checksum entry in ``md`` (:data:`~edge_embedder.metadata.CHECKSUM_KEY`,
    e.g. read from another file) is not copied: it belongs to the file it was
    computed for. ``checksum=True`` writes a placeholder record instead; call
    :func:`~edge_embedder.metadata.seal_checksum` on the serialized model after
    writing the props (the converters do).
    """
    named = [f.name for f in md.all_associated_files()]
    contents = dict(md.files)
    missing = [n for n in named if n not in contents]
    if missing:
        raise MetadataError(f"associated files {missing} are named in the metadata but their bytes are not in md.files")
    from .checksum import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER

    custom = [(k, v) for k, v in md.custom_metadata if k != CHECKSUM_KEY]
    if checksum:  # the digest of the new file is filled in by seal_checksum()
        custom.append((CHECKSUM_KEY, CHECKSUM_PLACEHOLDER))
    md = replace(md, custom_metadata=tuple(custom))
    props = {ONNX_PROPS_PREFIX + "metadata": json.dumps(md.to_dict(), sort_keys=True)}
    for name in named:
        props[_FILE_PREFIX + name] = base64.b64encode(contents[name]).decode("ascii")
    return props


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
                associated_files=tuple(_file(f) for f in t.get("associated_files", [])),
                score_calibration=(ScoreCalibration(**t["score_calibration"]) if t.get("score_calibration") else None),
                score_threshold=t.get("score_threshold"),
            )

        md = ModelMetadata(
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
            associated_files=tuple(_file(f) for f in d.get("associated_files", [])),
        )
    except MetadataError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"ONNX metadata_props {ONNX_PROPS_PREFIX}metadata is invalid: {exc}") from None
    files = []
    for f in md.all_associated_files():
        raw_file = props.get(_FILE_PREFIX + f.name)
        if raw_file is None:
            raise MetadataError(f"the metadata names the associated file {f.name!r}, but the model has no "
                                f"{_FILE_PREFIX}{f.name} property")
        try:
            files.append((f.name, base64.b64decode(raw_file, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise MetadataError(f"ONNX property {_FILE_PREFIX}{f.name} is not valid base64: {exc}") from None
    return replace(md, files=tuple(files)) if files else md


def _file(f: Mapping[str, Any]) -> AssociatedFile:
    return AssociatedFile(name=f["name"], type=f.get("type", "UNKNOWN"), description=f.get("description"),
                          locale=f.get("locale"), version=f.get("version"))
