"""Shrink-on-load (edge_embedder.vision.shrink): scale choice, geometry, fallbacks, errors.

Content comparisons resize both decodes with Pillow's BOX filter and a
fractional source box (exact continuous-coordinate cropping), to a size well
below the reduced decode, and compare mean absolute differences in 8-bit
levels. The tolerance (mean <= 6 levels) is 1.5x the worst difference measured
for a correctly registered 1/8 decode of the test image (3.9-4.3): what is left
is libjpeg's DCT-domain reduction (0.2-0.4 levels from a box mean on smooth
content), the extra one-decoded-pixel blur of filtering twice, and 4:2:0
chroma, which a 1/8 decode resolves only to 1/16. A registration error of the
partial DCT block (the ROI computed on ``ceil(W / s)`` instead of ``W / s``)
doubles the difference (8-12 levels), and a wrong EXIF orientation gives ~70.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageFilter

from edge_embedder.errors import ImageDecodeError, OptionsError
from edge_embedder.vision.image import Image
from edge_embedder.vision.shrink import (
    JPEG_SCALES,
    choose_scale,
    decode_for_model,
    roi_in_decoded,
    scaled_size,
    target_hw_for,
)

from .conftest import DATA

W, H = 1601, 1201  # not multiples of 8: every scale has a partial last block column and row
TOL = 6.0
_TRANSPOSE = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


@pytest.fixture(scope="module")
def test_image() -> PILImage.Image:
    """A photo upscaled to W x H with a blurred grid (edges to register) and an asymmetric red block."""
    photo = PILImage.open(DATA / "astronaut.png").convert("RGB").resize((W, H), PILImage.Resampling.BICUBIC)
    a = np.array(photo)
    yy, xx = np.mgrid[:H, :W]
    a[((yy // 24) % 4 == 0) | ((xx // 24) % 4 == 0)] //= 3
    a[:200, :300] = (255, 0, 0)
    return PILImage.fromarray(a).filter(ImageFilter.GaussianBlur(4))


def _save_jpeg(im: PILImage.Image, path, orientation: int = 1, **kw) -> None:
    if orientation != 1:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    im.save(path, "JPEG", quality=92, **kw)


def _resized(arr: np.ndarray, roi, out=(64, 64)) -> np.ndarray:
    h, w = arr.shape[:2]
    left, top, right, bottom = roi or (0.0, 0.0, 1.0, 1.0)
    im = PILImage.fromarray(arr).resize(out, PILImage.Resampling.BOX, box=(left * w, top * h, right * w, bottom * h))
    return np.asarray(im).astype(np.float64)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# -- scale choice ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, target, roi, rotation, safety, expected",
    [
        ((4000, 3000), (224, 224), None, 0, 1.0, 8),  # 500x375 >= 224
        ((4000, 3000), (224, 224), None, 0, 1.5, 8),  # 375 >= 336
        ((4000, 3000), (224, 224), None, 0, 2.0, 4),  # 375 < 448 <= 750
        ((4000, 3000), (224, 224), None, 0, 4.0, 2),  # 1500 >= 896
        ((4000, 3000), (224, 224), None, 0, 8.0, 1),  # 1500 < 1792
        ((1632, 1224), (224, 224), None, 0, 1.0, 4),  # 408x306
        ((1632, 1224), (224, 224), None, 0, 1.5, 2),  # 306 < 336
        ((640, 480), (224, 224), None, 0, 1.0, 2),  # 320x240
        ((300, 200), (224, 224), None, 0, 1.0, 1),  # smaller than the model: full decode
        ((4000, 3000), (224, 224), (0.4, 0.4, 0.6, 0.6), 0, 1.0, 2),  # ROI 800x600 px
        # (h, w) = (224, 672): the ROI's 2000 px width must cover 672 unrotated, 224 turned a quarter.
        ((4000, 3000), (224, 672), (0.0, 0.0, 0.5, 1.0), 0, 1.0, 2),
        ((4000, 3000), (224, 672), (0.0, 0.0, 0.5, 1.0), 90, 1.0, 4),
        ((4000, 3000), (224, 672), (0.0, 0.0, 0.5, 1.0), -90, 1.0, 4),
        ((4000, 3000), (224, 672), (0.0, 0.0, 0.5, 1.0), 180, 1.0, 2),
    ],
)
def test_choose_scale(size, target, roi, rotation, safety, expected):
    assert choose_scale(size, target, roi, rotation, safety=safety) == (expected, False)


def test_pixel_budget_takes_a_coarser_scale_or_refuses():
    assert choose_scale((4000, 3000), (224, 224), safety=8.0) == (1, False)
    assert choose_scale((4000, 3000), (224, 224), safety=8.0, max_pixels=4_000_000) == (2, True)  # 2000x1500
    assert choose_scale((4000, 3000), (224, 224), safety=1.0, max_pixels=4_000_000) == (8, False)
    with pytest.raises(ImageDecodeError, match="pixel budget"):
        choose_scale((4000, 3000), (224, 224), max_pixels=100_000)  # 500x375 at 1/8 is too much


def test_scaled_sizes_round_up_like_libjpeg():
    assert scaled_size(4001, 2999, 8) == (501, 375)
    assert scaled_size(4000, 3000, 8) == (500, 375)
    assert scaled_size(W, H, 4) == (401, 301)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_decode_size_and_scale_match_libjpeg(tmp_path, test_image, scale):
    """Pillow's draft picks floor(W / requested) as the scale: asking for ceil sizes would get 1/(scale/2)."""
    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p)
    px, info = decode_for_model(p, (64, 64), scale=scale)
    assert info.scale == scale and info.shrunk
    assert info.decoded_size == scaled_size(W, H, scale) == (px.shape[1], px.shape[0])
    assert info.original_size == info.stored_size == (W, H)
    # The content covers W / scale of ceil(W / scale) decoded pixels: the ROI says so.
    assert info.roi == pytest.approx((0.0, 0.0, (W / scale) / -(-W // scale), (H / scale) / -(-H // scale)))
    assert px.dtype == np.uint8 and px.flags.c_contiguous and not px.flags.writeable


def test_chosen_scale_is_used(tmp_path, test_image):
    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p)
    # 1601x1201 for a 64x64 model: 150 rows at 1/8 (2.3x), 300 at 1/4 (4.7x), 600 at 1/2 (9.4x).
    for safety, expected in ((1.0, 8), (2.0, 8), (2.5, 4), (5.0, 2), (10.0, 1)):
        assert decode_for_model(p, (64, 64), safety=safety)[1].scale == expected, safety
    assert decode_for_model(p, (64, 64), safety=None)[1].scale == 1


def test_target_hw_for_recipes():
    from edge_embedder.vision import Recipe

    assert target_hw_for(224, 224) == (224, 224)
    assert target_hw_for(224, 224, Recipe()) == (224, 224)
    clip = Recipe(sampler="pil", resize="shortest_edge", size=256, crop=(224, 224), interpolation="bicubic")
    assert target_hw_for(224, 224, clip) == (256, 256)
    assert target_hw_for(224, 224, Recipe(sampler="pil", size=(240, 320))) == (240, 320)


# -- EXIF orientation ----------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_full_decode(tmp_path, test_image, orientation):
    p = tmp_path / f"o{orientation}.jpg"
    _save_jpeg(test_image, p, orientation)
    full = Image.create_from_file(p).numpy_view()
    px, info = decode_for_model(p, (64, 64), scale=8)
    swapped = orientation >= 5
    assert info.orientation == orientation
    assert info.original_size == ((H, W) if swapped else (W, H)) == (full.shape[1], full.shape[0])
    assert info.decoded_size == scaled_size(*info.original_size, 8) == (px.shape[1], px.shape[0])
    got = _resized(px, info.roi)
    # Against the full decode of every orientation: the right one matches, every other one is far off.
    candidates = {}
    base = np.asarray(test_image)
    for k in range(1, 9):
        view = PILImage.fromarray(base)
        if k != 1:
            view = view.transpose(_TRANSPOSE[k])
        if np.asarray(view).shape != full.shape:
            continue
        candidates[k] = _mad(got, _resized(np.asarray(view), None))
    assert min(candidates, key=candidates.get) == orientation, candidates
    assert _mad(got, _resized(full, None)) <= TOL
    assert all(v > 30 for k, v in candidates.items() if k != orientation), candidates


# -- ROI exactness -------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("scale", [4, 8])
def test_roi_maps_to_the_same_content(tmp_path, test_image, orientation, scale):
    """A ROI on the reduced decode (info.roi) covers what the same ROI covers on the full decode."""
    roi = (0.13, 0.21, 0.77, 0.9)
    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p, orientation)
    full = Image.create_from_file(p).numpy_view()
    px, info = decode_for_model(p, (64, 64), roi, scale=scale)
    ref = _resized(full, roi)
    exact = _mad(_resized(px, info.roi), ref)
    naive = _mad(_resized(px, roi), ref)  # the normalized ROI used as is on ceil-rounded sizes
    assert exact <= TOL
    assert exact < 0.6 * naive, (exact, naive)
    assert info.roi_for(roi) == info.roi


def test_roi_mapping_formula():
    # Unflipped axis: x -> x * (W / s) / ceil(W / s); a flipped axis has its partial pixel first.
    lft, t, r, b = roi_in_decoded((0.25, 0.0, 0.75, 1.0), (4001, 3000), 8, 1)
    assert (lft, r) == pytest.approx((0.25 * 500.125 / 501, 0.75 * 500.125 / 501))
    assert (t, b) == pytest.approx((0.0, 1.0))
    lft, _, r, _ = roi_in_decoded((0.25, 0.0, 0.75, 1.0), (4001, 3000), 8, 2)
    assert (lft, r) == pytest.approx(((0.875 + 0.25 * 500.125) / 501, (0.875 + 0.75 * 500.125) / 501))
    assert roi_in_decoded(None, (4000, 3000), 8, 6) is None  # divisible, no ROI: identity
    # Pixel-centre variant (MediaPipe's corner-aligned sampler): shifted back by (s - 1) / (2 s) pixels.
    lft, t, r, b = roi_in_decoded(None, (4000, 3000), 8, 1, centres=True)
    assert (lft, t, r, b) == pytest.approx((-0.4375 / 500, -0.4375 / 375, 1 - 0.4375 / 500, 1 - 0.4375 / 375))


# -- fallbacks: bit-identical full decode -----------------------------------------------------
def _non_jpeg_files(tmp_path, test_image):
    small = test_image.resize((400, 300))
    files = {}
    for name, kw in {"rgb.png": {}, "x.webp": {"lossless": True}, "x.bmp": {}, "x.tif": {}}.items():
        small.save(tmp_path / name, **kw)
        files[name] = tmp_path / name
    small.convert("RGBA").save(tmp_path / "rgba.png")
    small.convert("P").save(tmp_path / "p.png")
    small.convert("L").save(tmp_path / "l.png")
    PILImage.fromarray(np.asarray(small.convert("L")).astype(np.uint16) * 257).save(tmp_path / "16.png")
    exif = PILImage.Exif()
    exif[0x0112] = 6
    small.save(tmp_path / "exif6.png", exif=exif.tobytes())
    for n in ("rgba.png", "p.png", "l.png", "16.png", "exif6.png"):
        files[n] = tmp_path / n
    return files


def test_non_jpeg_decodes_in_full_bit_identically(tmp_path, test_image):
    for name, path in _non_jpeg_files(tmp_path, test_image).items():
        px, info = decode_for_model(path, (32, 32), safety=1.0)  # a JPEG this size would go 1/8
        ref = Image.create_from_file(path).numpy_view()
        assert info.scale == 1 and info.roi is None, name
        assert px.dtype == ref.dtype and px.shape == ref.shape and np.array_equal(px, ref), name
    assert decode_for_model(tmp_path / "exif6.png", (32, 32))[1].orientation == 6


def test_jpeg_at_scale_one_is_bit_identical(tmp_path, test_image):
    p = tmp_path / "small.jpg"
    _save_jpeg(test_image.resize((300, 200)), p, orientation=3)
    px, info = decode_for_model(p, (224, 224), (0.1, 0.1, 0.9, 0.9))
    assert info.scale == 1 and info.roi == (0.1, 0.1, 0.9, 0.9)
    assert np.array_equal(px, Image.create_from_file(p).numpy_view())


def test_gray_cmyk_progressive_and_mpo_jpegs(tmp_path, test_image):
    small = test_image.resize((800, 600))
    small.convert("L").save(tmp_path / "gray.jpg", quality=92)
    small.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=92)
    small.save(tmp_path / "progressive.jpg", quality=92, progressive=True)
    small.save(tmp_path / "multi.mpo", "MPO", save_all=True, append_images=[small.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)])
    for name in ("gray.jpg", "cmyk.jpg", "progressive.jpg", "multi.mpo"):
        full = Image.create_from_file(tmp_path / name).numpy_view()
        px, info = decode_for_model(tmp_path / name, (64, 64), scale=4)
        assert info.scale == 4 and px.shape == (150, 200, 3), name
        assert _mad(_resized(px, info.roi), _resized(full, None)) <= TOL, name
    assert decode_for_model(tmp_path / "multi.mpo", (64, 64))[1].format == "MPO"


