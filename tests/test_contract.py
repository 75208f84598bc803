"""Every contract rule has a fixture that breaks it and a typed error that names it."""

from __future__ import annotations

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    ImageEmbedder,
    ImageEmbedderOptions,
    InputContractError,
    ModelLoadError,
    OutputContractError,
)

from .conftest import CONTRACT, IDENTITY

# Stored-value tolerance for float pipelines, and the dequantization error of the
# uint8-output fixture (half its quantization step, scale ~0.0016).
_EPSILON = 1e-5
_DEQUANT_TOL = 1e-3

VIOLATIONS = [
    ("no_metadata_float", InputContractError, "got a model without metadata"),
    ("no_normalization_float", InputContractError, "expected NormalizationOptions in the input tensor metadata, got none"),
    ("batch2", InputContractError, "expected batch size 1, got 2"),
    ("four_channels", InputContractError, "got 4 channels"),
    ("nchw", InputContractError, "looks like NCHW"),
    ("int16_input", InputContractError, "expected dtype uint8 or float32, got int16"),
    ("int8_input", InputContractError, "expected dtype uint8 or float32, got int8"),
    ("two_inputs", InputContractError, "expected exactly 1 input tensor, got 2"),
    ("feature_map_output", OutputContractError, r"expected shape \[1, N\] or \[1, 1, 1, N\], got \[1, 7, 7, 16\]"),
    ("output_int32", OutputContractError, "expected dtype uint8 or float32, got int32"),
]


@pytest.mark.parametrize("name,error,message", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_violation_raises_typed_error(name, error, message):
    with pytest.raises(error, match=message):
        ImageEmbedder.create_from_model_path(CONTRACT / f"{name}.tflite")


@pytest.mark.parametrize(
    "name,heads",
    [
        ("valid_float", [("embedding", 16)]),
        ("valid_float_per_channel", [("embedding", 16)]),
        ("valid_uint8", [("embedding", 16)]),
        ("valid_uint8_output", [("embedding", 16)]),
        ("valid_non_square", [("embedding", 16)]),
        ("valid_two_heads", [("global", 16), ("local", 8)]),
    ],
)
def test_valid_models_embed_every_head(name, heads):
    with ImageEmbedder.create_from_model_path(CONTRACT / f"{name}.tflite") as e:
        res = e.embed(np.full((20, 30, 3), 128, np.uint8))
    assert [(x.head_name, x.embedding.size) for x in res.embeddings] == heads
    assert [x.head_index for x in res.embeddings] == list(range(len(heads)))
    assert all(x.embedding.dtype == np.float32 for x in res.embeddings)
    assert res.timestamp_ms is None


def test_uint8_output_is_dequantized():
    # Random pixels: the fixture's output range was calibrated on such inputs.
    img = _grid(32, 32)
    with ImageEmbedder.create_from_model_path(CONTRACT / "valid_uint8_output.tflite") as q, \
            ImageEmbedder.create_from_model_path(CONTRACT / "valid_float.tflite") as f:
        a = q.embed(img).embeddings[0].embedding
        b = f.embed(img).embeddings[0].embedding
    np.testing.assert_allclose(a, b, atol=_DEQUANT_TOL)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"garbage" * 50, "expected a TFLite flatbuffer"),
        (b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40, "not a loadable TFLite model"),
    ],
    ids=["empty", "garbage", "tflite-header-only"],
)
def test_broken_model_buffers(data, message, tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=message):
        ImageEmbedder.create_from_model_path(path)


def test_truncated_model(tmp_path):
    data = (CONTRACT / "valid_float.tflite").read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 64):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError):
            ImageEmbedder.create_from_model_path(path)


def test_missing_model_and_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        ImageEmbedder.create_from_model_path(tmp_path / "nope.tflite")
    with pytest.raises(ModelLoadError, match="is a directory"):
        ImageEmbedder.create_from_model_path(tmp_path)


