"""Where the shipped default models and sample photos live.

An installed wheel carries them inside the package (``edge_embedder/models``,
``edge_embedder/data``); a source checkout (editable install) finds the models
in the repository's top-level ``models/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelLoadError

__all__ = ["DEFAULT_MODELS", "DEFAULT_CLASSIFIERS", "default_model_path", "default_classifier_path", "sample_images"]

_PKG = Path(__file__).resolve().parent
DEFAULT_MODELS = {
    "fp32": "efficientnet_lite0_fp32.tflite",
    "int8": "efficientnet_lite0_int8.tflite",
}
DEFAULT_CLASSIFIERS = {
    "fp32": "efficientnet_lite0_classifier_fp32.tflite",
    "int8": "efficientnet_lite0_classifier_int8.tflite",
}
SAMPLE_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def default_model_path(variant: str = "fp32") -> Path:
    """Path of the shipped EfficientNet-Lite0 embedder (``fp32`` or ``int8``)."""
    return _shipped(DEFAULT_MODELS, variant, "default model")


def default_classifier_path(variant: str = "fp32") -> Path:
    """Path of the shipped EfficientNet-Lite0 ImageNet classifier (``fp32`` or ``int8``; labels inside)."""
    return _shipped(DEFAULT_CLASSIFIERS, variant, "default classifier")


def _shipped(table: dict[str, str], variant: str, what: str) -> Path:
    if variant not in table:
        raise ModelLoadError(f"{what} variant: expected one of {sorted(table)}, got {variant!r}")
    name = table[variant]
    for folder in (_PKG / "models", _PKG.parent / "models"):
        p = folder / name
        if p.is_file():
            return p
    raise ModelLoadError(
        f"the {what} {name} is not installed (looked in {_PKG / 'models'} and {_PKG.parent / 'models'}); "
        "reinstall edge-embedder or pass --model"
    )


def sample_images() -> dict[str, Path]:
    """The bundled sample photos (from scikit-image's data module), by name."""
    return {n: _PKG / "data" / f"{n}.png" for n in SAMPLE_NAMES}
