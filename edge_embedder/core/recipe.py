"""The preprocessing recipe: how an image becomes a model's H x W input, as data in the model file.

Read from the custom metadata ``edge_embedder.recipe`` (JSON) and validated by
the contract once at load; :mod:`edge_embedder.vision.preprocess` carries it
out. A model without a recipe gets :data:`DEFAULT_RECIPE`, MediaPipe's
stretch, so its vectors agree with MediaPipe's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..errors import ModelContractError
from ..metadata import RECIPE_KEY

__all__ = ["Recipe", "DEFAULT_RECIPE", "INTERPOLATIONS", "RECIPE_KEY"]
#: Interpolations of the ``pil`` sampler (Pillow's filters); the ``mediapipe`` sampler is bilinear only.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
_SAMPLERS = ("mediapipe", "pil")
_RESIZES = ("stretch", "shortest_edge")


@dataclass(frozen=True)
class Recipe:
    """How an image becomes the model's H x W input (before normalization).

    Stored in the model's custom metadata ``edge_embedder.recipe`` as JSON, e.g.
    ``{"sampler": "pil", "resize": "shortest_edge", "size": 224,
    "crop": [224, 224], "interpolation": "bicubic"}``.

    Attributes:
      sampler: ``"mediapipe"`` (corner-aligned bilinear remap, no antialias) or
        ``"pil"`` (Pillow resize, antialiased, as transformers' processors).
      resize: ``"stretch"`` to ``size`` (h, w) or ``"shortest_edge"`` to ``size``.
      size: (h, w) for stretch (None means the model input size), an int for
        shortest_edge.
      crop: (h, w) of a centre crop after the resize, or None.
      interpolation: bilinear (mediapipe sampler: only bilinear), bicubic,
        nearest, lanczos, box, hamming.
    """

    sampler: str = "mediapipe"
    resize: str = "stretch"
    size: Any = None
    crop: Optional[tuple[int, int]] = None
    interpolation: str = "bilinear"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Recipe":
        if not isinstance(data, Mapping):
            raise ModelContractError(f"recipe: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"sampler", "resize", "size", "crop", "interpolation", "version"}
        if unknown:
            raise ModelContractError(f"recipe: unknown keys {sorted(unknown)}")
        size = data.get("size")
        if isinstance(size, list):
            size = tuple(int(v) for v in size)
        crop = data.get("crop")
        if isinstance(crop, int):
            crop = (crop, crop)
        elif crop is not None:
            crop = tuple(int(v) for v in crop)
        return cls(
            sampler=data.get("sampler", "mediapipe"),
            resize=data.get("resize", "stretch"),
            size=size,
            crop=crop,
            interpolation=data.get("interpolation", "bilinear"),
        )

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sampler": self.sampler, "resize": self.resize}
        if self.size is not None:
            d["size"] = list(self.size) if isinstance(self.size, tuple) else self.size
        if self.crop is not None:
            d["crop"] = list(self.crop)
        d["interpolation"] = self.interpolation
        return d

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    def validate(self, height: int, width: int) -> None:
        """Check the recipe ends at the model's input size (H, W)."""
        if self.sampler not in _SAMPLERS:
            raise ModelContractError(f"recipe.sampler: expected one of {_SAMPLERS}, got {self.sampler!r}")
        if self.resize not in _RESIZES:
            raise ModelContractError(f"recipe.resize: expected one of {_RESIZES}, got {self.resize!r}")
        if self.sampler == "mediapipe":
            if self.interpolation != "bilinear":
                raise ModelContractError(
                    f"recipe.interpolation: the mediapipe sampler is bilinear only, got {self.interpolation!r}"
                )
            if self.resize != "stretch" or self.crop is not None or self.size not in (None, (height, width)):
                raise ModelContractError(
                    "recipe: the mediapipe sampler only stretches to the input size, "
                    f"got resize={self.resize!r} size={self.size!r} crop={self.crop!r}"
                )
            return
        if self.interpolation not in INTERPOLATIONS:
            raise ModelContractError(
                f"recipe.interpolation: expected one of {list(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.resize == "shortest_edge":
            if not isinstance(self.size, int) or self.size < 1:
                raise ModelContractError(
                    f"recipe.size: shortest_edge needs a positive int, got {self.size!r}"
                )
            if self.crop is None:
                raise ModelContractError("recipe.crop: shortest_edge needs a centre crop to reach a fixed size")
        elif self.size is not None and (not isinstance(self.size, tuple) or len(self.size) != 2):
            raise ModelContractError(f"recipe.size: stretch needs [height, width], got {self.size!r}")
        final: Any = self.crop if self.crop is not None else (self.size or (height, width))
        if tuple(final) != (height, width):
            raise ModelContractError(
                f"recipe: ends at {final[0]}x{final[1]} (h x w) but the model input is {height}x{width}"
            )


DEFAULT_RECIPE = Recipe()