def test_model_from_buffer_equals_model_from_path(chelsea):
    path = CONTRACT / "valid_float.tflite"
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_buffer=path.read_bytes(), num_threads=1))
    with ImageEmbedder.create_from_options(opts) as a, ImageEmbedder.create_from_model_path(path) as b:
        np.testing.assert_array_equal(a.embed(chelsea).embeddings[0].embedding, b.embed(chelsea).embeddings[0].embedding)


def _grid(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_uint8_model_gets_raw_pixels():
    img = _grid(24, 40)  # the identity fixtures' input size: resampling is the identity
    with ImageEmbedder.create_from_model_path(IDENTITY / "identity_uint8.tflite") as e:
        assert e.model_spec.normalization is None
        out = e.embed(img).embeddings[0].embedding
    np.testing.assert_array_equal(out, img.reshape(-1).astype(np.float32))


@pytest.mark.parametrize("name,mean,std", [("identity_float", 0.0, 1.0), ("identity_float_norm", 127.5, 127.5)])
def test_float_model_gets_normalized_pixels(name, mean, std):
    img = _grid(24, 40)
    with ImageEmbedder.create_from_model_path(IDENTITY / f"{name}.tflite") as e:
        out = e.embed(img).embeddings[0].embedding
    np.testing.assert_allclose(out, (img.reshape(-1).astype(np.float64) - mean) / std, atol=_EPSILON)


def test_per_channel_normalization_is_applied():
    from edge_embedder.metadata import NormalizationOptions, populate_tflite_metadata, read_tflite_metadata

    raw = (IDENTITY / "identity_float.tflite").read_bytes()
    md = read_tflite_metadata(raw)
    mean, std = (10.0, 100.0, 200.0), (2.0, 4.0, 8.0)
    md = type(md)(**{**md.__dict__, "inputs": (type(md.inputs[0])(**{**md.inputs[0].__dict__,
                                                                  "normalization": NormalizationOptions(mean, std)}),)})
    img = _grid(24, 40)
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_buffer=populate_tflite_metadata(raw, md)))
    with ImageEmbedder.create_from_options(opts) as e:
        out = e.embed(img).embeddings[0].embedding.reshape(24, 40, 3)
    expected = (img.astype(np.float64) - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, expected, atol=_EPSILON)


def test_no_interpreter_gives_one_clear_import_error(monkeypatch):
    import importlib

    from edge_embedder import BackendUnavailableError
    from edge_embedder.core.backends import litert

    real = importlib.import_module

    def fake(name, *a, **k):
        if name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(litert.importlib, "import_module", fake)
    with pytest.raises(BackendUnavailableError, match=r"pip install ai-edge-litert.*numpy<2"):
        ImageEmbedder.create_from_model_path(CONTRACT / "valid_float.tflite")


def test_dynamic_range_models_are_refused_under_tflite_runtime(monkeypatch):
    """tflite-runtime 2.14 returns silent garbage for dynamic-range int8 files: refuse them there."""
    pytest.importorskip("ai_edge_quantizer", reason="building the dynamic-range fixture needs the convert extra")
    from edge_embedder.convert.litert_export import quantize_dynamic_int8

    from edge_embedder import BackendUnavailableError
    from edge_embedder.core.backends import litert

    from .conftest import INT8_MODEL

    dyn = quantize_dynamic_int8((CONTRACT / "valid_float.tflite").read_bytes())
    assert litert.dynamic_range_ops(dyn) == ["CONV_2D"]
    assert litert.dynamic_range_ops(INT8_MODEL.read_bytes()) == []  # full-integer: fine everywhere
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_buffer=dyn))
    with ImageEmbedder.create_from_options(opts):
        pass  # ai-edge-litert runs it correctly
    interp_cls, _ = litert.find_interpreter_class()
    monkeypatch.setattr(litert, "find_interpreter_class", lambda: (interp_cls, "tflite_runtime.interpreter"))
    with pytest.raises(BackendUnavailableError, match="dynamic-range int8 ops"):
        ImageEmbedder.create_from_options(opts)
    with ImageEmbedder.create_from_model_path(CONTRACT / "valid_float.tflite"):
        pass  # float models are fine under tflite_runtime
