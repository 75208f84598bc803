"""``Image``: decode once, honour EXIF orientation, end as RGB uint8 HWC.

Every accepted input becomes one C-contiguous ``uint8`` array of shape
``(H, W, 3)``. Gray, gray+alpha, RGBA and palette images are converted to RGB
(alpha is dropped). 16-bit *files* (PNG/TIFF) are scaled to 8 bits because
their range is known; 16-bit or float *arrays* are refused because their range
is not (12-bit sensor data? [0, 1] floats? [0, 255] floats?).
"""

from __future__ import annotations

import os
import warnings
from typing import Union

import numpy as np
from PIL import Image as _PILImage
from PIL import ImageOps, UnidentifiedImageError

from ..errors import ImageDecodeError, UnsupportedImageError

__all__ = ["Image", "ImageLike", "to_image"]


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
    def create_from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "Image":
        """Decode an image file (JPEG, PNG, WebP, BMP, TIFF, ...).

        Raises:
          ImageDecodeError: missing, unreadable, truncated or non-image file,
            or one over Pillow's decompression-bomb limit.
        """
        p = os.fspath(path)
        try:
            if os.path.getsize(p) == 0:
                raise ImageDecodeError(f"{p}: empty file (0 bytes)")
            with _PILImage.open(p) as im:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", _PILImage.DecompressionBombWarning)
                    im.load()
                return cls(_pil_to_rgb(im), source=str(p))
        except FileNotFoundError:
            raise ImageDecodeError(f"{p}: no such file") from None
        except IsADirectoryError:
            raise ImageDecodeError(f"{p}: is a directory, expected an image file") from None
        except UnidentifiedImageError:
            raise ImageDecodeError(f"{p}: not a recognised image format") from None
        except (_PILImage.DecompressionBombError, _PILImage.DecompressionBombWarning) as exc:
            raise ImageDecodeError(f"{p}: refused as a decompression bomb ({exc})") from None
        except UnsupportedImageError as exc:
            raise UnsupportedImageError(f"{p}: {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow reports truncated / corrupt data as OSError or SyntaxError.
            raise ImageDecodeError(f"{p}: cannot decode image ({exc})") from None

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


ImageLike = Union[Image, str, "os.PathLike[str]", np.ndarray, "_PILImage.Image"]


def to_image(image: ImageLike) -> Image:
    """Accept every input form ``embed()`` takes."""
    if isinstance(image, Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return Image.create_from_file(image)
    if isinstance(image, np.ndarray):
        return Image.create_from_array(image)
    if isinstance(image, _PILImage.Image):
        return Image.create_from_pil(image)
    raise UnsupportedImageError(
        "expected an edge_embedder.Image, a path, a numpy array or a PIL image, "
        f"got {type(image).__name__}"
    )


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _pil_to_rgb(im: "_PILImage.Image") -> np.ndarray:
    im = ImageOps.exif_transpose(im) or im
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
        return _readonly(np.ascontiguousarray(np.repeat(arr8.astype(np.uint8)[..., None], 3, axis=2)))
    if mode == "F":
        raise UnsupportedImageError("floating-point image mode 'F' has no defined range; expected 8 or 16-bit")
    if mode != "RGB":
        if mode in ("P", "PA"):
            im = im.convert("RGBA")
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise UnsupportedImageError(f"decoded to shape {arr.shape}, expected (H, W, 3) with H, W > 0")
    return _readonly(np.ascontiguousarray(arr))


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
