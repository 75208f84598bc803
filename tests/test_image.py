"""Image decoding: every input form, EXIF orientation, colour modes, and typed errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from edge_embedder import Image, ImageDecodeError, UnsupportedImageError
from edge_embedder.vision.image import to_image

from .conftest import DATA


def _rgb(h=30, w=40, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_path_pil_and_array_decode_to_the_same_pixels(tmp_path):
    arr = _rgb()
    p = tmp_path / "x.png"
    PILImage.fromarray(arr).save(p)
    for src in (p, str(p), PILImage.open(p), arr, Image.create_from_array(arr)):
        np.testing.assert_array_equal(to_image(src).numpy_view(), arr)


def test_pixels_are_read_only_and_the_callers_array_is_untouched():
    arr = _rgb()
    view = Image.create_from_array(arr).numpy_view()
    assert not view.flags.writeable
    assert arr.flags.writeable


def test_strided_views_are_honoured():
    # MediaPipe's mp.Image ignores strides and silently reads the wrong pixels.
    big = _rgb(60, 80)
    view = big[::2, 1::2]
    np.testing.assert_array_equal(Image.create_from_array(view).numpy_view(), np.ascontiguousarray(view))
    flipped = big[:, ::-1]
    np.testing.assert_array_equal(Image.create_from_array(flipped).numpy_view(), flipped)


@pytest.mark.parametrize("orientation,expected", [(3, lambda a: a[::-1, ::-1]), (6, lambda a: np.rot90(a, -1)),
                                                  (8, lambda a: np.rot90(a, 1)), (2, lambda a: a[:, ::-1])])
def test_exif_orientation_is_applied(tmp_path, orientation, expected):
    arr = _rgb(20, 30)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    p = tmp_path / "o.png"
    im.save(p, exif=exif)
    np.testing.assert_array_equal(Image.create_from_file(p).numpy_view(), expected(arr))


def test_gray_rgba_palette_and_la_become_rgb(tmp_path):
    arr = _rgb()
    gray = arr[..., 0]
    np.testing.assert_array_equal(Image.create_from_array(gray).numpy_view(), np.repeat(gray[..., None], 3, 2))
    np.testing.assert_array_equal(Image.create_from_array(gray[..., None]).numpy_view(), np.repeat(gray[..., None], 3, 2))
    rgba = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(Image.create_from_array(rgba).numpy_view(), arr)
    pal = PILImage.fromarray(arr).convert("P")
    np.testing.assert_array_equal(Image.create_from_pil(pal).numpy_view(), np.asarray(pal.convert("RGB")))
    la = PILImage.fromarray(gray).convert("LA")
    np.testing.assert_array_equal(Image.create_from_pil(la).numpy_view(), np.repeat(gray[..., None], 3, 2))


def test_16_bit_file_is_scaled_but_16_bit_array_is_refused(tmp_path):
    arr16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    p = tmp_path / "g16.png"
    PILImage.fromarray(arr16).save(p)
    got = Image.create_from_file(p).numpy_view()
    np.testing.assert_array_equal(got[..., 0], ((arr16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))
    with pytest.raises(UnsupportedImageError, match="uint16"):
        Image.create_from_array(arr16)


@pytest.mark.parametrize("arr", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float64)])
def test_float_arrays_are_refused_with_a_hint(arr):
    with pytest.raises(UnsupportedImageError, match=r"ambiguous .*\* 255"):
        Image.create_from_array(arr)


@pytest.mark.parametrize("shape", [(4,), (2, 4, 4, 3), (4, 4, 2), (4, 4, 5), (0, 4, 3)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(UnsupportedImageError):
        Image.create_from_array(np.zeros(shape, np.uint8))


def test_unsupported_input_type():
    with pytest.raises(UnsupportedImageError, match="got list"):
        to_image([[1, 2, 3]])


def test_corrupt_truncated_missing_and_non_image_files(tmp_path):
    good = io.BytesIO()
    PILImage.fromarray(_rgb(64, 64)).save(good, format="JPEG")
    cases = {
        "truncated.jpg": good.getvalue()[: len(good.getvalue()) // 2],
        "garbage.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        "text.jpg": b"hello, I am not an image",
        "empty.jpg": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageDecodeError, match=name):
            Image.create_from_file(tmp_path / name)
    with pytest.raises(ImageDecodeError, match="no such file"):
        Image.create_from_file(tmp_path / "missing.jpg")
    with pytest.raises(ImageDecodeError, match="directory"):
        Image.create_from_file(tmp_path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    PILImage.new("L", (200, 200)).save(p)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        Image.create_from_file(p)


def test_bundled_photos_are_scikit_image_photos():
    skdata = pytest.importorskip("skimage.data")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        np.testing.assert_array_equal(Image.create_from_file(DATA / f"{name}.png").numpy_view(), getattr(skdata, name)())


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", [(37, 23), (2900, 1700)])  # the second is decoded strip by strip
def test_decode_equals_pillow_exif_transpose(tmp_path, orientation, size):
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    p = tmp_path / "o.png"
    im.save(p, exif=exif)
    with PILImage.open(p) as ref_im:
        want = np.asarray(ImageOps.exif_transpose(ref_im).convert("RGB"))
    got = Image.create_from_file(p).numpy_view()
    np.testing.assert_array_equal(got, want)
    assert got.flags["C_CONTIGUOUS"]


def test_pixel_budget_refuses_before_decoding(tmp_path):
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions, OptionsError

    from .conftest import FP32_MODEL

    p = tmp_path / "big.png"
    PILImage.new("RGB", (4000, 3000)).save(p)
    with pytest.raises(ImageDecodeError, match=r"4000x3000 is 12\.0 megapixels, over the pixel budget of 10.0 megapixels") as info:
        Image.create_from_file(p, max_pixels=10_000_000)
    assert info.value.reason.startswith("4000x3000") and info.value.source == str(p)
    assert Image.create_from_file(p, max_pixels=None).width == 4000
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=FP32_MODEL), max_image_pixels=10_000_000)
    with ImageEmbedder.create_from_options(opts) as e:
        with pytest.raises(ImageDecodeError, match="pixel budget"):
            e.embed(str(p))
        items = list(e.iter_embed([str(p), str(DATA / "chelsea.png")]))
        assert items[0].error is not None and items[1].result is not None
    with pytest.raises(OptionsError, match="max_image_pixels"):
        ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=FP32_MODEL), max_image_pixels=0)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_over_budget_files_are_refused_without_decoding_a_pixel(tmp_path, monkeypatch, fmt):
    """The budget is checked from the header: nothing decodes the pixels first (Pillow's getexif() on a PNG
    does: its EXIF may come after the image data)."""
    from PIL import ImageFile

    p = tmp_path / f"big.{fmt}"
    PILImage.new("RGB", (3000, 2000), (90, 120, 150)).save(p)
    loads = []
    original = ImageFile.ImageFile.load

    def counting_load(self):
        loads.append(self.format)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    with pytest.raises(ImageDecodeError, match=r"3000x2000 is 6\.0 megapixels, over the pixel budget"):
        Image.create_from_file(p, max_pixels=1_000_000)
    assert loads == []
    assert Image.create_from_file(p, max_pixels=None).width == 3000 and loads  # the counter sees a real decode


def test_no_decompression_bomb_warning_reaches_stderr(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "bomb.png"
    PILImage.new("L", (10000, 9500)).save(p)  # 95 MP: above Pillow's warning threshold (89.5 MP)
    code = ("import sys; from edge_embedder import Image\n"
            "try:\n    Image.create_from_file(sys.argv[1])\nexcept Exception as e: print(type(e).__name__, e.reason)\n"
            "Image.create_from_file(sys.argv[1], max_pixels=None)\nprint('decoded')\n")
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "ImageDecodeError 10000x9500 is 95.0 megapixels" in r.stdout and "decoded" in r.stdout


def test_image_file_bytes_decode_as_the_file(tmp_path):
    from edge_embedder.vision.image import to_image

    p = tmp_path / "c.jpg"
    PILImage.open(DATA / "chelsea.png").convert("RGB").save(p, quality=90)
    data = p.read_bytes()
    np.testing.assert_array_equal(Image.create_from_bytes(data, source="upload").numpy_view(),
                                  Image.create_from_file(p).numpy_view())
    np.testing.assert_array_equal(to_image(data).numpy_view(), Image.create_from_file(p).numpy_view())
    with pytest.raises(ImageDecodeError, match="upload: empty file"):
        Image.create_from_bytes(b"", source="upload")
    with pytest.raises(ImageDecodeError, match="<bytes>: not a recognised image format") as info:
        Image.create_from_bytes(b"not an image")
    assert info.value.reason == "not a recognised image format"
