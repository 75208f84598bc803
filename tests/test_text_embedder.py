"""TextEmbedder: the text contract, tokenization from the file, parity with transformers, batching, lifecycle.

Real models: the tiny random CLIP pair that the README builds (conftest's
``clip_pair``: CLIP's real 49408-token vocabulary, random 32-d towers), in
TFLite and ONNX. Contract edge cases: synthetic ONNX text models
(``tests/text_models.py``), built in milliseconds without torch.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    EmbedderClosedError,
    EmbeddingMismatchError,
    InputContractError,
    MetadataError,
    MissingDependencyError,
    ModelContractError,
    OptionsError,
    OutputContractError,
    TextEmbedder,
    TextEmbedderOptions,
    TextEmbedderResult,
    TextInputError,
    inspect_model,
)
from edge_embedder.metadata import EMBEDDING_SPACE_KEY, LOGIT_SCALE_KEY, TOKENIZER_KEY

from .conftest import FIXTURES
from .text_models import TOKENIZER_ENTRY, onnx_text_model

pytest.importorskip("tokenizers", reason="the text extra is not installed")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnx", reason="building synthetic text models needs onnx")

CORPUS = json.loads((FIXTURES / "text_corpus.json").read_text(encoding="utf-8"))
PARAGRAPH = max(CORPUS, key=len)
SEED_CAPTIONS = ["a photo of a cat", "a photo of a dog", "a photo of a car"]
FP32_FLOOR = 0.9999  # the float32 text parity floor
_EPSILON = 1e-4  # max abs difference to transformers (float32 round-off of a 2-layer tower)
_BATCH_TOL = 1e-5  # one real ONNX batch vs one-by-one


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _embedder(path, **kw) -> TextEmbedder:
    return TextEmbedder.create_from_options(TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path),
                                                                                         num_threads=2), **kw))


@pytest.fixture(scope="module")
def hf(clip_pair):
    """transformers' CLIPModel and CLIPTokenizerFast of the tiny checkpoint (the seed's route)."""
    from transformers import CLIPModel, CLIPTokenizerFast

    return CLIPModel.from_pretrained(str(clip_pair["checkpoint"])).eval(), CLIPTokenizerFast.from_pretrained(
        str(clip_pair["checkpoint"]))


def _reference(hf, texts):
    """The seed's route: tokenizer(texts, padding=True) -> get_text_features (with the attention mask)."""
    import torch

    model, tok = hf
    with torch.no_grad():
        out = model.get_text_features(**tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt"))
    return (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()


@pytest.fixture(scope="module", params=["tflite", "onnx"])
def text_model(request, clip_file):
    return clip_file("text", request.param, "none")


# --------------------------------------------------------------------------- #
# Parity with transformers
# --------------------------------------------------------------------------- #


def test_embeddings_match_get_text_features(text_model, hf):
    texts = SEED_CAPTIONS + ["cat", "", "What's that?! A dog -- or a cat...", "猫の写真 🐱", PARAGRAPH]
    want = _reference(hf, texts)
    assert _cos(want[0], want[1]) < 0.999, "tiny model too insensitive to its input for a meaningful test"
    with _embedder(text_model) as e:
        for text, ref in zip(texts, want):
            got = e.embed(text).embeddings[0].embedding
            assert got.shape == ref.shape == (16,)
            assert _cos(got, ref) >= FP32_FLOOR, text[:30]
            np.testing.assert_allclose(got, ref, atol=_EPSILON)


@pytest.mark.parametrize("words", [0, 1, 5, 20, 40, 74, 75, 200])
def test_every_sequence_length_is_exact(clip_file, hf, words):
    """EOS at every position 1..76 (and truncation): the pooled position is computed in the graph."""
    text = " ".join((["cat", "dog"] * 200)[:words])
    with _embedder(clip_file("text", "tflite", "none")) as e:
        res = e.embed(text)
        assert res.token_count == min(words + 2, 77) and res.truncated == (words > 75)
        np.testing.assert_allclose(res.embeddings[0].embedding, _reference(hf, [text])[0], atol=_EPSILON)


def test_tokens_after_eos_do_not_change_the_vector(clip_file):
    """Causal attention + EOS pooling: whatever pads the ids after EOS, the vector is the same."""
    with _embedder(clip_file("text", "tflite", "none")) as e:
        ids = e.tokenizer.encode("a photo of a cat").ids
        backend = e.backend
        outs = []
        for pad in (49407, 0, 1, 320, "random"):
            x = ids.copy()
            x[7:] = np.random.default_rng(0).integers(0, 49406, 70) if pad == "random" else pad

            outs.append(backend.run_input(x[None])[0].ravel())
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], atol=1e-6)