# -- errors ----------------------------------------------------------------------------------
def test_corrupt_truncated_empty_and_missing_files(tmp_path, test_image):
    buf = io.BytesIO()
    test_image.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    cases = {
        "empty.jpg": b"",
        "truncated.jpg": data[: len(data) // 3],
        "header_only.jpg": data[:600],
        "garbage.jpg": b"\xff\xd8\xff" + bytes(range(256)) * 8,
        "text.jpg": b"not an image at all\n" * 10,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        for scale in (None, 8):  # the draft path and the full path
            with pytest.raises(ImageDecodeError, match=name):
                decode_for_model(tmp_path / name, (64, 64), scale=scale)
            with pytest.raises(ImageDecodeError):  # as Image.create_from_file does
                Image.create_from_file(tmp_path / name)
    with pytest.raises(ImageDecodeError, match="no such file"):
        decode_for_model(tmp_path / "missing.jpg", (64, 64))
    with pytest.raises(ImageDecodeError, match="directory"):
        decode_for_model(tmp_path, (64, 64))


def test_decompression_bomb_is_refused_at_any_scale(tmp_path, monkeypatch):
    import warnings

    p = tmp_path / "big.jpg"
    PILImage.new("RGB", (1000, 1000)).save(p)
    # Over twice Pillow's limit (its error): refused although a 1/8 decode would be small, since the entropy
    # decoding still walks every block. Between the limit and twice it (Pillow's warning), the pixel budget
    # decides, as for a full decode, and no warning reaches the caller.
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 400_000)
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_for_model(p, (64, 64))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 600_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        px, info = decode_for_model(p, (64, 64))
    assert info.scale == 4 and px.shape == (250, 250, 3)  # 250 >= 2.5 (the default safety) x 64


def test_pixel_budget(tmp_path, test_image):
    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p)
    px, info = decode_for_model(p, (64, 64), safety=4.0, max_pixels=201 * 151)  # wants 1/2, fits only 1/8
    assert info.scale == 8 and info.budget_limited and px.shape == (151, 201, 3)
    with pytest.raises(ImageDecodeError, match="pixel budget"):
        decode_for_model(p, (64, 64), max_pixels=1000)
    test_image.save(tmp_path / "x.png")
    with pytest.raises(ImageDecodeError, match="pixel budget"):
        decode_for_model(tmp_path / "x.png", (64, 64), max_pixels=W * H - 1)


