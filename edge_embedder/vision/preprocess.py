"""The hot path: image -> the model's input tensor, written in place.

Two samplers, chosen by the model's recipe:

``mediapipe`` (the default, for models without a recipe)
    MediaPipe's CPU preprocessing, reproduced exactly: the ROI (in the
    unrotated image) and the rotation are one geometric mapping whose four
    corners land on the output's four corners (corner-aligned,
    ``src = dst * roi_px / out``, no half-pixel offset), sampled bilinearly
    with replicated borders on uint8 and OpenCV's fixed-point (1/32 pixel)
    coordinates. ROI crop, rotation and stretch are therefore one
    ``cv2.remap`` straight from the source pixels; the coordinate maps are
    built once per (image size, ROI, rotation) and cached.

``pil``
    The recipe of Hugging Face image processors (``ViTImageProcessor``,
    ``CLIPImageProcessor``): ROI crop by slicing, rotation by exact quarter
    turns (``np.rot90`` views), then Pillow's antialiased resize (stretch to
    a size, or shortest edge then centre crop).

Normalization ``(x - mean) / std`` is written straight into the backend's
input buffer from the uint8 result, in the layout the backend declares
(NHWC, or NCHW through one transpose); uint8 models get the raw pixels and
never see a float conversion. No per-call allocation of a full-size float image.

The recipe itself is data (:class:`edge_embedder.core.recipe.Recipe`), read
from the model file and checked by the contract.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Optional, Protocol

import cv2
import numpy as np
from PIL import Image as _PILImage

from ..core.recipe import Recipe
from ..metadata import NormalizationOptions
from .processing_options import ImageProcessingOptions

__all__ = ["Preprocessor", "ReducedDecode", "corner_aligned_maps"]

_INTER_BITS = 5
_INTER_TAB_SIZE = 1 << _INTER_BITS

_PIL_RESAMPLE = {
    "nearest": _PILImage.Resampling.NEAREST,
    "bilinear": _PILImage.Resampling.BILINEAR,
    "bicubic": _PILImage.Resampling.BICUBIC,
    "lanczos": _PILImage.Resampling.LANCZOS,
    "box": _PILImage.Resampling.BOX,
    "hamming": _PILImage.Resampling.HAMMING,
}


class Preprocessor:
    """Writes images into a model input buffer; built once per model.

    Args:
      height, width: the model's input size.
      recipe: the model's resize recipe.
      normalization: ``(x - mean) / std`` for float inputs (1 or 3 values
        each); None for uint8 inputs, which get the raw pixels.
      layout: ``"NHWC"`` or ``"NCHW"``, the layout of the buffers given to
        :meth:`write` (the backend's declared input layout).
    """

    def __init__(
        self,
        height: int,
        width: int,
        recipe: Recipe,
        normalization: Optional[NormalizationOptions],
        map_cache_size: int = 8,
        *,
        layout: str = "NHWC",
    ) -> None:
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout: expected 'NHWC' or 'NCHW', got {layout!r}")
        self.height, self.width = height, width
        self.recipe = recipe
        self.layout = layout
        self._lut: Optional[np.ndarray] = None
        self._affine: Optional[tuple[float, float]] = None
        if normalization is not None:
            mean = np.broadcast_to(np.asarray(normalization.mean, np.float64), (3,))
            std = np.broadcast_to(np.asarray(normalization.std, np.float64), (3,))
            levels = np.arange(256, dtype=np.float64)[:, None]
            # uint8 level -> normalized float32, per channel, rounded once from float64.
            self._lut = ((levels - mean) / std).astype(np.float32).reshape(1, 256, 3)
            self._affine = _exact_affine(mean, std)
        self._scratch = np.empty((height, width, 3), np.uint8)
        self._float_scratch = (
            np.empty((height, width, 3), np.float32) if layout == "NCHW" and self._lut is not None else None
        )
        self._maps: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray]]" = OrderedDict()
        self._map_cache_size = map_cache_size

    # -- public --------------------------------------------------------------
    def write(
        self,
        pixels: np.ndarray,
        options: Optional[ImageProcessingOptions],
        dst: np.ndarray,
        reduced: Optional[ReducedDecode] = None,
    ) -> None:
        """Fill ``dst`` ([1, H, W, 3], or [1, 3, H, W] for NCHW; uint8 or float32) from RGB ``pixels``.

        ``reduced``: ``pixels`` is a shrink-on-load decode of a larger image (pil recipes only);
        ``options`` keep the ROI in the full image's normalized coordinates.
        """
        if self.layout == "NCHW":
            self._resample(pixels, options, self._scratch, reduced)
            if self._lut is None or self._float_scratch is None:
                dst[0] = self._scratch.transpose(2, 0, 1)
            else:
                self._normalize(self._float_scratch)
                dst[0] = self._float_scratch.transpose(2, 0, 1)
            return
        out = dst[0]
        if self._lut is None:  # uint8 model: resample straight into the input buffer
            self._resample(pixels, options, out, reduced)
        else:
            self._resample(pixels, options, self._scratch, reduced)
            self._normalize(out)

    def _normalize(self, out: np.ndarray) -> None:
        """``(scratch - mean) / std`` into ``out`` (float32), in one pass."""
        lut = self._lut
        if self._affine is not None or lut is None:
            alpha, beta = self._affine or (1.0, 0.0)
            # x * (1/std) + (-mean/std): exact here (see _exact_affine), and 3x faster than the lookup.
            cv2.addWeighted(self._scratch, alpha, self._scratch, 0.0, beta, dst=out, dtype=cv2.CV_32F)
        else:
            # One table lookup per value: uint8 -> float32, per channel, rounded once from float64
            # (numpy's broadcast over a length-3 inner axis is ~5x slower).
            cv2.LUT(self._scratch, lut, dst=out)

    def to_uint8(self, pixels: np.ndarray, options: Optional[ImageProcessingOptions] = None,
                 reduced: Optional[ReducedDecode] = None) -> np.ndarray:
        """The resampled uint8 image the model would see (a new array); ``reduced`` as in :meth:`write`."""
        out = np.empty((self.height, self.width, 3), np.uint8)
        self._resample(pixels, options, out, reduced)
        return out

    # -- samplers --------------------------------------------------------------
    def _resample(self, pixels: np.ndarray, options: Optional[ImageProcessingOptions], out: np.ndarray,
                  reduced: Optional[ReducedDecode] = None) -> None:
        if self.recipe.sampler == "mediapipe":
            if reduced is not None:  # the mediapipe recipe never shrinks on load (see .shrink)
                raise ValueError("the mediapipe sampler takes full-resolution pixels only")
            map1, map2 = self._remap_maps(pixels.shape[0], pixels.shape[1], options)
            cv2.remap(pixels, map1, map2, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE)
        else:
            out[...] = self._pil(pixels, options, reduced)

    def _remap_maps(self, h: int, w: int, options: Optional[ImageProcessingOptions]) -> tuple[np.ndarray, np.ndarray]:
        roi = options.region_of_interest if options is not None else None
        # The exact degrees, not the quarter turns: -90 and 270 differ in MediaPipe's float noise.
        degrees = options.rotation_degrees if options is not None else 0
        key = (h, w, None if roi is None else (roi.left, roi.top, roi.right, roi.bottom), degrees)
        maps = self._maps.get(key)
        if maps is not None:
            self._maps.move_to_end(key)
            return maps
        maps = corner_aligned_maps(h, w, self.height, self.width, roi_tuple(roi), degrees)
        self._maps[key] = maps
        if len(self._maps) > self._map_cache_size:
            self._maps.popitem(last=False)
        return maps

    def _pil(self, pixels: np.ndarray, options: Optional[ImageProcessingOptions],
             reduced: Optional["ReducedDecode"] = None) -> np.ndarray:
        """The pil recipe: ROI crop, quarter turns, Pillow resize, centre crop.

        ``reduced`` describes a decode at ``1/s`` of the file's resolution
        (shrink-on-load). The geometry is then computed on the full-resolution
        image, exactly as for a full decode (the integer ROI crop, the resize
        size), and the reduced pixels are resampled from the same content with
        Pillow's fractional source box: only the pixel source differs.
        """
        rc = self.recipe
        turns = options.quarter_turns if options is not None else 0
        roi = options.region_of_interest if options is not None else None
        fh, fw = pixels.shape[:2] if reduced is None else reduced.full_hw
        x0, x1 = _span(roi.left, roi.right, fw) if roi is not None else (0, fw)
        y0, y1 = _span(roi.top, roi.bottom, fh) if roi is not None else (0, fh)
        iw, ih = (y1 - y0, x1 - x0) if turns % 2 else (x1 - x0, y1 - y0)
        nw, nh = self._pil_size(iw, ih)
        resample = _PIL_RESAMPLE[rc.interpolation]
        if reduced is None:
            view = pixels[y0:y1, x0:x1]
            if turns:
                view = np.rot90(view, -turns)  # clockwise, as MediaPipe
            im = _PILImage.fromarray(np.ascontiguousarray(view))
            if (nw, nh) != (im.width, im.height):
                im = im.resize((nw, nh), resample=resample)
            arr = np.asarray(im)
        else:
            # The full decode's integer crop, in the reduced pixels' continuous coordinates; cut to the
            # whole pixels around it, turn, and resample the fractional box.
            box = reduced.box((x0 / fw, y0 / fh, x1 / fw, y1 / fh))
            dh, dw = pixels.shape[:2]
            cx0, cy0 = int(math.floor(box[0])), int(math.floor(box[1]))
            cx1, cy1 = min(dw, int(math.ceil(box[2]))), min(dh, int(math.ceil(box[3])))
            sub = pixels[cy0:cy1, cx0:cx1]
            local = (box[0] - cx0, box[1] - cy0, box[2] - cx0, box[3] - cy0)
            if turns:
                local = _turn_box(local, cx1 - cx0, cy1 - cy0, turns)
                sub = np.rot90(sub, -turns)
            im = _PILImage.fromarray(np.ascontiguousarray(sub))
            lx0, ly0, lx1, ly1 = (min(max(v, 0.0), lim) for v, lim in zip(local, (im.width, im.height) * 2))
            arr = np.asarray(im.resize((nw, nh), resample=resample, box=(lx0, ly0, lx1, ly1)))
        return _centre_crop(arr, rc.crop) if rc.crop is not None else arr

    def _pil_size(self, iw: int, ih: int) -> tuple[int, int]:
        """(w, h) the pil recipe resizes an ``iw`` x ``ih`` crop to (before its centre crop)."""
        rc = self.recipe
        if rc.resize == "shortest_edge":
            short, long_ = (iw, ih) if iw <= ih else (ih, iw)
            new_short, new_long = rc.size, int(rc.size * long_ / short)
            return (new_short, new_long) if iw <= ih else (new_long, new_short)
        nh, nw = rc.size if rc.size is not None else (self.height, self.width)
        return nw, nh


class ReducedDecode(Protocol):
    """What the pil sampler needs to know about a shrink-on-load decode (see ``.shrink.DecodeInfo``)."""

    @property
    def full_hw(self) -> tuple[int, int]:
        """(height, width) of the full-resolution, EXIF-oriented image."""
        ...

    def box(self, roi: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A ROI normalized in the full image, in the decoded array's pixel coordinates."""
        ...


def _centre_crop(arr: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    ch, cw = crop
    top, left = (arr.shape[0] - ch) // 2, (arr.shape[1] - cw) // 2
    if top < 0 or left < 0:  # image smaller than the crop: pad with zeros as transformers does
        padded = np.zeros((max(ch, arr.shape[0]), max(cw, arr.shape[1]), 3), np.uint8)
        pt, pl = max(0, -top), max(0, -left)
        padded[pt : pt + arr.shape[0], pl : pl + arr.shape[1]] = arr
        arr = padded
        top, left = (arr.shape[0] - ch) // 2, (arr.shape[1] - cw) // 2
    return arr[top : top + ch, left : left + cw]


def _turn_box(box: tuple[float, float, float, float], w: int, h: int, turns: int) -> tuple[float, float, float, float]:
    """A box in a ``w`` x ``h`` image, in the image turned clockwise ``turns`` times (``np.rot90(a, -turns)``)."""
    x0, y0, x1, y1 = box
    if turns == 1:
        return h - y1, x0, h - y0, x1
    if turns == 2:
        return w - x1, h - y1, w - x0, h - y0
    if turns == 3:
        return y0, w - x1, y1, w - x0
    return box


def _exact_affine(mean: np.ndarray, std: np.ndarray) -> Optional[tuple[float, float]]:
    """``(1/std, -mean/std)`` when one integer mean and one power-of-two std hold for every channel.

    Then ``x * (1/std) - mean/std`` is computed without any rounding for every
    uint8 ``x`` (each term and the sum are multiples of 1/std far below 2**24),
    so an affine pass gives the lookup table's values bit for bit.
    """
    if len(set(mean.tolist())) != 1 or len(set(std.tolist())) != 1:
        return None
    m, s = float(mean[0]), float(std[0])
    if not (m.is_integer() and abs(m) < 2**16 and s > 0 and math.frexp(s)[0] == 0.5 and 2**-16 <= s <= 2**16):
        return None
    return 1.0 / s, -m / s


def roi_tuple(roi: Any) -> Optional[tuple[float, float, float, float]]:
    return None if roi is None else (roi.left, roi.top, roi.right, roi.bottom)


def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
    a = int(round(lo * n))
    b = int(round(hi * n))
    b = max(b, a + 1)
    return min(a, n - 1), min(b, n)


def corner_aligned_maps(
    h: int,
    w: int,
    out_h: int,
    out_w: int,
    roi: Optional[tuple[float, float, float, float]],
    rotation_degrees: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point ``cv2.remap`` maps reproducing MediaPipe's warp, rounding ties included.

    Output pixel (u, v) samples the source where MediaPipe's CPU converter
    samples it: the ROI and rotation become a rotated rectangle, whose four
    corners (``cv::boxPoints``) are mapped onto the output's corners by a
    perspective transform, inverted and evaluated per pixel as OpenCV's
    ``warpPerspective`` does, coordinates rounded to 1/32 pixel. Mathematically
    this is the corner-aligned affine map ``TL + u / out_w * (TR - TL) + v /
    out_h * (BL - TL)``; computing it with MediaPipe's own float32 / float64
    steps matters where a coordinate falls exactly on a 1/32-pixel rounding
    tie (e.g. an ROI edge at 0.5 of an odd image size): the affine formula
    in float64 disagreed with MediaPipe 1.2.2 on up to 1.5 % of the pixels
    (by up to 5 levels) in 54 of 245 (image, ROI, rotation) cases at 224x224;
    this emulation agrees on every pixel of all 245, and of the 24x40 ones
    (tests/test_interop_mediapipe.py). The maps are packed as CV_16SC2 +
    CV_16UC1.
    """
    f32 = np.float32
    # 1. The normalized rect, as MediaPipe's ConvertToNormalizedRect builds it (float32 fields).
    if roi is None:
        xc, yc, nw, nh = f32(0.5), f32(0.5), f32(1.0), f32(1.0)
    else:
        left, top, right, bottom = (f32(v) for v in roi)
        xc, yc = f32(float(f32(left + right)) / 2.0), f32(float(f32(top + bottom)) / 2.0)
        nw, nh = f32(right - left), f32(bottom - top)
    rotation = f32(-rotation_degrees * math.pi / 180.0)
    if abs(rotation_degrees) % 180 != 0:  # MediaPipe swaps the size for quarter turns
        nw, nh = f32(f32(nh * f32(h)) / f32(w)), f32(f32(nw * f32(w)) / f32(h))
    # 2. GetRoi (pixels, float32) and the rotated rectangle's corners (cv::RotatedRect::points).
    cx, cy, rw, rh = f32(xc * f32(w)), f32(yc * f32(h)), f32(nw * f32(w)), f32(nh * f32(h))
    angle = f32(float(f32(rotation * f32(180.0))) / math.pi)
    rad = float(angle) * math.pi / 180.0
    b, a = f32(f32(math.cos(rad)) * f32(0.5)), f32(f32(math.sin(rad)) * f32(0.5))
    # Each corner from the centre (not 2 * centre - the opposite corner, as older OpenCVs do):
    # that is the arithmetic MediaPipe's build uses, its last bits included.
    p0 = (f32(f32(cx - f32(a * rh)) - f32(b * rw)), f32(f32(cy + f32(b * rh)) - f32(a * rw)))
    p1 = (f32(f32(cx + f32(a * rh)) - f32(b * rw)), f32(f32(cy - f32(b * rh)) - f32(a * rw)))
    p2 = (f32(f32(cx + f32(a * rh)) + f32(b * rw)), f32(f32(cy - f32(b * rh)) + f32(a * rw)))
    p3 = (f32(f32(cx - f32(a * rh)) + f32(b * rw)), f32(f32(cy + f32(b * rh)) + f32(a * rw)))
    # 3. cv::getPerspectiveTransform onto (0, H), (0, 0), (W, 0), (W, H), then its inverse.
    m = _invert3(_perspective_transform((p0, p1, p2, p3), (f32(out_w), f32(out_h))))
    # 4. warpPerspective's per-pixel coordinates: blocks of bw0 columns, row offsets in double.
    bh0 = min(16, out_h)
    bw0 = min(1024 // bh0, out_w)
    c = np.arange(out_w, dtype=np.float64)[None, :]
    r = np.arange(out_h, dtype=np.float64)[:, None]
    x = np.floor(c / bw0) * bw0
    x1 = c - x
    ww = m[6] * x + m[7] * r  # (H, W), then in place, each step in OpenCV's order
    ww += m[8]
    ww += m[6] * x1
    zero = ww == 0
    with np.errstate(divide="ignore"):
        np.divide(_INTER_TAB_SIZE, ww, out=ww)
    ww[zero] = 0.0

    def fixed(k0: float, k1: float, k2: float) -> np.ndarray:
        v = k0 * x + k1 * r
        v += k2
        v += k0 * x1
        v *= ww
        np.rint(v, out=v)
        big = float(np.iinfo(np.int32).max)
        if v.size and (v.max() > big or v.min() < -big - 1):
            np.clip(v, -big - 1, big, out=v)
        return v.astype(np.int64)

    fx, fy = fixed(m[0], m[1], m[2]), fixed(m[3], m[4], m[5])
    lim = np.iinfo(np.int16)
    map1 = np.empty((out_h, out_w, 2), np.int16)
    map1[..., 0] = np.clip(fx >> _INTER_BITS, lim.min, lim.max)
    map1[..., 1] = np.clip(fy >> _INTER_BITS, lim.min, lim.max)
    map2 = ((fy & (_INTER_TAB_SIZE - 1)) * _INTER_TAB_SIZE + (fx & (_INTER_TAB_SIZE - 1))).astype(np.uint16)
    return map1, map2


def _perspective_transform(src: tuple, size: tuple) -> list[float]:
    """OpenCV's getPerspectiveTransform (the 8x8 system, float32 products, LU in double)."""
    out_w, out_h = size
    f32 = np.float32
    dst = ((f32(0), out_h), (f32(0), f32(0)), (out_w, f32(0)), (out_w, out_h))
    a = [[0.0] * 8 for _ in range(8)]
    rhs = [0.0] * 8
    for i, ((sx, sy), (dx, dy)) in enumerate(zip(src, dst)):
        a[i][0] = a[i + 4][3] = float(sx)
        a[i][1] = a[i + 4][4] = float(sy)
        a[i][2] = a[i + 4][5] = 1.0
        a[i][6], a[i][7] = float(f32(-sx * dx)), float(f32(-sy * dx))
        a[i + 4][6], a[i + 4][7] = float(f32(-sx * dy)), float(f32(-sy * dy))
        rhs[i], rhs[i + 4] = float(dx), float(dy)
    return _lu_solve(a, rhs) + [1.0]


def _lu_solve(a: list[list[float]], b: list[float]) -> list[float]:
    """OpenCV's LUImpl: Gaussian elimination with partial pivoting, then back substitution."""
    n = len(a)
    for i in range(n):
        k = max(range(i, n), key=lambda j: (abs(a[j][i]), -j))
        if k != i:
            a[i], a[k] = a[k], a[i]
            b[i], b[k] = b[k], b[i]
        d = -1.0 / a[i][i]
        for j in range(i + 1, n):
            alpha = a[j][i] * d
            for col in range(i + 1, n):
                a[j][col] += alpha * a[i][col]
            b[j] += alpha * b[i]
    for i in range(n - 1, -1, -1):
        s = b[i]
        for col in range(i + 1, n):
            s -= a[i][col] * b[col]
        b[i] = s / a[i][i]
    return b


def _invert3(m: list[float]) -> list[float]:
    """OpenCV's closed-form 3x3 inverse (cv::invert, DECOMP_LU, n == 3)."""
    s = [m[0:3], m[3:6], m[6:9]]
    det = (s[0][0] * (s[1][1] * s[2][2] - s[1][2] * s[2][1]) - s[0][1] * (s[1][0] * s[2][2] - s[1][2] * s[2][0])
           + s[0][2] * (s[1][0] * s[2][1] - s[1][1] * s[2][0]))
    d = 1.0 / det
    return [
        (s[1][1] * s[2][2] - s[1][2] * s[2][1]) * d, (s[0][2] * s[2][1] - s[0][1] * s[2][2]) * d,
        (s[0][1] * s[1][2] - s[0][2] * s[1][1]) * d,
        (s[1][2] * s[2][0] - s[1][0] * s[2][2]) * d, (s[0][0] * s[2][2] - s[0][2] * s[2][0]) * d,
        (s[0][2] * s[1][0] - s[0][0] * s[1][2]) * d,
        (s[1][0] * s[2][1] - s[1][1] * s[2][0]) * d, (s[0][1] * s[2][0] - s[0][0] * s[2][1]) * d,
        (s[0][0] * s[1][1] - s[0][1] * s[1][0]) * d,
    ]
