"""The shipped models and sample photos: where they live, and their short names.

An installed wheel carries them inside the package (``edge_embedder/models``,
``edge_embedder/data/samples``); a source checkout (editable install) finds the models
in the repository's top-level ``models/`` folder.

Every model argument of the command line (``--model``, ``--image-model``,
``inspect MODEL``, ``bench MODEL``) takes a file or one of the short names of
:data:`SHIPPED_MODELS` (``edge-embedder models`` lists them); from Python,
:func:`model_path` resolves the same way.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .errors import ModelLoadError

__all__ = [
    "SHIPPED_MODELS",
    "ShippedModel",
    "DEFAULT_MODELS",
    "DEFAULT_CLASSIFIERS",
    "SAMPLE_NAMES",
    "model_path",
    "shipped_models",
    "default_model_path",
    "default_classifier_path",
    "sample_images",
]

_PKG = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedModel:
    """One model that ships inside the package."""

    name: str  #: the short name every ``--model`` accepts
    file: str  #: the file name in ``edge_embedder/models``
    task: str  #: ``image-embedding`` or ``image-classification``
    description: str

    @property
    def path(self) -> Path:
        """Where the file is (the wheel's copy, or the checkout's ``models/``); ModelLoadError if missing."""
        for folder in (_PKG / "models", _PKG.parent / "models"):
            p = folder / self.file
            if p.is_file():
                return p
        raise ModelLoadError(
            f"the shipped model {self.name} ({self.file}) is not installed (looked in {_PKG / 'models'} and "
            f"{_PKG.parent / 'models'}); reinstall edge-embedder or pass a model file"
        )

    def sha256(self) -> str:
        """The file's sha256 (hex)."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()


#: The shipped models by short name (EfficientNet-Lite0, real ImageNet weights, Apache-2.0; models/README.md).
SHIPPED_MODELS: dict[str, ShippedModel] = {m.name: m for m in (
    ShippedModel("efficientnet-lite0", "efficientnet_lite0_fp32.tflite", "image-embedding",
                 "1280-d image embedder, float32 (the default model)"),
    ShippedModel("efficientnet-lite0-int8", "efficientnet_lite0_int8.tflite", "image-embedding",
                 "1280-d image embedder, full-integer int8, uint8 input"),
    ShippedModel("efficientnet-lite0-classifier", "efficientnet_lite0_classifier_fp32.tflite",
                 "image-classification", "ImageNet-1k classifier, float32, 1000 labels inside (the default classifier)"),
    ShippedModel("efficientnet-lite0-classifier-int8", "efficientnet_lite0_classifier_int8.tflite",
                 "image-classification", "ImageNet-1k classifier, int8, uint8 input, 1000 labels inside"),
)}

#: ``default_model_path`` / ``default_classifier_path`` variants -> short names.
DEFAULT_MODELS = {"fp32": "efficientnet-lite0", "int8": "efficientnet-lite0-int8"}
DEFAULT_CLASSIFIERS = {"fp32": "efficientnet-lite0-classifier", "int8": "efficientnet-lite0-classifier-int8"}
SAMPLE_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def shipped_models() -> list[ShippedModel]:
    """The shipped models, in the order ``edge-embedder models`` lists them."""
    return list(SHIPPED_MODELS.values())


def model_path(model: Union[str, "os.PathLike[str]"]) -> Path:
    """A model file, or the file of a shipped model's short name.

    An existing file always wins; otherwise ``model`` must be a short name of
    :data:`SHIPPED_MODELS`. Raises ModelLoadError naming the shipped models.
    """
    p = Path(model)
    if p.exists():
        return p
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return SHIPPED_MODELS[model].path
    raise ModelLoadError(
        f"{os.fspath(model)}: no such file, and not a shipped model name (shipped: {', '.join(SHIPPED_MODELS)}; "
        "`edge-embedder models` lists them)"
    )


def default_model_path(variant: str = "fp32") -> Path:
    """Path of the shipped EfficientNet-Lite0 embedder (``fp32`` or ``int8``)."""
    return _variant(DEFAULT_MODELS, variant, "default model")


def default_classifier_path(variant: str = "fp32") -> Path:
    """Path of the shipped EfficientNet-Lite0 ImageNet classifier (``fp32`` or ``int8``; labels inside)."""
    return _variant(DEFAULT_CLASSIFIERS, variant, "default classifier")


def _variant(table: dict[str, str], variant: str, what: str) -> Path:
    if variant not in table:
        raise ModelLoadError(f"{what} variant: expected one of {sorted(table)}, got {variant!r}")
    return SHIPPED_MODELS[table[variant]].path


def sample_images() -> dict[str, Path]:
    """The bundled sample photos (from scikit-image's data module), by name."""
    return {n: _PKG / "data" / "samples" / f"{n}.png" for n in SAMPLE_NAMES}