def test_bad_options():
    for kw in ({"safety": 0.5}, {"safety": True}, {"scale": 3}, {"max_pixels": 0}, {"rotation": 45},
               {"roi": (0.5, 0.0, 0.4, 1.0)}, {"roi": (0, 0, 1)}):
        with pytest.raises(OptionsError):
            decode_for_model(DATA / "chelsea.png", (224, 224), **kw)
    with pytest.raises(OptionsError):
        decode_for_model(DATA / "chelsea.png", (0, 224))


def test_info_roi_feeds_the_embedder(tmp_path, test_image):
    from edge_embedder import ImageEmbedder, ImageProcessingOptions, RectF
    from edge_embedder.resources import default_model_path

    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p, orientation=6)
    px, info = decode_for_model(p, (224, 224), (0.1, 0.2, 0.8, 0.9), 90, safety=1.0)
    assert info.scale == 2  # the ROI's 841 x 1121 px (oriented) leave 420 x 560 at 1/2, 210 x 280 at 1/4
    with ImageEmbedder.create_from_model_path(default_model_path("fp32")) as e:
        full = e.embed(p, ImageProcessingOptions(RectF(0.1, 0.2, 0.8, 0.9), 90)).embeddings[0]
        shrunk = e.embed(px, ImageProcessingOptions(RectF(*info.roi), 90)).embeddings[0]
    assert ImageEmbedder.cosine_similarity(full, shrunk) > 0.95
    assert JPEG_SCALES == (8, 4, 2, 1)


