"""Real photos for parity reports and calibration (scikit-image ships them; no network).

* :func:`parity_images` -- chelsea, coffee, astronaut, rocket and a mirrored
  chelsea: four aspect ratios, full photos as a user would pass them.
* :func:`default_calibration_images` -- the other scikit-image photographs
  (hubble_deep_field, immunohistochemistry, retina, stereo_motorcycle left and
  right), 6 views each (``build_default_models._views``): 30 images, disjoint
  from the parity photos so the int8 figure is not measured on its own
  calibration data.
* :func:`load_image_folder` -- every readable image in a folder (decoded by
  ``edge_embedder.Image``: EXIF orientation, gray / RGBA -> RGB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CalibrationError

__all__ = ["parity_images", "default_calibration_images", "load_image_folder"]

PARITY_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
CALIBRATION_PHOTOS = (
    ("hubble_deep_field", None),
    ("immunohistochemistry", None),
    ("retina", None),
    ("stereo_motorcycle", 0),
    ("stereo_motorcycle", 1),
)


def parity_images() -> dict[str, np.ndarray]:
    from .build_default_models import _photo

    out = {n: _photo(n, None) for n in PARITY_PHOTOS}
    out["chelsea_mirror"] = np.ascontiguousarray(out["chelsea"][:, ::-1])
    return out


def default_calibration_images() -> list[np.ndarray]:
    from .build_default_models import _photo, _views

    return [np.ascontiguousarray(v) for n, i in CALIBRATION_PHOTOS for v in _views(_photo(n, i))]


def load_image_folder(folder: str | Path) -> list[np.ndarray]:
    """RGB uint8 arrays of every decodable image file in ``folder`` (sorted by name)."""
    from edge_embedder.errors import ImageError
    from edge_embedder.image import Image

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
