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

__all__ = ["NormalizationOptions", "TensorMetadata", "ModelMetadata", "RECIPE_KEY"]

#: Custom metadata entry holding the preprocessing recipe (UTF-8 JSON).
RECIPE_KEY = "edge_embedder.recipe"


@dataclass(frozen=True)
class NormalizationOptions:
    """Per-channel ``(x - mean) / std``; one value applies to every channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))


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


@dataclass(frozen=True)
class ModelMetadata:
    """The subset of TFLite model metadata an image embedder uses."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    inputs: tuple[TensorMetadata, ...] = ()
    outputs: tuple[TensorMetadata, ...] = ()
    custom_metadata: tuple[tuple[str, bytes], ...] = ()
    min_parser_version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        custom: Any = self.custom_metadata
        if isinstance(custom, Mapping):
            custom = custom.items()
        object.__setattr__(self, "custom_metadata", tuple((str(k), bytes(v)) for k, v in custom))

    def custom(self, name: str) -> bytes | None:
        """The data of the custom metadata entry ``name``, or None."""
        for key, value in self.custom_metadata:
            if key == name:
                return value
        return None

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
        }


def _opt_list(v: Sequence[float] | None) -> list[float] | None:
    return None if v is None else list(v)
