"""Text towers at the text's own length: the shapes a file offers, which one each text runs at, exactness.

``plan_calls`` is checked on its own (pure); the runtime on the tiny CLIP
text tower as the README converts it (a ``.tflite`` with one signature per
``[batch, length]`` shape, sharing the weights) and as ONNX (dynamic batch and
sequence axes), against a full-length run of the same file, against
transformers' ``get_text_features`` and on a single-signature file as older
converters wrote them.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_embedder import BaseOptions, InputContractError, TextEmbedder, TextEmbedderOptions
from edge_embedder.core.contract import TextShapes
from edge_embedder.text.shapes import Call, length_for, plan_calls

from .text_models import onnx_text_model

LENGTHS = (8, 12, 16, 24, 32, 48, 64, 77)  # what the converters write (TFLITE_LENGTHS + L)
BATCHES = ((8, 16), (8, 32))
_EPSILON = 1e-4  # vs transformers (float32 round-off of a 2-layer tower)
_SAME = 1e-5  # one file at two lengths / batch vs one by one
SIGS = TextShapes(77, LENGTHS, BATCHES)
DYNAMIC = TextShapes(77, (), (), dynamic_length=True, dynamic_batch=True)
OLD_TFLITE = TextShapes(77, (77,))
OLD_ONNX = TextShapes(77, (77,), dynamic_batch=True)


def _text(n_ids: int) -> str:
    """A text of exactly ``n_ids`` ids with CLIP's tokenizer ("cat" and "dog" are one id each)."""
    return " ".join((["cat", "dog"] * 60)[: n_ids - 2])


# --------------------------------------------------------------------------- #
# plan_calls (pure)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("n,want", [(2, 8), (8, 8), (9, 12), (12, 12), (13, 16), (17, 24), (33, 48), (64, 64),
                                    (65, 77), (77, 77)])
def test_one_text_runs_at_the_shortest_length_that_holds_it(n, want):
    assert plan_calls([n], SIGS) == [Call((1, want), (0,))]
    assert length_for(n, DYNAMIC) == n and length_for(n, OLD_TFLITE) == 77


def test_files_with_one_length_run_everything_at_it():
    assert plan_calls([3, 40, 9], OLD_TFLITE, batch_size=8) == [Call((1, 77), (0,)), Call((1, 77), (1,)),
                                                                 Call((1, 77), (2,))]
    assert plan_calls([3, 40, 9], OLD_ONNX, batch_size=8) == [Call((3, 77), (0, 2, 1))]


def test_dynamic_axes_batch_sorted_texts_at_their_longest():
    counts = [5, 30, 9, 12, 7]
    assert plan_calls(counts, DYNAMIC, batch_size=2) == [Call((2, 7), (0, 4)), Call((2, 12), (2, 3)),
                                                          Call((1, 30), (1,))]


def test_batch_signatures_take_full_groups_and_three_quarters():
    # 10 labels of 9-11 ids: one [8, 16] call, the 2 left over (< 3/4 of 8) run alone at [1, 12]
    counts = [9, 10, 11, 9, 10, 11, 9, 10, 11, 9]
    calls = plan_calls(counts, SIGS, batch_size=16)
    assert [c.shape for c in calls] == [(8, 16), (1, 12), (1, 12)]
    assert sorted(i for c in calls for i in c.rows) == list(range(10))
    # 6 texts fill 3/4 of [8, 16]: one padded call; 5 do not
    assert [c.shape for c in plan_calls([9] * 6, SIGS, batch_size=8)] == [(8, 16)]
    assert [c.shape for c in plan_calls([9] * 5, SIGS, batch_size=8)] == [(1, 12)] * 5
    # texts of 17..32 ids go to [8, 32]; longer ones alone; batch_size < 8 never uses the batch shapes
    assert [c.shape for c in plan_calls([20] * 8 + [50], SIGS, batch_size=8)] == [(8, 32), (1, 64)]
    assert [c.shape for c in plan_calls([9] * 8, SIGS, batch_size=4)] == [(1, 12)] * 8


# --------------------------------------------------------------------------- #
# The runtime on real files
# --------------------------------------------------------------------------- #


def _embedder(path, **kw) -> TextEmbedder:
    return TextEmbedder.create_from_options(
        TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path), num_threads=2), **kw))


def _spy(e: TextEmbedder) -> list:
    shapes: list = []
    run_input = e.backend.run_input

    def spy(x):
        shapes.append(tuple(x.shape))
        return run_input(x)

    e.backend.run_input = spy  # type: ignore[method-assign]
    return shapes


