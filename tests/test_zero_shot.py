"""Zero-shot classification and the text CLI commands against transformers' pipeline, on the tiny CLIP pair.

The reference is ``pipeline("zero-shot-image-classification")`` on the same
tiny random checkpoint (its PIL image processor and its CLIPTokenizerFast);
ours runs the exported image and text files.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    EmbeddingMismatchError,
    EmbeddingSpaceMismatchError,
    ImageEmbedder,
    ImageEmbedderOptions,
    OptionsError,
    TextEmbedder,
    ZeroShotImageClassifier,
    ZeroShotImageClassifierOptions,
)
from edge_embedder.cli import main
from edge_embedder.zero_shot import (
    DEFAULT_HYPOTHESIS_TEMPLATE,
    OPENAI_IMAGENET_TEMPLATES,
    SIMPLE_IMAGENET_TEMPLATES,
    zero_shot_scores,
)

from .conftest import DATA, FP32_MODEL, ROOT
from .text_models import onnx_text_model

pytest.importorskip("tokenizers", reason="the text extra is not installed")
pytest.importorskip("transformers")

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
LABELS = ["cat", "dog", "car", "cup of coffee", "rocket", "person in a space suit"]
_SCORE_TOLERANCE = 1e-3  # the fp32 tolerance vs the pipeline (measured: ~1e-6)


def _path(name: str) -> str:
    return str(DATA / f"{name}.png")


@pytest.fixture(scope="module")
def pipe(clip_pair):
    from transformers import AutoImageProcessor, CLIPModel, CLIPTokenizerFast, pipeline

    ckpt = str(clip_pair["checkpoint"])
    return pipeline("zero-shot-image-classification", model=CLIPModel.from_pretrained(ckpt).eval(),
                    tokenizer=CLIPTokenizerFast.from_pretrained(ckpt),
                    image_processor=AutoImageProcessor.from_pretrained(ckpt, backend="pil"))


def _pipeline(pipe, name, labels=LABELS, **kw):
    from PIL import Image

    return pipe(Image.open(_path(name)).convert("RGB"), candidate_labels=labels, **kw)


@pytest.fixture(scope="module", params=["tflite", "onnx"])
def zs(request, clip_file):
    fmt = request.param
    with ZeroShotImageClassifier.create_from_model_paths(clip_file("image", fmt), clip_file("text", fmt)) as z:
        yield z


# --------------------------------------------------------------------------- #
# Parity with the pipeline
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", PHOTOS)
def test_same_labels_and_scores_as_the_pipeline(zs, pipe, name):
    ours, ref = zs.classify(_path(name), LABELS), _pipeline(pipe, name)
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=_SCORE_TOLERANCE)
    assert sum(r["score"] for r in ours) == pytest.approx(1.0)
    assert all(set(r) == {"score", "label"} and isinstance(r["score"], float) for r in ours)


def test_the_tiny_model_discriminates(zs):
    """The parity above is meaningful: scores are far from uniform and differ between photos."""
    tops = {zs.classify(_path(n), LABELS)[0]["label"] for n in PHOTOS}
    assert len(tops) >= 2
    assert max(r["score"] for r in zs.classify(_path("rocket"), LABELS)) > 2 / len(LABELS)


def test_hypothesis_template_matches_the_pipeline(zs, pipe):
    template = "a blurry photo of a {}, maybe."
    ours = zs.classify(_path("coffee"), LABELS, hypothesis_template=template)
    ref = _pipeline(pipe, "coffee", hypothesis_template=template)
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=_SCORE_TOLERANCE)
    assert DEFAULT_HYPOTHESIS_TEMPLATE == pipe._preprocess_params.get("hypothesis_template", "This is a photo of {}.")


def test_prompt_ensemble_is_the_normalized_mean(clip_pair, zs):
    """open_clip's recipe, computed here with transformers: normalize, average, normalize, 100-free logit scale."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel, CLIPTokenizerFast

    ckpt = str(clip_pair["checkpoint"])
    model, tok = CLIPModel.from_pretrained(ckpt).eval(), CLIPTokenizerFast.from_pretrained(ckpt)
    proc = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    templates = SIMPLE_IMAGENET_TEMPLATES
    with torch.no_grad():
        rows = []
        for label in LABELS[:4]:
            t = model.get_text_features(**tok([p.format(label) for p in templates], padding=True, return_tensors="pt"))
            t = (t if isinstance(t, torch.Tensor) else t.pooler_output)
            t = t / t.norm(dim=-1, keepdim=True)
            m = t.mean(0)
            rows.append(m / m.norm())
        classifier = torch.stack(rows)
        img = model.get_image_features(**proc(images=Image.open(_path("astronaut")).convert("RGB"), return_tensors="pt"))
        img = (img if isinstance(img, torch.Tensor) else img.pooler_output)[0]
        img = img / img.norm()
        want = torch.softmax(model.logit_scale.exp() * classifier @ img, 0).numpy()
    ours = {r["label"]: r["score"] for r in zs.classify(_path("astronaut"), LABELS[:4], templates=templates)}
    np.testing.assert_allclose([ours[x] for x in LABELS[:4]], want, atol=_SCORE_TOLERANCE)


