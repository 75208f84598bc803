"""Real photos for parity reports and calibration (scikit-image ships them; no network).

* :func:`photo` -- one scikit-image photograph as HxWx3 uint8 RGB.
* :func:`views` -- six views of a photo: full, mirror, centre 75% crop and its
  mirror, top-left and bottom-right 60% crops.
* :func:`parity_images` -- chelsea, coffee, astronaut, rocket and a mirrored
  chelsea: four aspect ratios, full photos as a user would pass them.
* :func:`default_calibration_images` -- the other scikit-image photographs
  (hubble_deep_field, immunohistochemistry, retina, stereo_motorcycle left and
  right), 6 views each: 30 images, disjoint from the parity photos so the int8
  figure is not measured on its own calibration data.
* :func:`load_image_folder` -- every readable image in a folder (decoded by
  ``edge_embedder.Image``: EXIF orientation, gray / RGBA -> RGB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import CalibrationError

__all__ = ["photo", "views", "parity_images", "default_calibration_images", "load_image_folder",
           "PARITY_PHOTOS", "CALIBRATION_PHOTOS"]

PARITY_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
# (skimage.data function, index into its tuple result or None)
CALIBRATION_PHOTOS = (
    ("hubble_deep_field", None),
    ("immunohistochemistry", None),
    ("retina", None),
    ("stereo_motorcycle", 0),
    ("stereo_motorcycle", 1),
)


def photo(name: str, index: Optional[int] = None) -> np.ndarray:
    """``skimage.data.<name>()`` (item ``index`` of a tuple result) as HxWx3 uint8 RGB."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if index is not None:
        img = img[index]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
    return img


def views(img: np.ndarray) -> list[np.ndarray]:
    """Full, mirror, centre 75% crop and its mirror, top-left and bottom-right 60% crops."""
    h, w = img.shape[:2]

    def crop(frac: float, where: str) -> np.ndarray:
        ch, cw = int(round(h * frac)), int(round(w * frac))
        y0, x0 = {"c": ((h - ch) // 2, (w - cw) // 2), "tl": (0, 0), "br": (h - ch, w - cw)}[where]
        return img[y0 : y0 + ch, x0 : x0 + cw]

    center = crop(0.75, "c")
    return [img, img[:, ::-1], center, center[:, ::-1], crop(0.6, "tl"), crop(0.6, "br")]


def parity_images() -> dict[str, np.ndarray]:
    out = {n: photo(n) for n in PARITY_PHOTOS}
    out["chelsea_mirror"] = np.ascontiguousarray(out["chelsea"][:, ::-1])
    return out


def default_calibration_images() -> list[np.ndarray]:
    return [np.ascontiguousarray(v) for n, i in CALIBRATION_PHOTOS for v in views(photo(n, i))]


def load_image_folder(folder: str | Path) -> list[np.ndarray]:
    """RGB uint8 arrays of every decodable image file in ``folder`` (sorted by name)."""
    from edge_embedder import Image
    from edge_embedder.errors import ImageError

    p = Path(folder)
    if not p.is_dir():
        raise CalibrationError(f"{folder}: calibration folder does not exist or is not a folder")
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    images = []
    for f in files:
        try:
            images.append(np.ascontiguousarray(Image.create_from_file(str(f)).numpy_view()))
        except (ImageError, OSError):
            continue
    if not images:
        raise CalibrationError(f"{folder}: no readable image among {len(files)} file(s)")
    return images