@pytest.fixture(scope="module")
def hf(clip_pair):
    pytest.importorskip("transformers")
    from transformers import CLIPModel, CLIPTokenizerFast

    return CLIPModel.from_pretrained(str(clip_pair["checkpoint"])).eval(), CLIPTokenizerFast.from_pretrained(
        str(clip_pair["checkpoint"]))


def _reference(hf, text):
    import torch

    model, tok = hf
    with torch.no_grad():
        out = model.get_text_features(**tok([text], truncation=True, max_length=77, return_tensors="pt"))
    return (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()[0]


def test_tflite_offers_its_signatures_in_the_contract(clip_pair):
    with _embedder(clip_pair["text"]) as e:
        shapes = e.model_spec.shapes
        assert shapes == TextShapes(77, LENGTHS, BATCHES)
        assert e.backend.input_shapes[0] == (1, 77)  # subgraph 0: what older readers see
        assert sorted(e.backend.input_shapes) == sorted([(1, n) for n in LENGTHS] + list(BATCHES))


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_every_token_count_equals_the_full_length_run(clip_file, hf, fmt):
    """From the empty string (2 ids) to 77 and past it (truncated): each text at its own length gives the vector
    of the same ids run at 77, and transformers'."""
    with _embedder(clip_file("text", fmt, "none")) as e:
        used = _spy(e)
        for n in range(2, 80):
            text = _text(n)
            res = e.embed(text)
            assert res.token_count == min(n, 77) and res.truncated == (n > 77)
            want_len = min(n, 77) if fmt == "onnx" else next(x for x in LENGTHS if x >= min(n, 77))
            assert used[-1] == (1, want_len), n
            full = e.backend.run_input(e.tokenizer.encode(text).ids[None].astype(np.int32))[0][0]
            np.testing.assert_allclose(res.embeddings[0].embedding, full, atol=_SAME, err_msg=f"{n} ids")
            if n in (2, 8, 9, 12, 13, 16, 17, 24, 25, 32, 33, 48, 49, 64, 65, 77, 78):
                np.testing.assert_allclose(res.embeddings[0].embedding, _reference(hf, text), atol=_EPSILON)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_zero_shot_labels_run_in_as_few_calls_as_the_file_allows(clip_pair, clip_file, fmt):
    from edge_embedder import ZeroShotImageClassifier
    from edge_embedder.vision import ImageEmbedder

    labels = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    image = ImageEmbedder.create_from_model_path(clip_pair["image"])
    text = _embedder(clip_file("text", fmt, "none"))
    try:
        used = _spy(text)
        zs = ZeroShotImageClassifier(image, text, label_cache_size=0)
        table = zs.label_embeddings(labels)
        if fmt == "onnx":
            assert len(used) == 1 and used[0][0] == 10  # one call, all ten labels
        else:  # one [8, 16] call; the two left over alone
            assert sorted(used, reverse=True)[0] == (8, 16) and len(used) == 3
        one_by_one = np.stack([text.embed(f"This is a photo of {x}.").embeddings[0].embedding for x in labels])
        one_by_one /= np.linalg.norm(one_by_one, axis=1, keepdims=True)
        np.testing.assert_allclose(table, one_by_one, atol=_SAME)
        zs2 = ZeroShotImageClassifier(image, text)  # the label cache stays
        zs2.label_embeddings(labels)
        n = len(used)
        zs2.label_embeddings(labels)
        assert len(used) == n and zs2.cache_info()["hits"] == 10
    finally:
        text.close()
        image.close()


def test_single_signature_file_keeps_working(clip_pair, tmp_path):
    """A file with one [1, 77] signature (as converters wrote them before) runs everything at 77, same vectors."""
    pytest.importorskip("ai_edge_litert")
    from edge_embedder.convert.litert_export import _pack, _unpack

    from edge_embedder.metadata import populate_tflite_metadata, read_tflite_metadata

    data = clip_pair["text"].read_bytes()
    m = _unpack(data)
    m.subgraphs = m.subgraphs[:1]
    m.signatureDefs = m.signatureDefs[:1]
    old = tmp_path / "old.tflite"
    old.write_bytes(populate_tflite_metadata(_pack(m), read_tflite_metadata(data)))
    texts = ["", "a photo of a cat", _text(30), _text(90)]
    with _embedder(old) as e_old, _embedder(clip_pair["text"]) as e_new:
        assert e_old.model_spec.shapes == OLD_TFLITE and e_old.backend.input_shapes == ((1, 77),)
        used = _spy(e_old)
        for t in texts:
            np.testing.assert_allclose(e_old.embed(t).embeddings[0].embedding, e_new.embed(t).embeddings[0].embedding,
                                       atol=_SAME)
        assert set(used) == {(1, 77)}
        batched = e_old.embed_batch(texts)
        assert set(used) == {(1, 77)} and len(batched) == 4


def test_interpreter_signature_runners_when_compiled_model_is_missing(clip_pair, monkeypatch):
    """Without LiteRT's CompiledModel the classic interpreter runs the signatures (same vectors)."""
    from edge_embedder.core.backends import litert

    lengths = (4, 20, 70, 4)  # the full length (the first signature) between two others: runners never mix
    with _embedder(clip_pair["text"]) as e:
        want = [e.embed(_text(n)).embeddings[0].embedding for n in lengths]
        batch_want = [r.embeddings[0].embedding for r in e.embed_batch([_text(10)] * 8)]
    monkeypatch.setattr(litert._CompiledSignatures, "open", classmethod(lambda cls, *a: None))
    with _embedder(clip_pair["text"]) as e:
        assert e.backend.api == "Interpreter" and e.model_spec.shapes == TextShapes(77, LENGTHS, BATCHES)
        used = _spy(e)
        got = [e.embed(_text(n)).embeddings[0].embedding for n in lengths]
        batch_got = [r.embeddings[0].embedding for r in e.embed_batch([_text(10)] * 8)]
        assert used == [(1, 8), (1, 24), (1, 77), (1, 8), (8, 16)]
        e.backend.invoke_only()  # the benchmark's bare call works on this path too
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=_SAME)
    np.testing.assert_allclose(np.stack(batch_got), np.stack(batch_want), atol=_SAME)