def test_shipped_templates():
    assert len(OPENAI_IMAGENET_TEMPLATES) == 80 and len(SIMPLE_IMAGENET_TEMPLATES) == 7
    assert OPENAI_IMAGENET_TEMPLATES[0] == "a bad photo of a {}." and SIMPLE_IMAGENET_TEMPLATES[0] == "itap of a {}."
    assert all(t.count("{}") == 1 for t in OPENAI_IMAGENET_TEMPLATES + SIMPLE_IMAGENET_TEMPLATES)
    data = json.loads((ROOT / "edge_embedder" / "data" / "imagenet_templates.json").read_text())
    assert "open_clip" in data["source"] and "MIT" in data["license"]


# --------------------------------------------------------------------------- #
# The label cache
# --------------------------------------------------------------------------- #


class _CountingText:
    """Counts the texts a TextEmbedder embeds (wraps embed_batch)."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.n = 0
        inner = embedder.embed_batch

        def embed_batch(texts, **kw):
            texts = list(texts)
            self.n += len(texts)
            return inner(texts, **kw)

        embedder.embed_batch = embed_batch  # type: ignore[method-assign]


def test_label_embeddings_are_computed_once(clip_pair):
    image = ImageEmbedder.create_from_model_path(clip_pair["image"])
    text = TextEmbedder.create_from_model_path(clip_pair["text"])
    count = _CountingText(text)
    with image, text:
        zs = ZeroShotImageClassifier(image, text, label_cache_size=4)
        first = zs.classify(_path("chelsea"), LABELS[:3])
        assert count.n == 3
        again = zs.classify(_path("chelsea"), LABELS[:3])
        assert count.n == 3 and again == first
        zs.classify(_path("coffee"), LABELS[:4])  # one new label
        assert count.n == 4 and zs.cache_info() == {"hits": 6, "misses": 4, "size": 4, "max_size": 4}
        zs.classify(_path("coffee"), LABELS[4:6])  # evicts the two least recently used
        assert zs.cache_info()["size"] == 4 and count.n == 6
        zs.classify(_path("coffee"), LABELS[:3], templates=SIMPLE_IMAGENET_TEMPLATES)
        assert count.n == 6 + 3 * 7  # other prompts: other entries
        zs.classify(_path("coffee"), LABELS[:3], hypothesis_template="{}")
        uncached = ZeroShotImageClassifier(image, text, label_cache_size=0)
        n = count.n
        uncached.classify(_path("chelsea"), LABELS[:3])
        uncached.classify(_path("chelsea"), LABELS[:3])
        assert count.n == n + 6 and uncached.cache_info()["size"] == 0
        zs.close()  # built from embedders: does not close them
        assert image.embed(_path("chelsea")) is not None


def test_classify_embedding_and_scores(clip_pair, zs):
    vec = zs.image_embedder.embed(_path("rocket")).embeddings[0]
    assert zs.classify_embedding(vec, LABELS) == zs.classify(_path("rocket"), LABELS)
    table = zs.label_embeddings(LABELS)
    assert table.shape == (6, 16) and table.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), 1.0, rtol=1e-5)
    scores = zero_shot_scores(vec, table, zs.logit_scale)
    assert scores.argmax() == LABELS.index(zs.classify(_path("rocket"), LABELS)[0]["label"])
    with pytest.raises(EmbeddingMismatchError):
        zero_shot_scores(vec, table[:, :8], 100.0)


# --------------------------------------------------------------------------- #
# Refusals
# --------------------------------------------------------------------------- #


def test_models_from_different_spaces_are_refused(clip_pair):
    with pytest.raises(EmbeddingSpaceMismatchError, match="different embedding spaces") as info:
        ZeroShotImageClassifier.create_from_model_paths(FP32_MODEL, clip_pair["text"])
    assert isinstance(info.value, EmbeddingMismatchError) and isinstance(info.value, ValueError)
    assert "sha256:" in str(info.value) and "weights-sha256:" in str(info.value)


class _StubImage:
    """An image embedder of the tiny CLIP's space with another size or no logit scale."""

    def __init__(self, space: str, size: int = 16, logit_scale=None, quantize=False) -> None:
        from types import SimpleNamespace

        self.embedding_space_id = space
        self.logit_scale = logit_scale
        self.options = SimpleNamespace(quantize=quantize)
        self.model_spec = SimpleNamespace(outputs=[SimpleNamespace(size=size)])

    def embed(self, image, ipo=None):  # pragma: no cover - never reached
        raise AssertionError


