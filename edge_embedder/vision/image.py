"""``Image``: decode once, honour EXIF orientation, end as RGB uint8 HWC.

Every accepted input becomes one C-contiguous ``uint8`` array of shape
``(H, W, 3)``. Gray, gray+alpha, RGBA and palette images are converted to RGB
(alpha is dropped). 16-bit *files* (PNG/TIFF) are scaled to 8 bits because
their range is known; 16-bit or float *arrays* are refused because their range
is not (12-bit sensor data? [0, 1] floats? [0, 255] floats?).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
from PIL import Image as _PILImage
from PIL import UnidentifiedImageError

from ..errors import ImageDecodeError, ImageError, UnsupportedImageError

__all__ = ["Image", "ImageLike", "to_image", "decode_file", "FileDecode", "DEFAULT_MAX_IMAGE_PIXELS"]

#: The default pixel budget of decoded files: 2**26 = 67.1 million pixels, so a 64 MP phone photo
#: (9248x6936) fits. Decoding peaks at about 7 bytes per pixel (Pillow's 4-byte pixels plus our 3-byte
#: array), under 0.5 GB at the limit: a 1 GB board survives it (measured: benchmarks/results/large_images.md).
DEFAULT_MAX_IMAGE_PIXELS = 1 << 26


class Image:
    """An RGB image, as the embedder consumes it.

    Construct with :meth:`create_from_file`, :meth:`create_from_array` or
    :meth:`create_from_pil` (MediaPipe: ``mp.Image.create_from_file``).
    """

    __slots__ = ("_data", "source")

    def __init__(self, data: np.ndarray, source: str | None = None) -> None:
        # Internal: callers use the create_* factories, which validate.
        self._data = data
        self.source = source

    # -- factories ---------------------------------------------------------
    @classmethod
    def create_from_file(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        max_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> "Image":
        """Decode an image file (JPEG, PNG, WebP, BMP, TIFF, ...).

        Args:
          path: the file.
          max_pixels: the pixel budget: a file whose width x height is larger is
            refused from its header, before any pixel is decoded (decoding
            needs about 6 bytes per pixel at its peak). None: no budget of our
            own (Pillow's decompression-bomb limit still applies).

        Raises:
          ImageDecodeError: missing, unreadable, truncated or non-image file,
            one over the pixel budget, or one over Pillow's decompression-bomb limit.
        """
        pixels, _ = decode_file(path, max_pixels=max_pixels)
        return cls(pixels, source=str(os.fspath(path)))

    @classmethod
    def create_from_bytes(
        cls,
        data: Union[bytes, bytearray, memoryview],
        *,
        source: Optional[str] = None,
        max_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> "Image":
        """Decode an image file's bytes (an upload, a database blob, a Ray Data row).

        ``source`` names the image in error messages. Raises as :meth:`create_from_file`.
        """
        pixels, _ = decode_file(data, max_pixels=max_pixels, source=source)
        return cls(pixels, source=source)

    @classmethod
    def create_from_array(cls, array: np.ndarray) -> "Image":
        """Wrap an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array.

        The array is taken as RGB(A) (use ``arr[..., ::-1]`` for OpenCV's BGR).
        Strided views are honoured (copied to contiguous memory).

        Raises:
          UnsupportedImageError: non-uint8 dtype, wrong rank or channel count,
            or an empty image.
        """
        return cls(_array_to_rgb(array), source=None)

    @classmethod
    def create_from_pil(cls, image: "_PILImage.Image") -> "Image":
        """Convert a PIL image (any mode Pillow can convert to RGB)."""
        if not isinstance(image, _PILImage.Image):
            raise UnsupportedImageError(f"expected a PIL.Image.Image, got {type(image).__name__}")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageDecodeError(f"cannot decode PIL image ({exc})") from None
        return cls(_pil_to_rgb(image), source=getattr(image, "filename", None) or None)

    # -- accessors ---------------------------------------------------------
    def numpy_view(self) -> np.ndarray:
        """The pixels, ``(H, W, 3)`` uint8 RGB, read-only."""
        return self._data

    @property
    def width(self) -> int:
        return int(self._data.shape[1])

    @property
    def height(self) -> int:
        return int(self._data.shape[0])

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"Image({self.width}x{self.height}{src})"


#: Every image form the tasks take: an Image, a file path, the bytes of an image file, a uint8 array, a PIL image.
ImageLike = Union[Image, str, "os.PathLike[str]", bytes, np.ndarray, "_PILImage.Image"]


def to_image(image: ImageLike, *, max_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS) -> Image:
    """Accept every input form ``embed()`` takes; ``max_pixels`` is the budget of decoded files."""
    if isinstance(image, Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return Image.create_from_file(image, max_pixels=max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.create_from_bytes(image, max_pixels=max_pixels)
    if isinstance(image, np.ndarray):
        return Image.create_from_array(image)
    if isinstance(image, _PILImage.Image):
        return Image.create_from_pil(image)
    raise UnsupportedImageError(
        "expected an edge_embedder.Image, a path, an image file's bytes, a numpy array or a PIL image, "
        f"got {type(image).__name__}"
    )


@dataclass(frozen=True)
class FileDecode:
    """How :func:`decode_file` decoded a file.

    Attributes:
      stored_size: (width, height) as stored, before the EXIF orientation.
      orientation: the EXIF orientation applied (1: none).
      scale: the libjpeg DCT scale used: 1 (full resolution), 2, 4 or 8.
      format: Pillow's format name ("JPEG", "PNG", ...).
    """

    stored_size: tuple[int, int]
    orientation: int
    scale: int
    format: Optional[str]


#: ``scale_for(stored_size, orientation, is_jpeg) -> DCT scale``: how :func:`decode_file` may shrink on load.
ScaleChooser = Callable[[tuple[int, int], int, bool], int]


def _check_budget(w: int, h: int, max_pixels: Optional[int], fail: Callable[[str], Exception]) -> None:
    if max_pixels is not None and w * h > max_pixels:
        raise fail(f"{w}x{h} is {w * h / 1e6:.1f} megapixels, over the pixel budget of "
                   f"{max_pixels / 1e6:.1f} megapixels (raise it to decode this file: --max-pixels N on the command "
                   "line, max_image_pixels in Python)")


def decode_file(
    path: Union[str, "os.PathLike[str]", bytes, bytearray, memoryview],
    *,
    max_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
    scale_for: Optional[ScaleChooser] = None,
    source: Optional[str] = None,
) -> tuple[np.ndarray, FileDecode]:
    """Decode an image file (a path, or the file's bytes) to RGB uint8 HxWx3 in EXIF orientation.

    The array is read-only and contiguous. ``source`` names bytes in messages.

    ``scale_for`` (shrink-on-load) picks a libjpeg DCT scale for a JPEG from
    its stored size and orientation (1 for other formats). ``max_pixels`` is
    checked against the size that will be decoded, from the header, before
    any pixel is decoded.

    Raises:
      ImageDecodeError, UnsupportedImageError: as :meth:`Image.create_from_file`.
    """
    data: Optional[bytes] = bytes(path) if isinstance(path, (bytes, bytearray, memoryview)) else None
    p = source or ("<bytes>" if data is not None else os.fspath(path))  # type: ignore[arg-type]

    def fail(reason: str) -> ImageError:
        return ImageDecodeError(f"{p}: {reason}", source=str(p), reason=reason)

    if data is None:
        try:
            size = os.path.getsize(p)
        except FileNotFoundError:
            raise fail("no such file") from None
        except OSError as exc:
            raise fail(f"cannot read file ({exc.strerror or exc})") from None
        if os.path.isdir(p):
            raise fail("is a directory, expected an image file")
    else:
        size = len(data)
    if size == 0:
        raise fail("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # The budget is checked from the header below; Pillow's warning would only go to stderr.
            warnings.simplefilter("ignore", _PILImage.DecompressionBombWarning)
            im = _PILImage.open(io.BytesIO(data) if data is not None else p)
        with im:
            w, h = im.size
            jpeg = im.format in ("JPEG", "MPO")
            if not jpeg:
                # Before anything reads past the header: a PNG's EXIF may follow its pixels, and Pillow
                # decodes the whole image to find it.
                _check_budget(w, h, max_pixels, fail)
            orientation = _orientation(im)
            scale = scale_for((w, h), orientation, jpeg) if scale_for is not None else 1
            if scale > 1:
                im.draft("RGB", (w // scale, h // scale))  # libjpeg picks floor(w / requested) as its scale
                if im.size != (-(-w // scale), -(-h // scale)):
                    scale = 1  # Pillow declined (e.g. a multi-tile JPEG): what it gives is a full decode
            _check_budget(*im.size, max_pixels, fail)  # a JPEG's budget counts the pixels it decodes to
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", _PILImage.DecompressionBombWarning)
                im.load()
            return _pil_to_rgb(im), FileDecode((w, h), orientation, scale, im.format)
    except ImageError:
        raise
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, expected an image file") from None
    except UnidentifiedImageError:
        raise fail("not a recognised image format") from None
    except _PILImage.DecompressionBombError as exc:
        raise fail(f"refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated / corrupt data as OSError or SyntaxError.
        raise fail(f"cannot decode image ({exc})") from None


def _orientation(im: "_PILImage.Image") -> int:
    """The EXIF orientation the decode applies (1 when none, unknown or unreadable)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError):
        return 1
    return int(value) if value in _EXIF_TURNS else 1


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _pil_to_rgb(im: "_PILImage.Image") -> np.ndarray:
    """RGB uint8 HxWx3 in EXIF orientation, at about 7 bytes per pixel at the peak.

    Pillow keeps RGB images at 4 bytes per pixel, and ``np.asarray(im)`` goes
    through ``tobytes()``, which joins chunks (two more full copies). Here the
    pixels are copied strip by strip into one preallocated array, and the EXIF
    turn is done on that array (``ImageOps.exif_transpose`` would first make a
    second full-size PIL image). The pixels are the same.
    """
    orientation = _orientation(im)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # A 16-bit (or 32-bit integer) gray file: its range is the dtype's.
        arr = np.asarray(im)
        arr8: np.ndarray
        if arr.dtype.itemsize == 2:
            arr8 = (arr.astype(np.uint32) * 255 + 32767) // 65535
        elif arr.min() >= 0 and arr.max() <= 65535:
            arr8 = (arr.astype(np.int64) * 255 + 32767) // 65535
        else:
            raise UnsupportedImageError(f"32-bit image mode {mode!r} with values outside 0..65535")
        rgb = np.repeat(arr8.astype(np.uint8)[..., None], 3, axis=2)
    elif mode == "F":
        raise UnsupportedImageError("floating-point image mode 'F' has no defined range; expected 8 or 16-bit")
    else:
        if mode != "RGB":
            if mode in ("P", "PA"):
                im = im.convert("RGBA")
            im = im.convert("RGB")
        rgb = _rgb_strips(im)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise UnsupportedImageError(f"decoded to shape {rgb.shape}, expected (H, W, 3) with H, W > 0")
    turned = _EXIF_TURNS.get(orientation)
    if turned is not None:
        rgb = turned(rgb)
    return _readonly(np.ascontiguousarray(rgb))


# EXIF orientation -> the array operation ImageOps.exif_transpose performs (Image.Transpose methods).
_EXIF_TURNS = {
    2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],  # ROTATE_180
    4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
    5: lambda a: a.transpose(1, 0, 2),  # TRANSPOSE
    6: lambda a: np.rot90(a, -1),  # ROTATE_270 (counter-clockwise), i.e. a clockwise quarter turn
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # TRANSVERSE
    8: lambda a: np.rot90(a, 1),  # ROTATE_90 (counter-clockwise)
}

_STRIP_PIXELS = 1 << 22  # ~16 MB of Pillow's 4-byte pixels per strip


def _rgb_strips(im: "_PILImage.Image") -> np.ndarray:
    w, h = im.size
    if w * h <= _STRIP_PIXELS:
        return np.asarray(im, dtype=np.uint8)
    out = np.empty((h, w, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // max(1, w))
    for y in range(0, h, rows):
        out[y : y + rows] = np.asarray(im.crop((0, y, w, min(h, y + rows))), dtype=np.uint8)
    return out


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise UnsupportedImageError(f"expected a numpy array, got {type(a).__name__}")
    if a.dtype != np.uint8:
        hint = ""
        if a.dtype.kind == "f":
            hint = (
                "; float pixels are ambiguous ([0, 1] or [0, 255]?): convert explicitly, "
                "e.g. (a * 255).round().clip(0, 255).astype(np.uint8) for [0, 1] data"
            )
        elif a.dtype.kind in "ui":
            hint = (
                f"; {a.dtype} pixels are ambiguous (full {a.dtype} range or fewer bits?): "
                "scale to 0..255 and convert with .astype(np.uint8)"
            )
        raise UnsupportedImageError(f"expected a uint8 array, got dtype {a.dtype}{hint}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise UnsupportedImageError(f"expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    h, w, c = a.shape
    if h == 0 or w == 0:
        raise UnsupportedImageError(f"expected a non-empty image, got shape {a.shape}")
    if c == 1:
        out = np.repeat(a, 3, axis=2)
    elif c == 3:
        out = a  # no copy for the common case: the hot path must not pay 6 MB at 1080p
    elif c == 4:
        out = np.ascontiguousarray(a[:, :, :3])
    else:
        raise UnsupportedImageError(f"expected 1, 3 or 4 channels, got {c} (shape {a.shape})")
    # A read-only *view*: the caller's own array keeps its flags.
    return _readonly(np.ascontiguousarray(out).view())