def test_tokenizer_in_the_file_equals_clip_tokenizer_fast(clip_pair, text_model, hf):
    """The tokenizer.json packed in the file gives transformers' ids on the whole corpus (max_length padding)."""
    _, tok = hf
    want = tok(CORPUS, padding="max_length", truncation=True, max_length=77)["input_ids"]
    with _embedder(text_model) as e:
        got = [enc.ids.tolist() for enc in e.tokenizer.encode_batch(CORPUS)]
        assert e.tokenizer.encode(PARAGRAPH).truncated
    assert got == want


def test_paragraph_result_says_it_was_truncated(text_model):
    with _embedder(text_model) as e:
        long, short = e.embed(PARAGRAPH), e.embed("a photo of a cat")
    assert isinstance(long, TextEmbedderResult) and long.truncated and long.token_count == 77
    assert not short.truncated and short.token_count == 7 and short.timestamp_ms is None


# --------------------------------------------------------------------------- #
# API
# --------------------------------------------------------------------------- #


def test_embed_batch_equals_embed(text_model):
    texts = CORPUS[:19]
    with _embedder(text_model) as e:
        singles = [e.embed(t) for t in texts]
        counts = [r.token_count for r in singles]
        calls = []
        run_input = e.backend.run_input

        def spy(x):
            calls.append(x.shape)
            return run_input(x)

        e.backend.run_input = spy  # type: ignore[method-assign]
        batched = e.embed_batch(texts, batch_size=8)
        if e.backend.name == "onnxruntime":  # dynamic batch and sequence axes: 8 + 8 + 3, shortest first
            lengths = sorted(counts)
            assert calls == [(8, lengths[7]), (8, lengths[15]), (3, lengths[18])]
        else:  # batch signatures [8, 16] / [8, 32]; what does not fill 3/4 of one runs alone
            assert sum(b for b, _ in calls) >= len(texts) and all(s in e.backend.input_shapes for s in calls)
            assert any(b == 8 for b, _ in calls)
        assert e.embed_batch([]) == []
    for a, b in zip(singles, batched):
        np.testing.assert_allclose(a.embeddings[0].embedding, b.embeddings[0].embedding, atol=_BATCH_TOL)
        assert (a.truncated, a.token_count) == (b.truncated, b.token_count)


def test_l2_normalize_and_quantize(clip_pair):
    with _embedder(clip_pair["text"]) as raw, _embedder(clip_pair["text"], l2_normalize=True) as l2, \
            _embedder(clip_pair["text"], l2_normalize=True, quantize=True) as q:
        v = raw.embed("a photo of a cat").embeddings[0].embedding
        n = l2.embed("a photo of a cat").embeddings[0].embedding
        qe = q.embed("a photo of a cat").embeddings[0]
    np.testing.assert_allclose(n, v / np.linalg.norm(v), rtol=1e-5)
    assert qe.quantized and qe.embedding.dtype == np.int8
    assert TextEmbedder.cosine_similarity(qe, qe) == pytest.approx(1.0)
    with pytest.raises(EmbeddingMismatchError):
        TextEmbedder.cosine_similarity(qe, n)