def test_other_refusals(clip_pair, tmp_path):
    text = TextEmbedder.create_from_model_path(clip_pair["text"])
    with text:
        space = text.embedding_space_id
        with pytest.raises(EmbeddingMismatchError, match="image embeddings are 8-d but text embeddings are 16-d"):
            ZeroShotImageClassifier(_StubImage(space, size=8), text)
        with pytest.raises(OptionsError, match="quantize=True"):
            ZeroShotImageClassifier(_StubImage(space, quantize=True), text)
        with pytest.raises(OptionsError, match="expected a TextEmbedder"):
            ZeroShotImageClassifier(_StubImage(space), "text.tflite")  # type: ignore[arg-type]
        zs = ZeroShotImageClassifier(_StubImage(space), text)
        assert zs.logit_scale == pytest.approx(text.logit_scale)
        assert ZeroShotImageClassifier(_StubImage(space), text, logit_scale=100).logit_scale == 100
        for bad in ("cat", [], ["cat", 3]):
            with pytest.raises(OptionsError, match="candidate_labels"):
                zs.label_embeddings(bad)
        for template in ("no slot", "{} and {}", "{0} {1}", "{name}"):
            with pytest.raises(OptionsError, match="hypothesis_template"):
                zs.label_embeddings(["cat"], hypothesis_template=template)
        with pytest.raises(OptionsError, match="templates"):
            zs.label_embeddings(["cat"], templates="a photo of a {}.")
        for kw in ({"logit_scale": 0}, {"logit_scale": float("nan")}, {"label_cache_size": -1}):
            with pytest.raises(OptionsError):
                ZeroShotImageClassifier(_StubImage(space), text, **kw)
        with pytest.raises(Exception, match="different logit scales"):
            ZeroShotImageClassifier(_StubImage(space, logit_scale=100.0), text)
    # a text model without a logit scale and an image model without one: the caller must say
    no_scale = onnx_text_model(tmp_path / "t.onnx", dim=16)
    with TextEmbedder.create_from_model_path(no_scale) as t2:
        with pytest.raises(OptionsError, match="neither model file carries one"):
            ZeroShotImageClassifier(_StubImage(t2.embedding_space_id), t2)
        assert ZeroShotImageClassifier(_StubImage(t2.embedding_space_id), t2, logit_scale=50.0).logit_scale == 50.0


