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


# --------------------------------------------------------------------------- #
# The tiny random CLIP pair (image + text towers of one checkpoint), built once
# per session by the README's own commands and shared by the text, zero-shot,
# CLI and README tests. Other formats / quantizations convert lazily from one
# loaded checkpoint (``clip_file``).
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def clip_pair(tmp_path_factory) -> dict:
    """{"dir", "checkpoint", "image", "text"}: the README's tiny CLIP checkpoint and its two .tflite towers."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("litert_torch")
    pytest.importorskip("tokenizers")
    import os

    from edge_embedder.convert import tiny_clip

    from edge_embedder.cli import main

    from .text_models import README_COMMANDS

    folder = tmp_path_factory.mktemp("readme_clip")
    old = os.getcwd()
    os.chdir(folder)
    try:
        for cmd in README_COMMANDS:
            if cmd[0] == "tiny_clip":
                tiny_clip.main(cmd[1:])
            else:
                assert main(cmd) == 0, f"README command failed: edge-embedder {' '.join(cmd)}"
    finally:
        os.chdir(old)
    return {"dir": folder, "checkpoint": folder / "tiny-clip", "image": folder / "tiny-clip-image.tflite",
            "text": folder / "tiny-clip-text.tflite"}


@pytest.fixture(scope="session")
def clip_file(clip_pair, tmp_path_factory):
    """``get(tower, fmt, quant) -> path``: the tiny CLIP's towers in every format and quantization (lazy, cached)."""
    from edge_embedder.convert import convert, get_config

    out = tmp_path_factory.mktemp("clip_files")
    loaded: dict = {}
    refs: dict = {}
    cache = {("image", "tflite", "none"): clip_pair["image"], ("text", "tflite", "none"): clip_pair["text"]}

    def get(tower: str, fmt: str = "tflite", quant: str = "none"):
        key = (tower, fmt, quant)
        if key not in cache:
            task = {"image": "image-embedding", "text": "text-embedding"}[tower]
            if tower not in loaded:
                loaded[tower] = get_config("clip", task).load(str(clip_pair["checkpoint"]))
                refs[tower] = {}
            path = out / f"{tower}_{quant}.{fmt}"
            convert("clip", None, output=path, task=task, fmt=fmt, quantize=quant, loaded=loaded[tower],
                    reference_cache=refs[tower], progress=lambda m: None)
            cache[key] = path
        return cache[key]

    def loaded_model(tower: str):
        """The loaded checkpoint behind ``get`` (its float exports are cached on it)."""
        if tower not in loaded:
            get(tower, "onnx")
        return loaded[tower]

    get.loaded = loaded_model  # type: ignore[attr-defined]
    return get