# -- pil recipe with exact crops on a reduced decode ------------------------------------------
_PIL_RECIPES = {
    "vit": dict(sampler="pil", resize="stretch", size=(224, 224), interpolation="bilinear"),
    "clip": dict(sampler="pil", resize="shortest_edge", size=224, crop=(224, 224), interpolation="bicubic"),
}


@pytest.mark.parametrize("name", sorted(_PIL_RECIPES))
@pytest.mark.parametrize("roi, rotation", [(None, 0), ((0.13, 0.21, 0.77, 0.9), 90), ((0.1, 0.0, 0.6, 0.5), 180),
                                           ((0.3, 0.3, 0.9, 0.7), -90)])
def test_reduced_pil_sampler_at_scale_one_is_the_full_path(tmp_path, test_image, name, roi, rotation):
    from edge_embedder import ImageProcessingOptions, RectF
    from edge_embedder.vision import Preprocessor, Recipe

    recipe = Recipe(**_PIL_RECIPES[name])
    p = tmp_path / "x.jpg"
    _save_jpeg(test_image, p, orientation=6)
    ipo = ImageProcessingOptions(RectF(*roi) if roi else None, rotation)
    runtime = Preprocessor(224, 224, recipe, None)
    full, info = decode_for_model(p, (224, 224), roi, rotation, scale=1)
    assert np.array_equal(runtime.to_uint8(full, ipo, reduced=info), runtime.to_uint8(full, ipo))
    # On a 1/4 decode the exact fractional crop is closer to the full-decode output than the plain sampler on
    # the same pixels (whose whole-pixel crop and crop-size rounding happen on a 4x coarser grid).
    px, info4 = decode_for_model(p, (224, 224), roi, rotation, scale=4)
    ref = runtime.to_uint8(full, ipo).astype(np.float64)
    exact = runtime.to_uint8(px, ipo, reduced=info4).astype(np.float64)
    ipo4 = ImageProcessingOptions(RectF(*info4.roi) if info4.roi else None, rotation)
    plain = runtime.to_uint8(px, ipo4).astype(np.float64)
    assert _mad(exact, ref) <= TOL
    print(name, roi, rotation, round(_mad(exact, ref), 2), round(_mad(plain, ref), 2))
    assert _mad(exact, ref) <= _mad(plain, ref)