def test_options_validation_and_ownership(clip_pair):
    base_i, base_t = BaseOptions(model_asset_path=str(clip_pair["image"])), BaseOptions(model_asset_path=str(clip_pair["text"]))
    with pytest.raises(OptionsError):
        ZeroShotImageClassifierOptions(image_base_options="x", text_base_options=base_t)
    with pytest.raises(OptionsError):
        ZeroShotImageClassifierOptions(image_base_options=base_i, text_base_options=base_t, hypothesis_template="x")
    opts = ZeroShotImageClassifierOptions(image_base_options=base_i, text_base_options=base_t,
                                          templates=list(SIMPLE_IMAGENET_TEMPLATES))
    zs = ZeroShotImageClassifier.create_from_options(opts)
    assert "7 templates" in repr(zs)
    zs.close()
    zs.close()  # idempotent
    from edge_embedder import EmbedderClosedError

    with pytest.raises(EmbedderClosedError):
        zs.classify(_path("chelsea"), ["cat"])
    quantizing = ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base_i, quantize=True))
    with quantizing, TextEmbedder.create_from_model_path(clip_pair["text"]) as text:
        with pytest.raises(OptionsError, match="quantize=True"):
            ZeroShotImageClassifier(quantizing, text)


# --------------------------------------------------------------------------- #
# CLI: zero-shot, similarity with a text, embed-text
# --------------------------------------------------------------------------- #


def _pair_args(clip_pair):
    return ["--image-model", str(clip_pair["image"]), "--text-model", str(clip_pair["text"])]