def test_compiled_model_only_on_cpus_it_runs_on():
    """On aarch64 CompiledModel needs Armv8.2 (atomics, fp16, dot product): a Pi 4's Cortex-A72 gets SIGILL."""
    from edge_embedder.core.backends.litert import _ARMV82_HWCAPS, compiled_model_supported

    pi5 = 0
    for bit in _ARMV82_HWCAPS.values():
        pi5 |= bit
    pi4 = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 7)  # fp, asimd, aes, crc32: Armv8.0
    assert compiled_model_supported("aarch64", pi5 | 0b11)
    assert not compiled_model_supported("aarch64", pi4)
    for missing in _ARMV82_HWCAPS.values():
        assert not compiled_model_supported("aarch64", pi5 & ~missing)
    assert compiled_model_supported("x86_64", 0) and compiled_model_supported("AMD64")


def test_compiled_model_is_used_for_several_signatures(clip_pair):
    pytest.importorskip("ai_edge_litert.compiled_model")
    with _embedder(clip_pair["text"]) as e:
        assert e.backend.api == "CompiledModel"
    with pytest.raises(ValueError, match=r"input shape \[1, 10\] is not one the model runs"):
        with _embedder(clip_pair["text"]) as e:
            e.backend.run_input(np.zeros((1, 10), np.int32))


# --------------------------------------------------------------------------- #
# Contract rules for the shapes
# --------------------------------------------------------------------------- #


def test_onnx_dynamic_sequence_axis_takes_max_length_from_the_tokenizer(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("tokenizers")
    path = onnx_text_model(tmp_path / "dyn.onnx", length=-77, batch="batch")
    with _embedder(path) as e:
        assert e.model_spec.sequence_length == 77
        assert e.model_spec.shapes == DYNAMIC


def test_offered_lengths_beyond_the_tokenizer_are_refused():
    from edge_embedder.core.backends.base import TensorSpec
    from edge_embedder.core.contract import _check_text_shapes

    t = TensorSpec(0, "input_ids", np.dtype(np.int32), (1, 77))
    with pytest.raises(InputContractError, match=r"shape \[1, 80\]; expected a sequence length 2..77"):
        _check_text_shapes(t, [(1, 77), (1, 80)], 77)
    with pytest.raises(InputContractError, match=r"expected the full length \[1, 77\]"):
        _check_text_shapes(t, [(1, 16), (1, 32)], 77)
    with pytest.raises(InputContractError, match="rank 2"):
        _check_text_shapes(t, [(1, 77), (1, 16, 1)], 77)
    assert _check_text_shapes(t, [(1, 77), (1, 8), (4, 16)], 77) == TextShapes(77, (8, 77), ((4, 16),))
