"""Interop with MediaPipe Tasks' ImageEmbedder (skipped when mediapipe is not installed).

* Pixel-exact preprocessing: identity models (the embedding is the input tensor)
  give the same tensor in MediaPipe and here, for every ROI and rotation.
* MediaPipe loads models whose metadata our writer wrote and returns the same
  embeddings, head names, L2-normalized and quantized values.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions, ImageProcessingOptions, RectF

from .conftest import FP32_MODEL, IDENTITY, INT8_MODEL, photo

mp = pytest.importorskip("mediapipe", reason="mediapipe is not installed: pip install -e '.[dev]' (the mediapipe extra)")
from mediapipe.tasks.python import BaseOptions as MPBaseOptions  # noqa: E402
from mediapipe.tasks.python import vision  # noqa: E402
from mediapipe.tasks.python.components.containers import rect as mp_rect  # noqa: E402

# Float pipelines agree to float32 rounding of the normalization.
_PIXEL_TOL = 1e-5
# Same model, same tensor: only the interpreter's float accumulation order may differ.
_EMBEDDING_TOL = 1e-4
_SIMILARITY_TOL = 1e-6

ROIS = [None, (0.1, 0.2, 0.7, 0.9), (0.0, 0.5, 0.5, 1.0)]
ROTATIONS = [0, 90, -90, 180]


def _mp_embedder(path, **kw):
    opts = vision.ImageEmbedderOptions(base_options=MPBaseOptions(model_asset_path=str(path)), **kw)
    return vision.ImageEmbedder.create_from_options(opts)


def _our_embedder(path, **kw):
    return ImageEmbedder.create_from_options(
        ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=path), **kw))


def _mp_embed(embedder, arr, roi=None, rotation=0):
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(arr))
    rect = None if roi is None else mp_rect.RectF(left=roi[0], top=roi[1], right=roi[2], bottom=roi[3])
    return embedder.embed(image, vision.ImageProcessingOptions(region_of_interest=rect, rotation_degrees=rotation))


def _our_ipo(roi, rotation):
    return ImageProcessingOptions(region_of_interest=None if roi is None else RectF(*roi), rotation_degrees=rotation)


IMAGES = {
    "chelsea": lambda: photo("chelsea"),
    "1080p": lambda: np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8),
    "tiny-upscale": lambda: np.random.default_rng(2).integers(0, 256, (13, 17, 3), dtype=np.uint8),
}


@pytest.mark.parametrize("model", ["identity_float_norm", "identity_uint8"])
def test_preprocessing_is_pixel_exact(model):
    path = IDENTITY / f"{model}.tflite"
    mpe, ours = _mp_embedder(path), _our_embedder(path)
    try:
        for (name, make), roi, rot in itertools.product(IMAGES.items(), ROIS, ROTATIONS):
            img = make()
            a = np.asarray(_mp_embed(mpe, img, roi, rot).embeddings[0].embedding, np.float64)
            b = ours.embed(img, _our_ipo(roi, rot)).embeddings[0].embedding.astype(np.float64)
            np.testing.assert_allclose(b, a, atol=_PIXEL_TOL, err_msg=f"{name} roi={roi} rotation={rot}")
    finally:
        mpe.close()
        ours.close()


# At 224x224 these put sampled coordinates exactly on OpenCV's 1/32-pixel rounding ties; the
# corner-aligned affine formula in float64 broke them unlike MediaPipe (up to 1.5 % of pixels
# off by up to 5 levels); preprocess.corner_aligned_maps follows MediaPipe's float steps.
TIE_CASES = [("chelsea", (0.0, 0.5, 0.5, 1.0), 180), ("chelsea", (0.0, 0.5, 0.5, 1.0), 90),
             ("rocket", (0.1, 0.2, 0.7, 0.9), 0), ("rocket", (0.2, 0.1, 0.9, 0.8), -90),
             ("chelsea", (0.3, 0.0, 1.0, 0.45), 270), ("rocket", (0.05, 0.3, 0.61, 0.97), 450)]


def test_preprocessing_is_pixel_exact_at_224_on_rounding_ties():
    path = IDENTITY / "identity_uint8_224.tflite"
    mpe, ours = _mp_embedder(path), _our_embedder(path)
    try:
        for name, roi, rot in TIE_CASES:
            img = photo(name)
            a = np.asarray(_mp_embed(mpe, img, roi, rot).embeddings[0].embedding)
            b = ours.embed(img, _our_ipo(roi, rot)).embeddings[0].embedding
            np.testing.assert_array_equal(b, a, err_msg=f"{name} roi={roi} rotation={rot}")
    finally:
        mpe.close()
        ours.close()


@pytest.mark.parametrize("model_path", [FP32_MODEL, INT8_MODEL], ids=["fp32", "int8"])
def test_default_model_embeddings_match_mediapipe(model_path):
    mpe, ours = _mp_embedder(model_path), _our_embedder(model_path)
    try:
        for name, roi, rot in [("chelsea", None, 0), ("coffee", (0.2, 0.1, 0.9, 0.8), 90), ("rocket", None, -90)]:
            img = photo(name)
            m = _mp_embed(mpe, img, roi, rot).embeddings[0]
            o = ours.embed(img, _our_ipo(roi, rot)).embeddings[0]
            assert o.head_name == m.head_name == "embedding"
            assert o.head_index == m.head_index == 0
            np.testing.assert_allclose(o.embedding, np.asarray(m.embedding), atol=_EMBEDDING_TOL, rtol=0)
    finally:
        mpe.close()
        ours.close()


def test_l2_and_quantize_match_mediapipe():
    mpe = _mp_embedder(FP32_MODEL, l2_normalize=True, quantize=True)
    ours = _our_embedder(FP32_MODEL, l2_normalize=True, quantize=True)
    mpf = _mp_embedder(FP32_MODEL, l2_normalize=True)
    ourf = _our_embedder(FP32_MODEL, l2_normalize=True)
    try:
        a, b = photo("chelsea"), photo("chelsea")[:, ::-1]
        mq = [np.asarray(_mp_embed(mpe, x).embeddings[0].embedding).view(np.int8) for x in (a, b)]
        oq = [ours.embed(x).embeddings[0].embedding for x in (a, b)]
        for m, o in zip(mq, oq):
            assert o.dtype == np.int8
            # Rounding of values within float noise of a .5/128 boundary may differ by one step.
            assert np.abs(m.astype(int) - o.astype(int)).max() <= 1
            assert (m != o).mean() < 0.01
        mf = [_mp_embed(mpf, x).embeddings[0] for x in (a, b)]
        of = [ourf.embed(x).embeddings[0] for x in (a, b)]
        np.testing.assert_allclose(of[0].embedding, np.asarray(mf[0].embedding), atol=_EMBEDDING_TOL)
        assert np.linalg.norm(of[0].embedding) == pytest.approx(1.0, abs=1e-5)
        assert ImageEmbedder.cosine_similarity(of[0], of[1]) == pytest.approx(
            vision.ImageEmbedder.cosine_similarity(mf[0], mf[1]), abs=_EMBEDDING_TOL)
    finally:
        for e in (mpe, ours, mpf, ourf):
            e.close()


def test_mediapipe_still_gives_the_stored_reference():
    """tests/fixtures/shipped_reference.json is MediaPipe's output, not this runtime's: recompute and compare."""
    import json

    from .conftest import FIXTURES
    from .fixtures.make_shipped_reference import record

    stored = json.loads((FIXTURES / "shipped_reference.json").read_text())
    now = record()
    assert now["mediapipe"] == stored["mediapipe"]
    for variant, ref in stored["embedders"].items():
        got = now["embedders"][variant]
        np.testing.assert_allclose(got["chelsea_first_values"], ref["chelsea_first_values"], atol=_EMBEDDING_TOL)
        for key in ("chelsea_vs_mirror", "chelsea_vs_coffee"):
            assert got[key] == pytest.approx(ref[key], abs=_EMBEDDING_TOL)
    for variant, ref in stored["classifiers"].items():
        for name in ("chelsea", "coffee"):
            assert now["classifiers"][variant][name]["top5"] == ref[name]["top5"]
            np.testing.assert_allclose(now["classifiers"][variant][name]["scores"], ref[name]["scores"], atol=_EMBEDDING_TOL)