def test_properties_space_logit_scale_and_inspect(clip_pair):
    from transformers import CLIPModel

    scale = float(CLIPModel.from_pretrained(str(clip_pair["checkpoint"])).logit_scale.detach().exp())
    with _embedder(clip_pair["text"]) as e:
        assert e.embedding_space_id.startswith("weights-sha256:") and len(e.embedding_space_id) == 15 + 64
        assert e.logit_scale == pytest.approx(scale, rel=1e-6) and e.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
        assert e.model_spec.sequence_length == 77 and e.model_spec.input_dtype == np.int32
        assert e.model_spec.tokenizer.pooling == "first_eos"
        assert "TextEmbedder([1, 77] int32, lengths=[8, 12, 16, 24, 32, 48, 64, 77]" in repr(e)
        md = e.metadata
        assert md.custom_json(TOKENIZER_KEY)["pad_id"] == 49407
        assert md.custom_text(EMBEDDING_SPACE_KEY) == e.embedding_space_id
        assert md.custom_json(LOGIT_SCALE_KEY) == pytest.approx(scale)
    report = inspect_model(clip_pair["text"])
    assert report["contract"]["ok"] and report["contract"]["task"] == "text_embedder"
    assert report["contract"]["tokenizer"]["max_length"] == 77
    assert report["contract"]["embedding_space"] == report["metadata"]["custom_metadata"][EMBEDDING_SPACE_KEY]


def test_timings_include_tokenization(clip_pair):
    with _embedder(clip_pair["text"]) as e:
        assert e.last_timings is None
        e.embed(PARAGRAPH)
        t = e.last_timings
    assert t.preprocess_ns > 0 and t.inference_ns > 0 and t.total_ns >= t.preprocess_ns + t.inference_ns


def test_shared_by_threads_equals_serial(clip_pair):
    texts = CORPUS[:12]
    with _embedder(clip_pair["text"]) as e:
        serial = [e.embed(t).embeddings[0].embedding for t in texts]
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda t: e.embed(t).embeddings[0].embedding, texts * 3))
    for a, b in zip(serial * 3, threaded):
        np.testing.assert_array_equal(a, b)


def test_close_is_idempotent_and_use_after_close_raises(clip_pair):
    e = TextEmbedder.create_from_model_path(clip_pair["text"])
    with e:
        e.embed("cat")
    e.close()
    with pytest.raises(EmbedderClosedError):
        e.embed("cat")
    with pytest.raises(EmbedderClosedError):
        e.embed_batch(["cat"])


@pytest.mark.parametrize("bad", [None, b"a photo", 3, ["a photo"]])
def test_embed_refuses_non_str(clip_pair, bad):
    with _embedder(clip_pair["text"]) as e:
        with pytest.raises(TextInputError):
            e.embed(bad)
        with pytest.raises(TextInputError):
            e.embed_batch(["ok", bad])
        with pytest.raises(TextInputError, match="single str"):
            e.embed_batch("a photo of a cat")
        with pytest.raises(OptionsError):
            e.embed_batch(["ok"], batch_size=0)


def test_options_validation(clip_pair):
    with pytest.raises(OptionsError):
        TextEmbedderOptions(base_options="model.tflite")
    with pytest.raises(OptionsError):
        TextEmbedderOptions(base_options=BaseOptions(model_asset_path="m"), l2_normalize="yes")
    with pytest.raises(OptionsError):
        TextEmbedder.create_from_options(BaseOptions(model_asset_path=str(clip_pair["text"])))


def test_buffer_and_path_give_the_same_vectors(clip_pair):
    data = clip_pair["text"].read_bytes()
    with TextEmbedder.create_from_options(TextEmbedderOptions(base_options=BaseOptions(model_asset_buffer=data))) as a, \
            TextEmbedder.create_from_model_path(str(clip_pair["text"])) as b:
        np.testing.assert_array_equal(a.embed("cat").embeddings[0].embedding, b.embed("cat").embeddings[0].embedding)
        assert a.embedding_space_id == b.embedding_space_id