def test_cli_zero_shot_equals_the_api(clip_pair, capsys, tmp_path):
    assert main(["zero-shot", _path("chelsea"), _path("rocket"), *_pair_args(clip_pair), "--labels", ",".join(LABELS)]) == 0
    got = json.loads(capsys.readouterr().out)
    with ZeroShotImageClassifier.create_from_model_paths(clip_pair["image"], clip_pair["text"]) as zs:
        assert got == [{"image": _path(n), "results": zs.classify(_path(n), LABELS)} for n in ("chelsea", "rocket")]
        ensemble = zs.classify(_path("chelsea"), LABELS[:3], templates=OPENAI_IMAGENET_TEMPLATES)
        templated = zs.classify(_path("chelsea"), LABELS[:3], hypothesis_template="a {}")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\ncar\n")
    assert main(["zero-shot", _path("chelsea"), *_pair_args(clip_pair), "--labels-file", str(labels),
                 "--templates", "openai", "--top-k", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"image": _path("chelsea"), "results": ensemble[:2]}]
    assert main(["zero-shot", _path("chelsea"), *_pair_args(clip_pair), "--labels", "cat,dog,car",
                 "--template", "a {}"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["results"] == templated


def test_cli_zero_shot_errors(clip_pair, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["zero-shot", _path("chelsea"), str(bad), *_pair_args(clip_pair), "--labels", "cat,dog"]) == 1
    out, err = capsys.readouterr()
    records = json.loads(out)  # the skipped image is listed, in input order
    assert [r["image"] for r in records] == [_path("chelsea"), str(bad)] and "bad.jpg" in err
    assert "results" in records[0] and records[1]["error"]["type"] == "ImageDecodeError"
    assert main(["zero-shot", str(bad), *_pair_args(clip_pair), "--labels", "cat,dog"]) == 4
    assert main(["zero-shot", _path("chelsea"), *_pair_args(clip_pair), "--labels", "cat,,dog"]) == 2
    assert main(["zero-shot", _path("chelsea"), *_pair_args(clip_pair), "--labels", "cat", "--template", "nope"]) == 2
    capsys.readouterr()
    # Models that do not go together are a model error (3), as for a query model of another space than an index.
    assert main(["zero-shot", _path("chelsea"), "--image-model", str(FP32_MODEL), "--text-model", str(clip_pair["text"]),
                 "--labels", "cat,dog"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "different embedding spaces" in err and "Traceback" not in err


def test_cli_similarity_image_and_text(clip_pair, capsys):
    args = ["--model", str(clip_pair["image"]), "--text-model", str(clip_pair["text"])]
    assert main(["similarity", _path("chelsea"), "--text", "a photo of a cat", *args]) == 0
    got = float(capsys.readouterr().out)
    with ImageEmbedder.create_from_model_path(clip_pair["image"]) as i, TextEmbedder.create_from_model_path(
            clip_pair["text"]) as t:
        want = ImageEmbedder.cosine_similarity(i.embed(_path("chelsea")).embeddings[0], t.embed("a photo of a cat").embeddings[0])
        two = TextEmbedder.cosine_similarity(t.embed("a cat").embeddings[0], t.embed("a dog").embeddings[0])
    assert got == pytest.approx(want, abs=1e-6)
    assert main(["similarity", "--text", "a cat", "--text", "a dog", "--text-model", str(clip_pair["text"])]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(two, abs=1e-6)
    assert main(["similarity", _path("chelsea"), _path("coffee"), "--image-model", str(clip_pair["image"])]) == 0
    capsys.readouterr()
    for argv, message, code in [
        (["similarity", _path("chelsea")], "expected two inputs", 2),
        (["similarity", _path("chelsea"), "--text", "cat", "--model", str(clip_pair["image"])], "--text needs --text-model",
         2),
        (["similarity", _path("chelsea"), "--text", "cat", "--text-model", str(clip_pair["text"])], "need --model", 2),
        (["similarity", _path("chelsea"), "--text", "cat", "--model", str(FP32_MODEL), "--text-model",
          str(clip_pair["text"])], "different embedding spaces", 3),
    ]:
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err


def test_cli_embed_text(clip_pair, capsys, tmp_path):
    paragraph = "cat " * 100
    assert main(["embed-text", "a photo of a cat", paragraph, "--model", str(clip_pair["text"])]) == 0
    out, err = capsys.readouterr()
    got = json.loads(out)
    with TextEmbedder.create_from_model_path(clip_pair["text"]) as t:
        want = [t.embed(x).embeddings[0].embedding for x in ("a photo of a cat", paragraph)]
    assert [g["text"] for g in got] == ["a photo of a cat", paragraph] and [g["truncated"] for g in got] == [False, True]
    np.testing.assert_allclose(got[0]["embeddings"][0]["embedding"], want[0], rtol=1e-6)
    assert "text 2 was truncated to the model's 77 tokens" in err
    npy = tmp_path / "v.npy"
    assert main(["embed-text", "a", "b", "c", "--model", str(clip_pair["text"]), "--l2-normalize", "--output", "npy",
                 "-o", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (3, 16) and np.allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert json.loads((tmp_path / "v.npy.json").read_text())["texts"] == ["a", "b", "c"]  # what the rows are
    assert main(["embed-text", "a", "--model", str(clip_pair["text"]), "--output", "npy"]) == 2
    assert main(["embed-text", "a", "--model", str(clip_pair["image"])]) == 3  # an image model
    assert main(["embed-text", "a", "--model", str(tmp_path / "missing.tflite")]) == 3


def test_cli_missing_tokenizers_is_exit_5(clip_pair, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    for argv in (["embed-text", "a", "--model", str(clip_pair["text"])],
                 ["zero-shot", _path("chelsea"), *_pair_args(clip_pair), "--labels", "cat,dog"],
                 ["similarity", "--text", "a", "--text", "b", "--text-model", str(clip_pair["text"])]):
        assert main(argv) == 5
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "edge-embedder[text]" in err and "Traceback" not in err
