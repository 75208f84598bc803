"""Shrink-on-load: decode a JPEG file at the smallest DCT scale the model still needs.

A 12 MP photo is decoded in full and then shrunk to 224 x 224: most of the
decode is thrown away. libjpeg can decode at 1/2, 1/4 or 1/8 scale inside the
inverse DCT (Pillow: ``Image.draft``), several times faster and with 1/4 to
1/64 of the memory. :func:`decode_for_model` picks the smallest scale that
still leaves ``safety`` x the model's input size inside the region of interest
along each axis, decodes, applies the EXIF orientation exactly as
:meth:`edge_embedder.Image.create_from_file` does, and says in
:class:`DecodeInfo` which region of the returned array holds the caller's ROI.

Geometry (why the ROI is re-expressed, not passed through)
    At scale ``1/s`` libjpeg returns ``ceil(W / s)`` x ``ceil(H / s)`` pixels;
    reduced pixel ``k`` holds source pixels ``[k*s, (k+1)*s)`` (measured: the
    DCT-scaled pixel equals the mean of that block to 0.2-0.4 levels), so the
    image content spans ``W / s`` reduced pixels, not ``ceil(W / s)``: when
    ``W`` is not a multiple of ``s`` the last column is a partial one (Pillow's
    ``draft`` returns the same ``(0, 0, W / s, H / s)`` box). A normalized
    coordinate ``x`` of the full image therefore lies at ``x * W / s`` reduced
    pixels, which is ``x * W / (s * ceil(W / s))`` normalized, and an EXIF
    flip or rotation moves the partial column / row to the left or top, which
    shifts the mapping by the partial pixel. :attr:`DecodeInfo.roi` is the
    caller's ROI (or the whole image) mapped through all that; embedding the
    returned array with ``region_of_interest=RectF(*info.roi)`` and the same
    rotation covers the same content as the full decode with the original ROI.
    It is None only when no ROI was given and the mapping is the identity.

Rules
    * JPEG (and MPO, the multi-picture JPEG of phone cameras) only; every other
      format decodes in full through the same code as ``Image.create_from_file``
      (bit-identical), as does a JPEG whose chosen scale is 1/1.
    * Pillow's decompression-bomb error limit applies to the *stored* size,
      whatever the scale, as for a full decode: the entropy decoding still
      walks every block.
    * ``max_pixels`` is a budget on the *decoded* image: a coarser scale is
      taken when the wanted one would exceed it (recorded in
      :attr:`DecodeInfo.budget_limited`), and a file that cannot fit even at 1/8
      (or a non-JPEG over the budget) raises :class:`ImageDecodeError`. With
      shrink-on-load an 80 MP JPEG (under Pillow's default bomb limit of 89 MP)
      decodes at 1/8 into ~4 MB of RGB instead of 240 MB.
    * Empty, missing, truncated, corrupt and non-image files raise the same
      typed errors as ``Image.create_from_file``.

Accuracy (benchmarks/bench_shrink_accuracy.py, floor: min cosine >= 0.99 to
the full-decode embedding): pil recipes (antialiased, as transformers' ViT and
CLIP processors) meet it at safety 1.0-1.25 with the runtime's exact fractional crop; the MediaPipe recipe (corner-aligned bilinear, no
antialiasing) does not meet it with any factor that still shrinks, because its
full-decode reference point-samples pixel-level detail and noise that any
reduced decode averages away (the shrunk embedding is the one closer to an
alias-free view): :func:`recommended_safety` returns None (decode fully) for it.

Decoding itself is :func:`edge_embedder.vision.image.decode_file` (the same
code as a full decode, with a DCT scale), and the pil recipe on a reduced
decode is the runtime's own pil sampler (``Preprocessor.write(..., reduced=info)``),
which computes the geometry on the full-resolution image and resamples the
reduced pixels with a fractional source box.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ImageDecodeError, OptionsError
from .image import _EXIF_TURNS, decode_file

__all__ = [
    "DecodeInfo",
    "JPEG_SCALES",
    "DEFAULT_SAFETY",
    "RECOMMENDED_SAFETY",
    "recommended_safety",
    "decode_for_model",
    "choose_scale",
    "scaled_size",
    "target_hw_for",
    "roi_in_decoded",
    "DECODE_FULL",
    "decode_tag",
]

#: libjpeg DCT scales Pillow's ``draft`` can request (denominators), coarsest first.
JPEG_SCALES = (8, 4, 2, 1)

#: Smallest safety factor whose min cosine to the full-decode embedding is >= 0.99
#: over 315 cases (15 photos as 2 / 12 MP JPEGs, q75 / q92, EXIF portrait, noise;
#: whole image, ROI + 90 degrees, small ROI): benchmarks/results/shrink_accuracy.md.
#: Keyed by (sampler, resize, interpolation, exact) where ``exact`` means the pil
#: recipe is resampled with the runtime's exact fractional crop. None: decode fully. The MediaPipe
#: recipe (no antialiasing) meets the floor with no factor that still shrinks.
RECOMMENDED_SAFETY: dict[tuple[str, str, str, bool], Optional[float]] = {
    ("mediapipe", "stretch", "bilinear", False): None,
    ("pil", "stretch", "bilinear", False): 1.25,
    ("pil", "shortest_edge", "bicubic", False): 2.5,
    ("pil", "stretch", "bilinear", True): 1.25,
    ("pil", "shortest_edge", "bicubic", True): 1.0,
}
#: For a pil recipe that was not measured: the largest factor any measured pil recipe needed.
DEFAULT_SAFETY = 2.5

#: Decode tag of a full decode (what ``Image.create_from_file`` does).
DECODE_FULL = "full"

_EXIF_ORIENTATION = 0x0112
_JPEG_FORMATS = ("JPEG", "MPO")


def recommended_safety(recipe: Any = None, *, exact: bool = False) -> Optional[float]:
    """The measured safety factor for a model's recipe (None: decode fully).

    ``recipe`` is the model's ``Recipe`` (duck-typed: sampler, resize,
    interpolation) or None for the default MediaPipe recipe. ``exact``: the
    pil recipe is resampled with the runtime's exact fractional crop. Unmeasured pil
    recipes get :data:`DEFAULT_SAFETY`; the MediaPipe sampler always decodes fully.
    """
    sampler = getattr(recipe, "sampler", "mediapipe") if recipe is not None else "mediapipe"
    if sampler == "mediapipe":
        return None
    key = (sampler, getattr(recipe, "resize", "stretch"), getattr(recipe, "interpolation", "bilinear"), bool(exact))
    return RECOMMENDED_SAFETY.get(key, DEFAULT_SAFETY)


def decode_tag(safety: Optional[float], *, exact: bool = False) -> str:
    """A short string naming the decode, for output files (``--resume`` must not mix them).

    ``safety=None`` is the full decode (:data:`DECODE_FULL`); ``exact``: pil
    recipes resampled with the exact fractional crop.
    """
    if safety is None:
        return DECODE_FULL
    return f"jpeg-dct-shrink/v1 safety={float(safety):g}" + (" exact-crop" if exact else "")


@dataclasses.dataclass(frozen=True)
class DecodeInfo:
    """What :func:`decode_for_model` did.

    Attributes:
      scale: libjpeg DCT scale denominator used: 1 (full decode), 2, 4 or 8.
      format: Pillow's format name of the file ("JPEG", "MPO", "PNG", ...).
      original_size: (width, height) of the full-resolution image after EXIF
        orientation (what ``Image.create_from_file`` returns).
      decoded_size: (width, height) of the returned array (after orientation).
      orientation: the EXIF orientation applied (1 = none; 2-8 as in EXIF).
      roi: (left, top, right, bottom), normalized to the *returned* array, that
        holds the caller's ROI (or the whole image); None means "no ROI" (the
        whole returned array is the image, exactly).
      budget_limited: a coarser scale than the safety factor asks for was
        taken to stay within ``max_pixels``.
      stored_size: (width, height) as stored in the file, before orientation.
    """

    scale: int
    format: Optional[str]
    original_size: tuple[int, int]
    decoded_size: tuple[int, int]
    orientation: int
    roi: Optional[tuple[float, float, float, float]]
    budget_limited: bool = False
    stored_size: tuple[int, int] = (0, 0)

    @property
    def shrunk(self) -> bool:
        return self.scale > 1

    @property
    def full_hw(self) -> tuple[int, int]:
        """(height, width) of the full-resolution, EXIF-oriented image (``Preprocessor`` reads it)."""
        return self.original_size[1], self.original_size[0]

    def box(self, roi: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A ROI normalized in the full image, in the decoded array's pixel coordinates."""
        mapped = self.roi_for(roi) or (0.0, 0.0, 1.0, 1.0)
        dw, dh = self.decoded_size
        return mapped[0] * dw, mapped[1] * dh, mapped[2] * dw, mapped[3] * dh

    def roi_for(self, roi: Any = None, *, centres: bool = False) -> Optional[tuple[float, float, float, float]]:
        """Another ROI (normalized, oriented full image) mapped onto this decode, as :attr:`roi`.

        ``centres``: see :func:`roi_in_decoded` (for the MediaPipe sampler).
        """
        if self.scale == 1 and not centres:
            return None if roi is None else _as_roi(roi)
        return roi_in_decoded(roi, self.stored_size, self.scale, self.orientation, centres=centres)


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """(width, height) libjpeg returns at ``1/scale``: each side rounded up."""
    return -(-width // scale), -(-height // scale)


def target_hw_for(height: int, width: int, recipe: Any = None) -> tuple[int, int]:
    """The (h, w) the ROI is resampled to by a model's recipe, for :func:`decode_for_model`.

    ``recipe`` is an ``edge_embedder`` ``Recipe`` (duck-typed: ``resize``,
    ``size``, ``crop``) or None for the default (MediaPipe) recipe, which
    stretches to the input ``height`` x ``width``. A ``shortest_edge`` recipe
    resizes the shorter ROI side to ``size`` (both axes by the same factor),
    so ``(size, size)`` guarantees it along each axis; a stretch recipe with a
    ``size`` (before a centre crop) resizes to that size.
    """
    if recipe is None:
        return int(height), int(width)
    resize = getattr(recipe, "resize", "stretch")
    size = getattr(recipe, "size", None)
    if resize == "shortest_edge" and isinstance(size, int):
        return size, size
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    return int(height), int(width)


def _as_roi(roi: Any) -> tuple[float, float, float, float]:
    if roi is None:
        return 0.0, 0.0, 1.0, 1.0
    if all(hasattr(roi, k) for k in ("left", "top", "right", "bottom")):
        vals = (roi.left, roi.top, roi.right, roi.bottom)
    else:
        try:
            vals = tuple(roi)
        except TypeError:
            raise OptionsError(f"roi: expected a RectF or (left, top, right, bottom), got {roi!r}") from None
        if len(vals) != 4:
            raise OptionsError(f"roi: expected 4 values (left, top, right, bottom), got {len(vals)}")
    try:
        left, top, right, bottom = (float(v) for v in vals)
    except (TypeError, ValueError):
        raise OptionsError(f"roi: expected numbers, got {vals!r}") from None
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise OptionsError(f"roi: expected 0 <= left < right <= 1 and 0 <= top < bottom <= 1, got {vals!r}")
    return left, top, right, bottom


def _quarter_turns(rotation: Any) -> int:
    if isinstance(rotation, bool) or not isinstance(rotation, (int, float)) or not math.isfinite(rotation) \
            or rotation % 90 != 0:
        raise OptionsError(f"rotation: expected a multiple of 90, got {rotation!r}")
    return (int(rotation) // 90) % 4


def choose_scale(
    size: tuple[int, int],
    target_hw: tuple[int, int],
    roi: Any = None,
    rotation: int = 0,
    *,
    safety: float = DEFAULT_SAFETY,
    max_pixels: Optional[int] = None,
    scales: Sequence[int] = JPEG_SCALES,
) -> tuple[int, bool]:
    """(scale, budget_limited) for an image of oriented ``size`` = (width, height).

    The scale is the largest ``s`` in ``scales`` such that the ROI spans at
    least ``safety * target`` decoded pixels along each axis: the ROI's width
    against the model input's width (its height when ``rotation`` is +-90,
    which turns the crop a quarter), and likewise for the height. With
    ``max_pixels``, the smallest scale whose decoded size fits the budget wins
    when it is coarser (``budget_limited=True``); when none fits, raises
    :class:`ImageDecodeError`.
    """
    w, h = int(size[0]), int(size[1])
    th, tw = int(target_hw[0]), int(target_hw[1])
    if th < 1 or tw < 1:
        raise OptionsError(f"target_hw: expected positive sizes, got {target_hw!r}")
    if isinstance(safety, bool) or not isinstance(safety, (int, float)) or not safety >= 1.0:
        raise OptionsError(f"safety: expected a number >= 1, got {safety!r}")
    left, top, right, bottom = _as_roi(roi)
    if _quarter_turns(rotation) % 2:
        th, tw = tw, th  # the ROI's width becomes the input's height
    roi_w, roi_h = (right - left) * w, (bottom - top) * h
    ordered = sorted({int(s) for s in scales}, reverse=True)
    if 1 not in ordered:
        ordered.append(1)
    wanted = 1
    for s in ordered:
        if roi_w / s >= safety * tw and roi_h / s >= safety * th:
            wanted = s
            break
    if max_pixels is None:
        return wanted, False
    for s in sorted(ordered):
        if s < wanted:
            continue
        dw, dh = scaled_size(w, h, s)
        if dw * dh <= max_pixels:
            return s, s != wanted
    dw, dh = scaled_size(w, h, ordered[0])
    raise ImageDecodeError(
        f"{w}x{h} image does not fit the pixel budget of {max_pixels} pixels even at 1/{ordered[0]} "
        f"({dw}x{dh})"
    )


def _orientation_axes() -> dict[int, tuple[bool, bool, bool]]:
    """Per EXIF orientation: (oriented axes swapped, oriented x reversed, oriented y reversed).

    Derived from the decode's own turns (``image._EXIF_TURNS``) on a 3x2 probe,
    so it matches the decode by construction. "Reversed" is relative to the
    stored axis that the oriented axis comes from.
    """
    probe = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)  # value = 3*y + x, stored 3 wide, 2 high
    out = {1: (False, False, False)}
    for k, turn in _EXIF_TURNS.items():
        t = np.asarray(turn(probe))[..., 0]
        swapped = t.shape != probe.shape[:2]
        y0, x0 = divmod(int(t[0, 0]), 3)  # stored (y, x) of the oriented top-left
        y1, x1 = divmod(int(t[0, 1]), 3)  # ... and of its right neighbour
        if swapped:  # oriented x runs along stored y
            rev_x = y1 < y0
            y2, x2 = divmod(int(t[1, 0]), 3)
            rev_y = x2 < x0
        else:
            rev_x = x1 < x0
            y2, _ = divmod(int(t[1, 0]), 3)
            rev_y = y2 < y0
        out[k] = (swapped, rev_x, rev_y)
    return out


_ORIENTATION_AXES = _orientation_axes()


def roi_in_decoded(
    roi: Any,
    stored_size: tuple[int, int],
    scale: int,
    orientation: int = 1,
    *,
    centres: bool = False,
) -> Optional[tuple[float, float, float, float]]:
    """The caller's ROI (normalized, in the oriented full image) in the oriented ``1/scale`` decode.

    ``stored_size`` is the (width, height) as stored in the file (before EXIF
    orientation). Returns None when no ROI was given and the decode's content
    fills it exactly (``scale`` divides both sides).

    ``centres=True`` is for samplers that put the ROI's corners on pixel
    *centres* (MediaPipe's corner-aligned remap: ``src = x0 + u * rw / out``
    in pixel-index coordinates): the same normalized ROI then samples
    ``(scale - 1) / 2`` source pixels right of / below the full decode's
    sample points, and this variant shifts it back by ``(scale - 1) / (2 * scale)``
    decoded pixels, so every output pixel is centred where the full decode's
    was. Its edges can fall slightly outside [0, 1] (so it is not a valid
    ``RectF``): pass it to the sampler's map builder directly.
    """
    sw, sh = int(stored_size[0]), int(stored_size[1])
    swapped, rev_x, rev_y = _ORIENTATION_AXES.get(int(orientation), (False, False, False))
    full_w, full_h = (sh, sw) if swapped else (sw, sh)  # oriented full size

    def axis(n: int, lo: float, hi: float, rev: bool) -> tuple[float, float]:
        n_dec = -(-n // scale)
        extent = n / scale  # content span in decoded pixels
        offset = (n_dec - extent) if rev else 0.0  # a flipped axis has its partial pixel first
        if centres:
            offset -= (scale - 1) / (2 * scale)
        return (offset + lo * extent) / n_dec, (offset + hi * extent) / n_dec

    if roi is None and not centres and full_w % scale == 0 and full_h % scale == 0:
        return None
    left, top, right, bottom = _as_roi(roi)
    l2, r2 = axis(full_w, left, right, rev_x)
    t2, b2 = axis(full_h, top, bottom, rev_y)
    if centres:
        return l2, t2, r2, b2
    return _clamp01(l2), _clamp01(t2), _clamp01(r2), _clamp01(b2)


def _clamp01(v: float) -> float:
    return min(1.0, max(0.0, v))  # float noise only: the mapping stays inside [0, 1]


def decode_for_model(
    path: Union[str, "os.PathLike[str]", bytes, bytearray, memoryview],
    target_hw: tuple[int, int],
    roi: Any = None,
    rotation: int = 0,
    *,
    safety: Optional[float] = DEFAULT_SAFETY,
    max_pixels: Optional[int] = None,
    scale: Optional[int] = None,
    source: Optional[str] = None,
) -> tuple[np.ndarray, DecodeInfo]:
    """Decode an image file for a model whose recipe resamples the ROI to ``target_hw``.

    Args:
      path: the image file, or its bytes (``source`` then names it in messages).
      target_hw: (height, width) the recipe resamples the ROI to (see
        :func:`target_hw_for`; the model input size for the default recipe).
      roi: the region of interest, normalized in the EXIF-oriented image
        (a ``RectF`` or ``(left, top, right, bottom)``); None: the whole image.
      rotation: the ``rotation_degrees`` that will be applied (a multiple of
        90); +-90 swaps which ROI side must cover the input's width / height.
      safety: decoded ROI extent >= ``safety`` x target along each axis.
        None decodes fully (a recipe that cannot meet the accuracy floor).
      max_pixels: budget on the decoded image's pixel count (None: no budget).
      scale: force this DCT scale (1, 2, 4 or 8) for JPEGs instead of
        choosing one (benchmarks, tests); ``safety`` is then ignored.

    Returns:
      ``(pixels, info)``: a read-only C-contiguous ``(H, W, 3)`` uint8 RGB
      array and a :class:`DecodeInfo`. Embed ``pixels`` with
      ``region_of_interest=RectF(*info.roi)`` (None: no ROI) and ``rotation``.

    Raises:
      ImageDecodeError: missing, empty, unreadable, truncated, corrupt or
        non-image file, a decompression bomb, or over ``max_pixels``.
      UnsupportedImageError: a pixel mode with no defined range (as
        ``Image.create_from_file``).
      OptionsError: bad ``target_hw``, ``roi``, ``rotation`` or ``safety``.
    """
    _as_roi(roi)
    _quarter_turns(rotation)
    if safety is not None:
        choose_scale((1, 1), target_hw, None, 0, safety=safety)  # validates target_hw and safety
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
        raise OptionsError(f"max_pixels: expected a positive integer or None, got {max_pixels!r}")
    if scale is not None and scale not in JPEG_SCALES:
        raise OptionsError(f"scale: expected one of {JPEG_SCALES} or None, got {scale!r}")
    limited = [False]

    def scale_for(stored: tuple[int, int], orientation: int, is_jpeg: bool) -> int:
        if not is_jpeg or (scale is None and safety is None):
            return 1
        if scale is not None:
            return scale
        swapped = _ORIENTATION_AXES.get(orientation, (False, False, False))[0]
        oriented = (stored[1], stored[0]) if swapped else stored
        assert safety is not None  # checked above
        chosen, limited[0] = choose_scale(oriented, target_hw, roi, rotation, safety=safety, max_pixels=max_pixels)
        return chosen

    pixels, fd = decode_file(path, max_pixels=max_pixels, scale_for=scale_for, source=source)
    swapped = _ORIENTATION_AXES.get(fd.orientation, (False, False, False))[0]
    oriented = (fd.stored_size[1], fd.stored_size[0]) if swapped else fd.stored_size
    decoded = (int(pixels.shape[1]), int(pixels.shape[0]))
    if decoded != scaled_size(oriented[0], oriented[1], fd.scale):  # an invariant of libjpeg + the EXIF turn
        raise ImageDecodeError(f"{source or '<image>'}: decoded to {decoded}, expected "
                               f"{scaled_size(oriented[0], oriented[1], fd.scale)} at 1/{fd.scale}")
    info = DecodeInfo(
        scale=fd.scale,
        format=fd.format,
        original_size=(int(oriented[0]), int(oriented[1])),
        decoded_size=decoded,
        orientation=fd.orientation,
        roi=None,
        budget_limited=limited[0],
        stored_size=fd.stored_size,
    )
    return pixels, dataclasses.replace(info, roi=info.roi_for(roi))
