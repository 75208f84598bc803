"""DINOv2 and SigLIP: conversions in every format and quantization, parity, zero-shot, search (issue 20).

No hub access: tiny random checkpoints are built here (DINOv2 and DINOv2 with
registers from configs whose ``image_size`` is not the processor's crop, so
the position embeddings are interpolated; SigLIP by
``python -m edge_embedder.convert.tiny_siglip``, which trains a small
SentencePiece model offline). The fp32 ``.tflite`` of each family is
converted through the command line (``edge-embedder convert``), the other
formats and quantizations through ``convert()`` from one loaded checkpoint.

The references here are written independently of the converters': the
image processor and ``Dinov2Model(...).pooler_output`` /
``SiglipModel.get_image_features`` / ``get_text_features`` on
``SiglipTokenizer(text, padding="max_length")`` ids, and transformers'
``pipeline("zero-shot-image-classification")``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("litert_torch")
pytest.importorskip("tokenizers")
pytest.importorskip("sentencepiece")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

from edge_embedder import (  # noqa: E402
    BaseOptions,
    ImageEmbedder,
    ImageEmbedderOptions,
    TextEmbedder,
    ZeroShotImageClassifier,
    inspect_model,
)
from edge_embedder.cli import main  # noqa: E402

from .conftest import DATA  # noqa: E402

pytestmark = pytest.mark.slow

QUANTS = ("none", "fp16", "dynamic-int8", "int8")
FORMATS = ("tflite", "onnx")
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
FLOORS = {"none": 0.9995, "fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.9}  # the image towers' floors
TEXT_FLOORS = {"none": 0.9999, "fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.9}
TOWERS = {("dinov2", "image"), ("siglip", "image"), ("siglip", "text")}
TEXTS = ("a photo of a cat", "A PHOTO OF 2 DOGS!", "une photo d'un chat", "猫の写真", "", "a cat </s>",
         "a photo of a small red car parked on the street next to an old stone house " * 3)
LABELS = ["cat", "dog", "car", "cup of coffee", "rocket", "person in a space suit"]
_SCORE_TOLERANCE = 1e-3  # the tolerance vs the pipeline
_FP32_ATOL = 1e-4


def _path(name: str) -> str:
    return str(DATA / f"{name}.png")


def _photo(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(_path(name)).convert("RGB"))


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _make_dinov2(path: Path, registers: bool = False) -> Path:
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(3)
    # Trained at 40x40 (a 5x5 patch grid), run at the processor's 32x32 crop (4x4): interpolated positions.
    # DINOv2's own initializer range (0.02): photos still differ (cosine 0.78-0.98 between them).
    kw = dict(image_size=40, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2)
    model = (Dinov2WithRegistersModel(Dinov2WithRegistersConfig(num_register_tokens=2, **kw)) if registers
             else Dinov2Model(Dinov2Config(**kw)))
    model.eval().save_pretrained(path)
    BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    from edge_embedder.convert import tiny_siglip

    root = tmp_path_factory.mktemp("families")
    out = {"dinov2": _make_dinov2(root / "dinov2"), "siglip": root / "siglip"}
    assert tiny_siglip.main([str(out["siglip"])]) == 0
    assert (out["siglip"] / "processor_config.json").is_file() and not (out["siglip"] / "tokenizer.json").exists()
    return out


@pytest.fixture(scope="module")
def converted(ckpts, tmp_path_factory):
    """``get(arch, tower, fmt, quant) -> path``: fp32 .tflite through the CLI, the rest through convert()."""
    from edge_embedder.convert import convert, get_config

    out = tmp_path_factory.mktemp("families_converted")
    cache: dict[tuple[str, str, str, str], Path] = {}
    loaded: dict = {}
    refs: dict = {}

    def get(arch: str, tower: str, fmt: str = "tflite", quant: str = "none") -> Path:
        key = (arch, tower, fmt, quant)
        if key in cache:
            return cache[key]
        path = out / f"{arch}_{tower}_{quant}.{fmt}"
        if fmt == "tflite" and quant == "none":
            assert main(["convert", "--arch", arch, "--tower", tower, "--model", str(ckpts[arch]), "-o", str(path)]) == 0
        else:
            task = {"image": "image-embedding", "text": "text-embedding"}[tower]
            if (arch, tower) not in loaded:
                loaded[(arch, tower)] = get_config(arch, task).load(str(ckpts[arch]))
                refs[(arch, tower)] = {}
            convert(arch, None, output=path, task=task, fmt=fmt, quantize=quant, loaded=loaded[(arch, tower)],
                    reference_cache=refs[(arch, tower)], progress=lambda m: None)
        cache[key] = path
        return path

    return get


def _report(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".parity.json").read_text())


# --------------------------------------------------------------------------- #
# Every format and quantization
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch,tower", sorted(TOWERS))
def test_every_format_and_quantization(converted, arch, tower, fmt, quant):
    from edge_embedder.convert.architectures import get_config

    path = converted(arch, tower, fmt, quant)
    contract = inspect_model(str(path))["contract"]
    assert contract["ok"], contract
    report = _report(path)
    assert report["passed"] and report["format"] == fmt and report["quantization"] == quant
    cfg = get_config(arch, "text-embedding" if tower == "text" else "image-embedding")
    floors = TEXT_FLOORS if tower == "text" else FLOORS
    assert report["floor"] == cfg.floor(quant) == floors[quant]
    assert all(r["cosine"] >= floors[quant] for r in report["items"])
    if tower == "image":
        assert contract["task"] == "image_embedder" and len(report["images"]) >= 4
        assert contract["input"]["dtype"] == ("uint8" if quant == "int8" else "float32")
        assert contract["recipe"]["sampler"] == "pil"
    else:  # one length, every text padded to it; the packed tokenizer gives SiglipTokenizer's ids
        assert contract["task"] == "text_embedder"
        assert contract["input"]["sequence_length"] == 64 and contract["input"]["lengths"] == [64]
        assert contract["input"]["batch"] == ("any (dynamic axis)" if fmt == "onnx" else 1)
        assert all(r["ids_equal"] for r in report["texts"]) and report["batch"]["passed"]
        assert {"capitals", "eos string", "unicode", "long", "empty"} <= {r["name"] for r in report["texts"]}
    if quant == "none":
        assert report["min_cosine"] >= 0.99999


def test_registry():
    from edge_embedder.convert.architectures import get_config, known_architectures

    assert {"dinov2", "siglip"} <= set(known_architectures())
    assert "siglip" in known_architectures("text-embedding")
    assert get_config("dinov2").head_name == "pooler_output"
    assert get_config("siglip").head_name == "image_embeds"
    assert get_config("siglip", "text-embedding").head_name == "text_embeds"
    for cfg in (get_config("dinov2"), get_config("siglip"), get_config("siglip", "text-embedding")):
        assert cfg.default_quantization == "dynamic-int8" and "families.md" in cfg.quantization_rationale


# --------------------------------------------------------------------------- #
# DINOv2
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", FORMATS)
def test_dinov2_equals_pooler_output(ckpts, converted, fmt):
    """ImageEmbedder on the file = the image processor + Dinov2Model(...).pooler_output (the layer-normed CLS)."""
    import torch
    from transformers import AutoImageProcessor, Dinov2Model

    proc = AutoImageProcessor.from_pretrained(ckpts["dinov2"], backend="pil")
    model = Dinov2Model.from_pretrained(ckpts["dinov2"]).eval()
    assert model.config.image_size != proc.crop_size["height"], "the test needs interpolated position embeddings"
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(converted("dinov2", "image", fmt))))
    refs = []
    with ImageEmbedder.create_from_options(opts) as emb, torch.no_grad():
        for name in PHOTOS:
            out = model(**proc(images=_photo(name), return_tensors="pt"))
            want = out.pooler_output[0].numpy()
            # the CLS token of the final layer-normed sequence (layernorm weight 1, bias 0 at init: mean 0, std 1)
            np.testing.assert_array_equal(want, out.last_hidden_state[0, 0].numpy())
            assert abs(want.mean()) < 1e-5 and abs(want.std() - 1) < 1e-3
            got = emb.embed(_photo(name)).embeddings[0].embedding
            assert _cos(got, want) >= FLOORS["none"]
            np.testing.assert_allclose(got, want, atol=_FP32_ATOL)
            refs.append(want)
    assert _cos(refs[0], refs[1]) < 0.999, "tiny model too insensitive to its input for a meaningful test"


def test_dinov2_positions_are_constants_in_the_file(converted):
    """The interpolation runs once at conversion: no resize or gather of position embeddings per call."""
    from ai_edge_litert.interpreter import Interpreter

    ops = {o["op_name"] for o in Interpreter(model_path=str(converted("dinov2", "image")))._get_ops_details()}
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops
    assert not ops & {"GATHER_ND", "GATHER", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"}, ops


@pytest.mark.parametrize("fmt", FORMATS)
def test_dinov2_with_registers(tmp_path, fmt):
    import torch
    from transformers import AutoImageProcessor, Dinov2WithRegistersModel

    ckpt = _make_dinov2(tmp_path / "registers", registers=True)
    out = tmp_path / f"registers.{fmt}"
    assert main(["convert", "--arch", "dinov2", "--model", str(ckpt), "-o", str(out)]) == 0
    assert _report(out)["min_cosine"] >= FLOORS["none"]
    proc = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    model = Dinov2WithRegistersModel.from_pretrained(ckpt).eval()
    with ImageEmbedder.create_from_model_path(out) as emb, torch.no_grad():
        want = model(**proc(images=_photo("coffee"), return_tensors="pt")).pooler_output[0].numpy()
        np.testing.assert_allclose(emb.embed(_photo("coffee")).embeddings[0].embedding, want, atol=_FP32_ATOL)


def test_dinov2_shrinks_on_load(converted, tmp_path):
    """A pil recipe: JPEG files decode at a reduced DCT scale in folders, within the shrink accuracy floor."""
    from PIL import Image

    from edge_embedder.vision.shrink import recommended_safety

    path = converted("dinov2", "image")
    big = tmp_path / "big.jpg"
    Image.fromarray(_photo("chelsea")).resize((1804, 1200), Image.Resampling.BICUBIC).save(big, quality=92)
    vecs = {}
    for shrink in (False, True):
        opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path)), shrink_on_load=shrink)
        with ImageEmbedder.create_from_options(opts) as emb:
            assert recommended_safety(emb.model_spec.recipe, exact=True) is not None
            assert (emb.decode_tag() == "full") != shrink
            vecs[shrink] = emb.embed(big).embeddings[0].embedding
    assert _cos(vecs[False], vecs[True]) >= 0.99


# --------------------------------------------------------------------------- #
# SigLIP: both towers
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", FORMATS)
def test_siglip_towers_equal_get_features(ckpts, converted, fmt):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

    model = SiglipModel.from_pretrained(ckpts["siglip"]).eval()
    proc = AutoImageProcessor.from_pretrained(ckpts["siglip"], backend="pil")
    tok = AutoTokenizer.from_pretrained(ckpts["siglip"])
    assert tok.model_input_names == ["input_ids"]  # as the released SigLIP tokenizers
    with ImageEmbedder.create_from_model_path(converted("siglip", "image", fmt)) as img, \
            TextEmbedder.create_from_model_path(converted("siglip", "text", fmt)) as text, torch.no_grad():
        for name in PHOTOS:
            want = model.get_image_features(**proc(images=_photo(name), return_tensors="pt")).pooler_output[0].numpy()
            np.testing.assert_allclose(img.embed(_photo(name)).embeddings[0].embedding, want, atol=_FP32_ATOL)
        rows = [r.embeddings[0].embedding for r in text.embed_batch(list(TEXTS))]
        for t, got in zip(TEXTS, rows):
            inputs = tok([t], padding="max_length", max_length=64, truncation=True, return_tensors="pt")
            want = model.get_text_features(**inputs).pooler_output[0].numpy()
            np.testing.assert_allclose(got, want, atol=_FP32_ATOL)
            np.testing.assert_allclose(text.embed(t).embeddings[0].embedding, got, atol=1e-6)
            enc = text.tokenizer.encode(t)
            assert enc.ids.tolist() == inputs["input_ids"][0].tolist()
        # the pooled position is the last one: the padding is part of the input (no mask, not causal)
        short = tok(["a cat"], padding="max_length", max_length=64, return_tensors="pt")["input_ids"]
        unpadded = model.get_text_features(input_ids=short[:, :4]).pooler_output[0].numpy()
        assert _cos(unpadded, text.embed("a cat").embeddings[0].embedding) < 0.999


def test_siglip_metadata_pairs_the_towers(converted):
    from edge_embedder.metadata import LOGIT_BIAS_KEY, TOKENIZER_KEY

    img, text = inspect_model(str(converted("siglip", "image")))["contract"], \
        inspect_model(str(converted("siglip", "text")))["contract"]
    assert img["embedding_space"] == text["embedding_space"] and img["embedding_space"].startswith("weights-sha256:")
    for c in (img, text):  # tiny_siglip: logit_scale = log(10), logit_bias = -1
        assert c["logit_scale"] == pytest.approx(10.0, rel=1e-6) and c["logit_bias"] == pytest.approx(-1.0)
    tok = text["tokenizer"]
    assert tok["bos_id"] is None and tok["padding"] == "max_length" and tok["eos_if_absent"] is True
    assert tok["pooling"] == "last" and tok["max_length"] == 64 and tok["eos_id"] == tok["pad_id"] == 1
    with TextEmbedder.create_from_model_path(converted("siglip", "text")) as t:
        assert t.logit_bias == pytest.approx(-1.0) and LOGIT_BIAS_KEY in dict(t.metadata.custom_metadata)
        assert json.loads(dict(t.metadata.custom_metadata)[TOKENIZER_KEY])["file"] == "tokenizer.json"
        assert t.model_spec.shapes.lengths == (64,)


def test_older_checkpoint_layout_converts(tmp_path):
    """preprocessor_config.json and the tokenizer files on their own (checkpoints written before transformers 5)."""
    from edge_embedder.convert import tiny_siglip

    ckpt = tmp_path / "old"
    assert tiny_siglip.main([str(ckpt), "--layout", "separate", "--seed", "1"]) == 0
    assert (ckpt / "preprocessor_config.json").is_file() and not (ckpt / "processor_config.json").exists()
    for tower in ("image", "text"):
        out = tmp_path / f"old_{tower}.tflite"
        assert main(["convert", "--arch", "siglip", "--tower", tower, "--model", str(ckpt), "-o", str(out)]) == 0
        assert _report(out)["passed"] and _report(out)["min_cosine"] >= 0.9999


def test_tokenizer_with_an_attention_mask_warns(tmp_path):
    from edge_embedder.convert import convert, tiny_siglip

    ckpt = tiny_siglip.build(tmp_path / "masked", attention_mask=True)
    res = convert("siglip", str(ckpt), output=tmp_path / "masked.tflite", task="text-embedding",
                  progress=lambda m: None)
    assert res.report["passed"] and any("attention_mask" in w for w in res.warnings)


def test_checkpoint_without_spiece_model(ckpts, tmp_path, capsys):
    import shutil

    broken = tmp_path / "nospm"
    shutil.copytree(ckpts["siglip"], broken)
    (broken / "spiece.model").unlink()
    assert main(["convert", "--arch", "siglip", "--tower", "text", "--model", str(broken), "-o",
                 str(tmp_path / "x.tflite")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spiece.model" in err[0] and "tokenizer" in err[0]
    assert not (tmp_path / "x.tflite").exists()


# --------------------------------------------------------------------------- #
# Zero-shot and search with a SigLIP pair
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def pipe(ckpts):
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel, pipeline

    ckpt = str(ckpts["siglip"])
    return pipeline("zero-shot-image-classification", model=SiglipModel.from_pretrained(ckpt).eval(),
                    tokenizer=AutoTokenizer.from_pretrained(ckpt),
                    image_processor=AutoImageProcessor.from_pretrained(ckpt, backend="pil"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_shot_equals_the_pipeline(converted, pipe, fmt):
    from PIL import Image

    with ZeroShotImageClassifier.create_from_model_paths(converted("siglip", "image", fmt),
                                                         converted("siglip", "text", fmt)) as zs:
        assert zs.scoring == "sigmoid" and zs.logit_bias == pytest.approx(-1.0)
        tops = set()
        for name in PHOTOS:
            ours = zs.classify(_path(name), LABELS)
            ref = pipe(Image.open(_path(name)).convert("RGB"), candidate_labels=LABELS)
            assert [r["label"] for r in ours] == [r["label"] for r in ref]
            np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=_SCORE_TOLERANCE)
            tops.add(ours[0]["label"])
            total = sum(r["score"] for r in ours)
            assert abs(total - 1.0) > 0.05, "sigmoid scores are per label, not a distribution"
        template = "a blurry photo of a {}."
        ours = zs.classify(_path("coffee"), LABELS, hypothesis_template=template)
        ref = pipe(Image.open(_path("coffee")).convert("RGB"), candidate_labels=LABELS, hypothesis_template=template)
        np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=_SCORE_TOLERANCE)
    assert len(tops) >= 2, "the tiny pair should not rank every photo the same"


def test_zero_shot_cli_and_overrides(converted, capsys):
    from edge_embedder.zero_shot import zero_shot_scores

    img, text = converted("siglip", "image"), converted("siglip", "text")
    assert main(["zero-shot", _path("rocket"), "--image-model", str(img), "--text-model", str(text),
                 "--labels", ",".join(LABELS)]) == 0
    cli = json.loads(capsys.readouterr().out)[0]["results"]
    with ZeroShotImageClassifier.create_from_model_paths(img, text) as zs:
        api = zs.classify(_path("rocket"), LABELS)
        assert cli == api
        vec = zs.image_embedder.embed(_path("rocket")).embeddings[0]
        table = zs.label_embeddings(LABELS)
        cos = table @ (vec.embedding / np.linalg.norm(vec.embedding))
        want = 1 / (1 + np.exp(-(10.0 * cos - 1.0)))
        np.testing.assert_allclose(sorted(r["score"] for r in api), sorted(want), atol=1e-6)
        np.testing.assert_allclose(zero_shot_scores(vec, table, 10.0, None).sum(), 1.0)  # no bias: a softmax
    assert main(["zero-shot", _path("rocket"), "--image-model", str(img), "--text-model", str(text),
                 "--labels", "cat,dog", "--logit-bias", "0", "--logit-scale", "1"]) == 0
    scores = [r["score"] for r in json.loads(capsys.readouterr().out)[0]["results"]]
    assert all(0.3 < s < 0.7 for s in scores)  # sigmoid(cosine): near 0.5 for small cosines


def test_search_text_with_a_siglip_pair(converted, tmp_path, capsys):
    """An index of SigLIP image vectors answers text queries of its text tower (one embedding space)."""
    import shutil

    from edge_embedder.containers import l2_normalize
    from edge_embedder.search import EmbeddingIndex

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(_path(name), photos / f"{name}.png")
    img, text = converted("siglip", "image", "onnx"), converted("siglip", "text", "onnx")
    out = tmp_path / "siglip.npz"
    assert main(["index", str(photos), "-o", str(out), "--model", str(img)]) == 0
    capsys.readouterr()
    query = "a photo of a cat"
    with ImageEmbedder.create_from_model_path(img) as im, TextEmbedder.create_from_model_path(text) as tx:
        q = l2_normalize(tx.embed(query).embeddings[0].embedding)
        want = {n: float(np.dot(q, l2_normalize(im.embed(photos / f"{n}.png").embeddings[0].embedding)))
                for n in PHOTOS}
        assert EmbeddingIndex.load(out).space == tx.embedding_space_id
    order = sorted(want, key=lambda n: -want[n])
    assert main(["search", str(out), "--text", query, "--text-model", str(text), "--format", "json", "-k", "4"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [Path(h["path"]).stem for h in hits] == order
    np.testing.assert_allclose([h["score"] for h in hits], [want[n] for n in order], atol=1e-5)
