"""ONNX Runtime backend: same API and contract, parity with TFLite, providers, batching, the backend protocol."""

from __future__ import annotations

import numpy as np
import pytest

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions, ModelLoadError, OptionsError
from edge_embedder.core.backends import Backend, TensorSpec, sniff_format
from edge_embedder.core.contract import check_image_embedder
from edge_embedder.metadata import (
    ModelMetadata,
    NormalizationOptions,
    TensorMetadata,
    read_tflite_metadata,
    to_onnx_props,
)

from .conftest import FP32_MODEL, photo

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
torch = pytest.importorskip("torch", reason="building the ONNX fixture needs torch (convert extra)")

# Same network, two runtimes: only float accumulation order differs.
_BACKEND_PARITY = 0.9999
_BATCH_TOL = 1e-4

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket"]


def _export(module, sample, path, props):
    import onnx

    torch.onnx.export(module, (sample,), str(path), input_names=["pixels"], output_names=["features"],
                      dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}}, dynamo=False)
    model = onnx.load(str(path))
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    """EfficientNet-Lite0 (the shipped weights) exported to ONNX, NHWC and NCHW."""
    from converters import efficientnet_lite0 as enl

    tmp = tmp_path_factory.mktemp("onnx")
    nhwc = enl.build_embedder()

    class Nchw(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.permute(0, 2, 3, 1))

    md = read_tflite_metadata(FP32_MODEL.read_bytes())  # same contract as the shipped TFLite file
    props = to_onnx_props(md)
    paths = {"nhwc": tmp / "enl_nhwc.onnx", "nchw": tmp / "enl_nchw.onnx"}
    with torch.no_grad():
        _export(nhwc, torch.zeros(1, 224, 224, 3), paths["nhwc"], props)
        _export(Nchw(nhwc).eval(), torch.zeros(1, 3, 224, 224), paths["nchw"], props)
    return paths


def test_format_is_sniffed_from_content(onnx_models, tmp_path):
    renamed = tmp_path / "model.tflite"  # wrong extension on purpose
    renamed.write_bytes(onnx_models["nchw"].read_bytes())
    assert sniff_format(renamed.read_bytes()) == "onnx"
    with ImageEmbedder.create_from_model_path(renamed) as e:
        assert e.backend.name == "onnxruntime"


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_onnx_matches_tflite_through_the_embedder(onnx_models, layout):
    with ImageEmbedder.create_from_model_path(onnx_models[layout]) as o, \
            ImageEmbedder.create_from_model_path(FP32_MODEL) as t:
        assert o.model_spec.layout == layout.upper()
        assert o.model_spec.normalization == t.model_spec.normalization
        assert o.model_spec.outputs[0].name == "embedding"
        for name in PHOTOS:
            a = o.embed(photo(name)).embeddings[0]
            b = t.embed(photo(name)).embeddings[0]
            assert a.head_name == "embedding"
            assert ImageEmbedder.cosine_similarity(a, b) >= _BACKEND_PARITY, name


def test_dynamic_batch_is_used_and_equals_one_by_one(onnx_models):
    with ImageEmbedder.create_from_model_path(onnx_models["nchw"]) as e:
        assert e.backend.dynamic_batch
        imgs = [photo(n) for n in PHOTOS] * 2
        batched = e.embed_batch(imgs, batch_size=3)
        for img, res in zip(imgs, batched):
            np.testing.assert_allclose(res.embeddings[0].embedding, e.embed(img).embeddings[0].embedding, atol=_BATCH_TOL)


def test_providers_are_checked(onnx_models):
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=onnx_models["nhwc"],
                                                         providers=["NoSuchExecutionProvider"]))
    with pytest.raises(OptionsError, match="CPUExecutionProvider"):
        ImageEmbedder.create_from_options(opts)
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=onnx_models["nhwc"],
                                                         providers=["CPUExecutionProvider"], num_threads=1))
    with ImageEmbedder.create_from_options(opts) as e:
        assert e.backend.providers == ("CPUExecutionProvider",)
    with pytest.raises(OptionsError, match="only for ONNX"):
        ImageEmbedder.create_from_options(ImageEmbedderOptions(
            base_options=BaseOptions(model_asset_path=FP32_MODEL, providers=["CPUExecutionProvider"])))


def test_broken_onnx_file(onnx_models, tmp_path):
    data = onnx_models["nhwc"].read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        ImageEmbedder.create_from_model_path(p)


def test_onnx_without_metadata_float_input_breaks_the_contract(tmp_path):
    from edge_embedder import InputContractError

    p = tmp_path / "plain.onnx"
    _export(torch.nn.Conv2d(3, 4, 3).eval(), torch.zeros(1, 3, 16, 16), p, {})
    with pytest.raises(InputContractError, match="without metadata.*ONNX: write edge_embedder.metadata.to_onnx_props"):
        ImageEmbedder.create_from_model_path(p)


class FakeBackend:
    """A backend with no runtime at all: the embedding is the per-channel mean of the input tensor."""

    name = "fake"
    runtime = "fake 0"
    num_threads = 1
    input_layout = "NHWC"
    dynamic_batch = False
    model_bytes = b"unused"

    def __init__(self):
        self.calls = 0

    input_specs = (TensorSpec(0, "image", np.dtype(np.float32), (1, 8, 8, 3)),)
    output_specs = (TensorSpec(0, "mean", np.dtype(np.float32), (1, 3)),)
    metadata = ModelMetadata(
        inputs=[TensorMetadata(name="image", normalization=NormalizationOptions((0.0,), (255.0,)))],
        outputs=[TensorMetadata(name="rgb_mean")],
    )

    def run(self, write_input):
        buf = np.zeros(self.input_specs[0].shape, np.float32)
        write_input(buf)
        self.calls += 1
        return [buf.mean(axis=(1, 2))]

    def run_batch(self, batch):
        raise AssertionError("not a dynamic-batch backend")

    @property
    def input_shapes(self):
        return (self.input_specs[0].shape,)

    def run_input(self, x):
        raise AssertionError("image tasks write the input buffer (run)")

    def invoke_only(self):
        pass

    def close(self):
        pass


def test_embedder_runs_any_backend_behind_the_protocol():
    backend = FakeBackend()
    assert isinstance(backend, Backend)
    spec = check_image_embedder(backend)
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_buffer=b"unused"))
    e = ImageEmbedder(opts, backend, spec)
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 255
    res = e.embed(img).embeddings[0]
    assert res.head_name == "rgb_mean"
    np.testing.assert_allclose(res.embedding, [1.0, 0.0, 0.0], atol=1e-6)
    assert backend.calls == 1
