"""Per-call geometry of vision tasks: a region of interest and a rotation (MediaPipe's names).

Frozen dataclasses validated in ``__post_init__`` (rotation a multiple of 90,
ROI inside [0, 1] with left < right and top < bottom); a bad value raises
:class:`~edge_embedder.errors.OptionsError` when it is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..errors import OptionsError

__all__ = ["RectF", "ImageProcessingOptions", "check_processing_options", "check_pixel_budget"]


@dataclass(frozen=True)
class RectF:
    """A rectangle in normalized image coordinates, each edge in [0, 1]."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise OptionsError(f"RectF.{name}: expected a finite number, got {v!r}")
            if not 0.0 <= v <= 1.0:
                raise OptionsError(f"RectF.{name}: expected a value in [0, 1], got {v}")
            object.__setattr__(self, name, float(v))
        if not self.left < self.right:
            raise OptionsError(f"RectF: expected left < right, got left={self.left} right={self.right}")
        if not self.top < self.bottom:
            raise OptionsError(f"RectF: expected top < bottom, got top={self.top} bottom={self.bottom}")

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class ImageProcessingOptions:
    """Per-call geometry: a region of interest, then a rotation of that crop.

    Attributes:
      region_of_interest: the part of the (unrotated) image to embed; None is
        the whole image.
      rotation_degrees: a multiple of 90; positive turns the crop clockwise,
        as MediaPipe does (+90 gives ``np.rot90(crop, -1)``).
    """

    region_of_interest: Optional[RectF] = None
    rotation_degrees: int = 0

    def __post_init__(self) -> None:
        roi = self.region_of_interest
        if roi is not None and not isinstance(roi, RectF):
            raise OptionsError(f"region_of_interest: expected RectF or None, got {type(roi).__name__}")
        r = self.rotation_degrees
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r % 90 != 0:
            raise OptionsError(f"rotation_degrees: expected a multiple of 90, got {r!r}")
        object.__setattr__(self, "rotation_degrees", int(r))

    @property
    def quarter_turns(self) -> int:
        """Clockwise quarter turns in 0..3."""
        return (self.rotation_degrees // 90) % 4


def check_processing_options(ipo: object) -> Optional[ImageProcessingOptions]:
    """``ipo`` itself when it is None or an :class:`ImageProcessingOptions`; OptionsError otherwise."""
    if ipo is not None and not isinstance(ipo, ImageProcessingOptions):
        raise OptionsError(f"image_processing_options: expected ImageProcessingOptions, got {type(ipo).__name__}")
    return ipo


def check_pixel_budget(max_pixels: object) -> None:
    """The ``max_image_pixels`` option of the vision tasks: an integer >= 1, or None."""
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
        raise OptionsError(f"max_image_pixels: expected an integer >= 1 or None, got {max_pixels!r}")
