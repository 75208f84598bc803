"""ImageEmbedder on the shipped EfficientNet-Lite0 models: stored values, geometry, postprocessing."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image as PILImage

from edge_embedder import (
    BaseOptions,
    EmbedderClosedError,
    EmbeddingMismatchError,
    Image,
    ImageEmbedder,
    ImageEmbedderOptions,
    ImageProcessingOptions,
    OptionsError,
    RectF,
    RunningMode,
)

from .conftest import DATA, FIXTURES, FP32_MODEL, INT8_MODEL, photo

# Named tolerances (as MediaPipe's own tests keep them).
_EPSILON = 1e-4  # stored first values: same model file, same preprocessing, float noise only
_SIMILARITY_TOLERANCE = 1e-4  # stored similarities
# ROI vs pre-cropped, rotation vs pre-rotated on a real model. Not 1.0: MediaPipe's
# corner-aligned mapping puts a turned image one source pixel away from np.rot90, and
# the un-antialiased 2.9x downscale turns that shift into different sampled pixels.
_GEOMETRY_SIMILARITY = 0.95

# MediaPipe 1.2.2's ImageEmbedder on the shipped files (an independent implementation of the same
# preprocessing and postprocessing), recorded by tests/fixtures/make_shipped_reference.py;
# tests/test_interop_mediapipe.py checks that MediaPipe still gives exactly these.
_MP = json.loads((FIXTURES / "shipped_reference.json").read_text())["embedders"]
FIRST_VALUES = {k: v["chelsea_first_values"] for k, v in _MP.items()}
CHELSEA_VS_MIRROR = {k: v["chelsea_vs_mirror"] for k, v in _MP.items()}
CHELSEA_VS_COFFEE = {k: v["chelsea_vs_coffee"] for k, v in _MP.items()}


@pytest.fixture(scope="module", params=["fp32", "int8"])
def variant(request):
    path = FP32_MODEL if request.param == "fp32" else INT8_MODEL
    with ImageEmbedder.create_from_model_path(path) as e:
        yield request.param, e


def test_contract_of_shipped_models(fp32_embedder, int8_embedder):
    s = fp32_embedder.model_spec
    assert (s.height, s.width, str(s.input_dtype)) == (224, 224, "float32")
    assert s.normalization.mean == (127.0,) and s.normalization.std == (128.0,)
    assert [(o.name, o.size) for o in s.outputs] == [("embedding", 1280)]
    q = int8_embedder.model_spec
    assert str(q.input_dtype) == "uint8" and q.normalization is None
    assert fp32_embedder.metadata.license.startswith("Apache-2.0")


def test_stored_first_values_and_similarities(variant):
    name, e = variant
    chelsea = photo("chelsea")
    v = e.embed(chelsea).embeddings[0]
    assert v.embedding.shape == (1280,)
    np.testing.assert_allclose(v.embedding[:5], FIRST_VALUES[name], atol=_EPSILON)
    mirror = e.embed(np.ascontiguousarray(chelsea[:, ::-1])).embeddings[0]
    coffee = e.embed(photo("coffee")).embeddings[0]
    assert e.cosine_similarity(v, mirror) == pytest.approx(CHELSEA_VS_MIRROR[name], abs=_SIMILARITY_TOLERANCE)
    assert e.cosine_similarity(v, coffee) == pytest.approx(CHELSEA_VS_COFFEE[name], abs=_SIMILARITY_TOLERANCE)


def test_unrelated_photos_are_far_apart_and_int8_tracks_fp32(fp32_embedder, int8_embedder):
    names = ["chelsea", "coffee", "astronaut", "rocket"]
    f = [fp32_embedder.embed(photo(n)).embeddings[0] for n in names]
    q = [int8_embedder.embed(photo(n)).embeddings[0] for n in names]
    for i in range(4):
        assert ImageEmbedder.cosine_similarity(f[i], q[i]) > 0.99
        for j in range(i + 1, 4):
            assert 0.05 < ImageEmbedder.cosine_similarity(f[i], f[j]) < 0.35


def test_path_pil_array_and_image_give_the_same_embedding(fp32_embedder):
    path = DATA / "coffee.png"
    forms = [path, str(path), PILImage.open(path), photo("coffee"), Image.create_from_file(path)]
    vecs = [fp32_embedder.embed(x).embeddings[0].embedding for x in forms]
    for v in vecs[1:]:
        np.testing.assert_array_equal(v, vecs[0])


def test_roi_equals_pre_cropped_image(fp32_embedder):
    img = photo("astronaut")  # 512 x 512: the ROI edges fall on whole pixels
    roi = RectF(0.25, 0.125, 0.75, 0.625)
    a = fp32_embedder.embed(img, ImageProcessingOptions(region_of_interest=roi)).embeddings[0]
    b = fp32_embedder.embed(np.ascontiguousarray(img[64:320, 128:384])).embeddings[0]
    assert ImageEmbedder.cosine_similarity(a, b) > _GEOMETRY_SIMILARITY
    whole = fp32_embedder.embed(img).embeddings[0]
    assert ImageEmbedder.cosine_similarity(a, whole) < ImageEmbedder.cosine_similarity(a, b)


@pytest.mark.parametrize("degrees,k", [(90, -1), (-90, 1), (180, 2), (270, 1)])
def test_rotation_equals_pre_rotated_image(fp32_embedder, degrees, k):
    img = photo("rocket")
    a = fp32_embedder.embed(img, ImageProcessingOptions(rotation_degrees=degrees)).embeddings[0]
    b = fp32_embedder.embed(np.ascontiguousarray(np.rot90(img, k))).embeddings[0]
    assert ImageEmbedder.cosine_similarity(a, b) > _GEOMETRY_SIMILARITY
    # and the direction matters: the opposite turn is further away
    if degrees in (90, -90):
        c = fp32_embedder.embed(np.ascontiguousarray(np.rot90(img, -k))).embeddings[0]
        assert ImageEmbedder.cosine_similarity(a, c) < ImageEmbedder.cosine_similarity(a, b)


def test_roi_is_exactly_a_crop_and_rotation_exactly_mediapipes_turn():
    """With an identity model (embedding = input tensor) the geometry is checked pixel by pixel."""
    from .conftest import IDENTITY

    rng = np.random.default_rng(3)
    with ImageEmbedder.create_from_model_path(IDENTITY / "identity_uint8.tflite") as e:  # 24 x 40 input
        img = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
        roi = ImageProcessingOptions(region_of_interest=RectF(0.25, 0.25, 0.75, 0.75))
        out = e.embed(img, roi).embeddings[0].embedding.reshape(24, 40, 3)
        np.testing.assert_array_equal(out, img[12:36, 20:60])
        tall = rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)
        out = e.embed(tall, ImageProcessingOptions(rotation_degrees=90)).embeddings[0].embedding.reshape(24, 40, 3)
        turned = np.rot90(tall, -1)  # clockwise
        # MediaPipe maps the output's corners onto the ROI's corners, so a turned image
        # lands one pixel over (the first column repeats the border).
        np.testing.assert_array_equal(out[:, 1:], turned[:, :-1])
        np.testing.assert_array_equal(out[:, 0], turned[:, 0])


def test_roi_then_rotation(fp32_embedder):
    img = photo("astronaut")
    ipo = ImageProcessingOptions(region_of_interest=RectF(0.25, 0.125, 0.75, 0.625), rotation_degrees=90)
    a = fp32_embedder.embed(img, ipo).embeddings[0]
    b = fp32_embedder.embed(np.ascontiguousarray(np.rot90(img[64:320, 128:384], -1))).embeddings[0]
    assert ImageEmbedder.cosine_similarity(a, b) > _GEOMETRY_SIMILARITY


def test_l2_normalize_and_quantize():
    base = BaseOptions(model_asset_path=FP32_MODEL)
    with ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base)) as raw, \
            ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base, l2_normalize=True)) as l2, \
            ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base, l2_normalize=True, quantize=True)) as q:
        img = photo("chelsea")
        r, n, z = (e.embed(img).embeddings[0] for e in (raw, l2, q))
    np.testing.assert_allclose(n.embedding, r.embedding / np.linalg.norm(r.embedding.astype(np.float64)), atol=1e-6)
    assert z.quantized and z.embedding.dtype == np.int8
    expected = np.clip(np.sign(n.embedding) * np.floor(np.abs(n.embedding.astype(np.float64) * 128) + 0.5), -128, 127)
    np.testing.assert_array_equal(z.embedding, expected.astype(np.int8))
    assert len(z.quantized_bytes) == 1280
    assert ImageEmbedder.cosine_similarity(z, z.quantized_bytes) == pytest.approx(1.0)
    with pytest.raises(EmbeddingMismatchError, match="quantized"):
        ImageEmbedder.cosine_similarity(z, n)


def test_cosine_similarity_errors():
    with pytest.raises(EmbeddingMismatchError, match="different sizes"):
        ImageEmbedder.cosine_similarity(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(EmbeddingMismatchError, match="zero-norm"):
        ImageEmbedder.cosine_similarity(np.zeros(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(EmbeddingMismatchError, match="empty"):
        ImageEmbedder.cosine_similarity(np.ones(0, np.float32), np.ones(0, np.float32))
    with pytest.raises(ValueError):
        ImageEmbedder.cosine_similarity(b"\x01\x02", np.ones(2, np.float32))
    # float64 and float32 user vectors are both "float" (MediaPipe rejects float32 here)
    assert ImageEmbedder.cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0], np.float32)) == pytest.approx(2 ** -0.5)


def test_close_is_idempotent_and_use_after_close_raises():
    e = ImageEmbedder.create_from_model_path(FP32_MODEL)
    e.close()
    e.close()
    with pytest.raises(EmbedderClosedError):
        e.embed(photo("chelsea"))


def test_wrong_running_mode_and_video_timestamps():
    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        with pytest.raises(OptionsError, match="VIDEO"):
            e.embed_for_video(photo("chelsea"), 0)
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=FP32_MODEL), running_mode=RunningMode.VIDEO)
    with ImageEmbedder.create_from_options(opts) as v:
        with pytest.raises(OptionsError, match="IMAGE"):
            v.embed(photo("chelsea"))
        r = v.embed_for_video(photo("chelsea"), 10)
        assert r.timestamp_ms == 10
        with pytest.raises(OptionsError, match="strictly increasing"):
            v.embed_for_video(photo("chelsea"), 10)
        assert v.embed_for_video(photo("coffee"), 11).timestamp_ms == 11


def test_bad_image_processing_options_type(fp32_embedder):
    with pytest.raises(OptionsError):
        fp32_embedder.embed(photo("chelsea"), {"rotation_degrees": 90})


def test_threads_sharing_one_embedder_match_serial_results(fp32_embedder):
    names = ["chelsea", "coffee", "astronaut", "rocket"] * 3
    imgs = [photo(n) for n in names]
    serial = [fp32_embedder.embed(x).embeddings[0].embedding for x in imgs]
    results = [None] * len(imgs)

    def work(i):
        results[i] = fp32_embedder.embed(imgs[i]).embeddings[0].embedding

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(imgs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


def test_models_readme_lists_the_committed_files_sha256():
    import hashlib

    from .conftest import MODELS

    readme = (MODELS / "README.md").read_text()
    for path in (FP32_MODEL, INT8_MODEL):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, path.name
