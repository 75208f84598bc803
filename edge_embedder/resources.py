"""Where the shipped default models and sample photos live.

An installed wheel carries them inside the package (``edge_embedder/models``,
``edge_embedder/data``); a source checkout (editable install) finds the models
in the repository's top-level ``models/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelLoadError

__all__ = ["DEFAULT_MODELS", "default_model_path", "sample_images"]

_PKG = Path(__file__).resolve().parent
DEFAULT_MODELS = {
    "fp32": "efficientnet_lite0_fp32.tflite",
    "int8": "efficientnet_lite0_int8.tflite",
}
SAMPLE_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def default_model_path(variant: str = "fp32") -> Path:
    """Path of the shipped EfficientNet-Lite0 embedder (``fp32`` or ``int8``)."""
    if variant not in DEFAULT_MODELS:
        raise ModelLoadError(f"default model variant: expected one of {sorted(DEFAULT_MODELS)}, got {variant!r}")
    name = DEFAULT_MODELS[variant]
    for folder in (_PKG / "models", _PKG.parent / "models"):
        p = folder / name
        if p.is_file():
            return p
    raise ModelLoadError(
        f"the default model {name} is not installed (looked in {_PKG / 'models'} and {_PKG.parent / 'models'}); "
        "reinstall edge-embedder or pass --model"
    )


def sample_images() -> dict[str, Path]:
    """The bundled sample photos (from scikit-image's data module), by name."""
    return {n: _PKG / "data" / f"{n}.png" for n in SAMPLE_NAMES}