def test_recommended_safety():
    from edge_embedder.vision import Recipe
    from edge_embedder.vision.shrink import DEFAULT_SAFETY, recommended_safety

    assert recommended_safety(None) is None and recommended_safety(Recipe()) is None
    vit, clip = Recipe(**_PIL_RECIPES["vit"]), Recipe(**_PIL_RECIPES["clip"])
    assert recommended_safety(vit) == 1.25 and recommended_safety(clip) == 2.5
    assert recommended_safety(clip, exact=True) == 1.0
    assert recommended_safety(Recipe(sampler="pil", interpolation="lanczos")) == DEFAULT_SAFETY


# -- shrink-on-load in the runtime: ImageEmbedder, iter_embed, embed-dir ------------------------------------


@pytest.fixture(scope="module")
def pil_model(tmp_path_factory):
    """The shipped fp32 model with a pil recipe (Pillow bilinear stretch, as a ViT processor) in its metadata."""
    import dataclasses

    from edge_embedder.metadata import RECIPE_KEY, populate_tflite_metadata, read_tflite_metadata
    from edge_embedder.vision import Recipe

    from .conftest import FP32_MODEL

    raw = FP32_MODEL.read_bytes()
    md = read_tflite_metadata(raw)
    recipe = Recipe(sampler="pil", resize="stretch", size=(224, 224), interpolation="bilinear")
    custom = [(k, v) for k, v in md.custom_metadata if k != RECIPE_KEY] + [(RECIPE_KEY, recipe.to_bytes())]
    path = tmp_path_factory.mktemp("pil_model") / "pil.tflite"
    path.write_bytes(populate_tflite_metadata(raw, dataclasses.replace(md, custom_metadata=custom)))
    return path


