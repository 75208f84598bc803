"""Shared test fixtures: paths of committed fixture models and bundled photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONTRACT = FIXTURES / "contract"
IDENTITY = FIXTURES / "identity"
REFERENCE = FIXTURES / "reference_metadata"
DATA = ROOT / "edge_embedder" / "data"
MODELS = ROOT / "models"
FP32_MODEL = MODELS / "efficientnet_lite0_fp32.tflite"
INT8_MODEL = MODELS / "efficientnet_lite0_int8.tflite"


def photo(name: str) -> np.ndarray:
    """A bundled sample photo (scikit-image's chelsea, coffee, astronaut, rocket) as RGB uint8."""
    return np.asarray(PILImage.open(DATA / f"{name}.png").convert("RGB"))


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return photo("chelsea")


@pytest.fixture(scope="session")
def fp32_embedder():
    from edge_embedder import ImageEmbedder

    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        yield e


@pytest.fixture(scope="session")
def int8_embedder():
    from edge_embedder import ImageEmbedder

    with ImageEmbedder.create_from_model_path(INT8_MODEL) as e:
        yield e
