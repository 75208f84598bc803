"""Public surface, options validation and import hygiene."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edge_embedder as ee
from edge_embedder import BaseOptions, ImageEmbedderOptions, ImageProcessingOptions, OptionsError, RectF, RunningMode
from edge_embedder.core.base_options import default_num_threads

from .conftest import ROOT

DOCUMENTED = {
    "ImageEmbedder", "ImageEmbedderOptions", "BaseOptions", "ImageProcessingOptions", "RectF", "RunningMode",
    "Image", "ImageLike", "Embedding", "EmbeddingResult", "ImageEmbedderResult", "TextEmbedderResult", "BatchItem",
    "LiveStreamStats", "Timings", "ModelSpec", "OutputSpec", "TextModelSpec", "TokenizerSpec", "ModelMetadata",
    "inspect_model",
    "ImageClassifier", "ImageClassifierOptions", "Category", "Classifications", "ClassificationResult",
    "ImageClassifierResult", "ClassifierSpec", "ClassificationHeadSpec",
    "TextEmbedder", "TextEmbedderOptions", "ZeroShotImageClassifier", "ZeroShotImageClassifierOptions",
    "EdgeEmbedderError", "ModelError", "ModelLoadError", "ModelOutputError", "MetadataError", "ModelContractError",
    "InputContractError", "OutputContractError", "BackendUnavailableError", "MissingDependencyError",
    "ImageError", "ImageDecodeError", "UnsupportedImageError", "TextInputError", "OptionsError",
    "EmbeddingMismatchError", "EmbeddingSpaceMismatchError", "EmbedderClosedError",
}


def test_public_names_are_the_documented_ones():
    assert set(ee.__all__) == DOCUMENTED
    for name in ee.__all__:
        assert hasattr(ee, name), name
    assert isinstance(ee.__version__, str) and "__version__" not in ee.__all__
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    undocumented = sorted(n for n in ee.__all__ if f"`{n}" not in docs and f"{n}(" not in docs and f" {n}," not in docs)
    assert not undocumented, f"public names neither README.md nor docs/ mentions: {undocumented}"


def test_import_does_not_import_heavy_tools():
    code = (
        "import sys\n"
        "for m in ('torch', 'transformers', 'litert_torch', 'tensorflow', 'mediapipe'):\n"
        "    sys.modules[m] = None  # importing any of them now raises ImportError\n"
        "import edge_embedder, edge_embedder.cli\n"
        "from edge_embedder import ImageEmbedder\n"
        "e = ImageEmbedder.create_from_model_path(sys.argv[1])\n"
        "print(len(e.embed(__import__('numpy').zeros((8, 8, 3), 'uint8')).embeddings))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "tests/fixtures/contract/valid_float.tflite")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_error_tree_derives_from_builtins():
    assert issubclass(ee.TextInputError, TypeError) and issubclass(ee.TextInputError, ValueError)
    assert issubclass(ee.ModelOutputError, ee.ModelError) and issubclass(ee.ModelOutputError, RuntimeError)
    assert issubclass(ee.EmbeddingSpaceMismatchError, ee.EmbeddingMismatchError)
    assert issubclass(ee.ModelContractError, ValueError)
    assert issubclass(ee.InputContractError, ee.ModelContractError)
    assert issubclass(ee.ImageDecodeError, ValueError)
    assert issubclass(ee.EmbeddingMismatchError, ValueError)
    assert issubclass(ee.EmbedderClosedError, RuntimeError)
    assert issubclass(ee.BackendUnavailableError, ImportError)


@pytest.mark.parametrize(
    "edges",
    [(-0.1, 0, 1, 1), (0, 0, 1.2, 1), (0.5, 0, 0.5, 1), (0.6, 0, 0.4, 1), (0, 0.7, 1, 0.2), (0, 0, float("nan"), 1)],
)
def test_rectf_rejects_bad_edges(edges):
    with pytest.raises(OptionsError):
        RectF(*edges)


@pytest.mark.parametrize("deg", [45, 30.5, "90", True])
def test_rotation_must_be_a_multiple_of_90(deg):
    with pytest.raises(OptionsError):
        ImageProcessingOptions(rotation_degrees=deg)


def test_rotation_quarter_turns():
    assert ImageProcessingOptions(rotation_degrees=-90).quarter_turns == 3
    assert ImageProcessingOptions(rotation_degrees=450).quarter_turns == 1


def test_base_options_needs_exactly_one_source():
    with pytest.raises(OptionsError, match="neither"):
        BaseOptions()
    with pytest.raises(OptionsError, match="both"):
        BaseOptions(model_asset_path="a.tflite", model_asset_buffer=b"x")
    with pytest.raises(OptionsError, match="num_threads"):
        BaseOptions(model_asset_path="a.tflite", num_threads=0)


def test_default_threads_capped_at_four():
    assert 1 <= default_num_threads() <= 4
    assert BaseOptions(model_asset_path="a").resolved_num_threads == default_num_threads()


def test_result_callback_only_in_live_stream():
    base = BaseOptions(model_asset_path="a.tflite")
    with pytest.raises(OptionsError):
        ImageEmbedderOptions(base_options=base, result_callback=lambda *a: None)
    with pytest.raises(OptionsError):
        ImageEmbedderOptions(base_options=base, running_mode=RunningMode.LIVE_STREAM)