# --------------------------------------------------------------------------- #
# The text contract (synthetic ONNX models)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_int32_and_int64_ids_are_accepted(tmp_path, dtype):
    path = onnx_text_model(tmp_path / "m.onnx", dtype=dtype, batch="batch")
    with _embedder(path) as e:
        assert e.model_spec.input_dtype == dtype and e.backend.dynamic_batch
        res = e.embed("a photo of a cat")
        ids = e.tokenizer.encode("a photo of a cat").ids.astype(np.float32)
        w = np.random.default_rng(0).normal(size=(77, 8)).astype(np.float32) / 1e4
        np.testing.assert_allclose(res.embeddings[0].embedding, ids @ w, rtol=1e-5)
        assert e.embedding_space_id == f"sha256:{__import__('hashlib').sha256(path.read_bytes()).hexdigest()}"
        assert e.logit_scale is None


@pytest.mark.parametrize("kwargs, error, message", [
    ({"dtype": np.float32}, InputContractError, r"expected dtype int32 or int64 \(token ids\), got float32"),
    ({"batch": 2}, InputContractError, "expected batch size 1, got 2"),
    ({"length": 1}, InputContractError, "fixed sequence length L >= 2"),
    ({"length": -1}, MetadataError, "expected 'max_length' >= 2"),  # a dynamic sequence axis: L from the tokenizer
    ({"extra_input": True}, InputContractError, "expected exactly 1 input tensor, got 2"),
    ({"out_shape": [1, 1, 8]}, OutputContractError, r"expected shape \[1, N\], got \[1, 1, 8\]"),
    ({"metadata": False}, MetadataError, "needs its tokenizer"),
    ({"entry": {}}, MetadataError, "expected 'file' to name the tokenizer file"),
    ({"entry": dict(TOKENIZER_ENTRY, max_length=16)}, InputContractError,
     "tokenizer max_length 16 should match the input sequence length 77"),
    ({"entry": dict(TOKENIZER_ENTRY, pad_id=-1)}, MetadataError, "'pad_id' to be an integer >= 0"),
    ({"entry": dict(TOKENIZER_ENTRY, lowercase="no")}, MetadataError, "'lowercase' to be a bool"),
    ({"entry": dict(TOKENIZER_ENTRY, file="vocab.txt")}, MetadataError, "'vocab.txt' named by"),
    ({"custom": {EMBEDDING_SPACE_KEY: b" "}}, MetadataError, "expected a non-empty string"),
    ({"custom": {LOGIT_SCALE_KEY: b"-1"}}, MetadataError, "expected a finite number > 0, got -1"),
    ({"entry": dict(TOKENIZER_ENTRY, eos_id=2)}, MetadataError, r"frames the empty text as \[49406, 49407\]"),
    ({"files": {"tokenizer.json": b"not a tokenizer"}}, MetadataError, "tokenizer.json cannot be parsed"),
])
def test_contract_violations_are_typed_errors(tmp_path, kwargs, error, message):
    path = onnx_text_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(error, match=message) as info:
        TextEmbedder.create_from_model_path(path)
    assert isinstance(info.value, (ModelContractError, MetadataError))
    verdict = inspect_model(path)["contract"]
    if "frames the empty" in message or "cannot be parsed" in message:
        assert verdict["ok"]  # the tokenizer itself is only checked when one is built
    else:  # float ids are not token ids: inspect checks (and fails) the image contract
        assert not verdict["ok"]
        assert verdict["task"] == ("image_embedder" if kwargs.get("dtype") == np.float32 else "text_embedder")


def test_image_model_is_not_a_text_model(clip_pair):
    with pytest.raises(InputContractError, match="int32 or int64"):
        TextEmbedder.create_from_model_path(clip_pair["image"])


def test_missing_tokenizers_names_the_extra(tmp_path, monkeypatch):
    path = onnx_text_model(tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'edge-embedder\[text\]'"):
        TextEmbedder.create_from_model_path(path)