@pytest.fixture(scope="module")
def big_jpegs(tmp_path_factory):
    from .conftest import DATA

    folder = tmp_path_factory.mktemp("big_jpegs")
    for i, name in enumerate(("chelsea", "coffee", "astronaut")):
        img = PILImage.open(DATA / f"{name}.png").convert("RGB").resize((3000, 2250), PILImage.Resampling.BICUBIC)
        exif = img.getexif()
        exif[0x0112] = (1, 6, 3)[i]
        img.save(folder / f"{name}.jpg", quality=92, exif=exif)
    return folder


def _embedder(model, **kw):
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    return ImageEmbedder.create_from_options(ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=model, num_threads=1), l2_normalize=True, **kw))


def test_shrink_on_load_is_opt_in_and_stays_within_the_floor(pil_model, big_jpegs):
    from edge_embedder import Image, ImageProcessingOptions, RectF

    files = sorted(big_jpegs.glob("*.jpg"))
    ipo = ImageProcessingOptions(RectF(0.1, 0.2, 0.8, 0.9), 90)
    with _embedder(pil_model) as full, _embedder(pil_model, shrink_on_load=True) as shrunk:
        assert full.decode_tag() == "full" and shrunk.decode_tag().startswith("jpeg-dct-shrink/v1")
        for f in files:
            for opts in (None, ipo):
                a = full.embed(str(f), opts).embeddings[0].embedding
                # default off: a path gives exactly the pixels of a full decode
                np.testing.assert_array_equal(a, full.embed(Image.create_from_file(f), opts).embeddings[0].embedding)
                b = shrunk.embed(str(f), opts).embeddings[0].embedding
                assert float(a @ b) >= 0.99 and not np.array_equal(a, b), f.name
                # arrays and Image objects are never shrunk: there is no file to decode reduced
                arr = Image.create_from_file(f).numpy_view()
                np.testing.assert_array_equal(shrunk.embed(arr, opts).embeddings[0].embedding, a)
        # iter_embed shrinks image files by default; embed_batch follows the embedder's option
        items = list(full.iter_embed([str(f) for f in files]))
        for f, item in zip(files, items):
            np.testing.assert_allclose(item.result.embeddings[0].embedding, shrunk.embed(str(f)).embeddings[0].embedding,
                                       atol=1e-6)
        plain = full.embed_batch([str(f) for f in files])
        for f, r in zip(files, plain):
            np.testing.assert_array_equal(r.embeddings[0].embedding, full.embed(str(f)).embeddings[0].embedding)


def test_the_mediapipe_recipe_always_decodes_fully(big_jpegs):
    from .conftest import FP32_MODEL

    f = str(sorted(big_jpegs.glob("*.jpg"))[0])
    with _embedder(FP32_MODEL) as full, _embedder(FP32_MODEL, shrink_on_load=True) as asked:
        assert asked.decode_tag() == "full" and asked.decode_tag(shrink_on_load=True) == "full"
        np.testing.assert_array_equal(asked.embed(f).embeddings[0].embedding, full.embed(f).embeddings[0].embedding)


def test_embed_dir_records_the_decode_and_refuses_to_mix(pil_model, big_jpegs, tmp_path):
    from edge_embedder.errors import OptionsError
    from edge_embedder.folder import embed_dir
    from edge_embedder.search import EmbeddingIndex

    out = tmp_path / "out.npz"
    with _embedder(pil_model) as e:
        report = embed_dir(e, big_jpegs, out, model_path=pil_model, progress=False)
        assert report.embedded == 3
        index = EmbeddingIndex.load(out)
        assert index._meta.decode.startswith("jpeg-dct-shrink/v1")
        with pytest.raises(OptionsError, match="must not mix two decodes"):
            embed_dir(e, big_jpegs, out, model_path=pil_model, resume=True, shrink_on_load=False, progress=False)
        embed_dir(e, big_jpegs, tmp_path / "full.npz", model_path=pil_model, shrink_on_load=False, progress=False)
        assert EmbeddingIndex.load(tmp_path / "full.npz")._meta.decode == "full"


def test_default_thread_split():
    from edge_embedder.folder import default_thread_split

    assert default_thread_split(1) == (1, 1)
    assert default_thread_split(2) == (1, 2)  # measured best on 2 cores
    assert default_thread_split(8) == (4, 8)
    assert default_thread_split(16) == (4, 16)
