"""Non-finite model outputs are never handed back: a typed error for one call, a skipped-and-listed row in batches."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image as PILImage

from edge_embedder import (
    BaseOptions,
    ImageClassifier,
    ImageClassifierOptions,
    ImageEmbedder,
    ImageEmbedderOptions,
    RunningMode,
    TextEmbedder,
)
from edge_embedder.cli import main as cli
from edge_embedder.errors import ModelError, ModelOutputError
from edge_embedder.folder import embed_dir
from edge_embedder.search import EmbeddingIndex

from .robust_models import PIXELS, SIDE, gather_image_model, image_model, text_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)
BRIGHT = RNG.integers(1, 256, (SIDE, SIDE, 3), dtype=np.uint8)  # no zero pixel: log() stays finite
BLACK = np.zeros((SIDE, SIDE, 3), np.uint8)  # log(0) = -inf; x @ w = 0


def _w(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 1.0, (PIXELS, n)).astype(np.float32) / PIXELS


def _embedder(path, mode=RunningMode.IMAGE, callback=None, **kw) -> ImageEmbedder:
    return ImageEmbedder.create_from_options(ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=path), running_mode=mode, result_callback=callback, **kw))


# -- the weights make the output non-finite --------------------------------------------------------------


@pytest.mark.parametrize("poison,count", [(np.nan, "1 NaN value"), (np.inf, "1 infinite value"),
                                          (-np.inf, "1 infinite value"), (3e38, "1 infinite value")])
def test_a_non_finite_output_is_a_model_output_error(tmp_path, poison, count):
    w = _w()
    w[:, 2] = poison  # 3e38 * 192 pixels overflows float32: finite weights, infinite output
    with _embedder(image_model(tmp_path / "m.onnx", [w])) as e:
        with pytest.raises(ModelOutputError, match=count) as info:
            e.embed(BRIGHT)
        assert info.value.head_index == 0 and "head 0 ('head0')" in str(info.value)
        assert isinstance(info.value, ModelError) and isinstance(info.value, RuntimeError)
        for l2, q in ((True, False), (True, True)):  # never normalized or quantized into a number either
            with _embedder(image_model(tmp_path / "m2.onnx", [w]), l2_normalize=l2, quantize=q) as e2:
                with pytest.raises(ModelOutputError):
                    e2.embed(BRIGHT)


def test_every_nan_is_counted_and_the_first_named(tmp_path):
    w = _w(8)
    w[:, 3] = np.nan
    w[:, 5] = np.inf
    with _embedder(image_model(tmp_path / "m.onnx", [w])) as e:
        with pytest.raises(ModelOutputError, match=r"1 NaN and 1 infinite values of 8 \(first at index 3\)"):
            e.embed(BRIGHT)


def test_the_bad_head_is_named_and_good_models_are_unaffected(tmp_path):
    bad = _w(3, 1)
    bad[0, :] = np.nan
    with _embedder(image_model(tmp_path / "two.onnx", [_w(4), bad])) as e:
        with pytest.raises(ModelOutputError, match="head 1") as info:
            e.embed(BRIGHT)
        assert info.value.head_index == 1
    with _embedder(image_model(tmp_path / "ok.onnx", [_w(4), _w(3, 1)])) as e:
        res = e.embed(BRIGHT)
        want = BRIGHT.reshape(1, -1).astype(np.float64) @ _w(4).astype(np.float64)
        np.testing.assert_allclose(res.embeddings[0].embedding, want[0], rtol=1e-5)


def test_video_and_live_stream_modes_do_not_deliver_a_nan(tmp_path):
    path = image_model(tmp_path / "log.onnx", [_w()], log=True)
    with _embedder(path, RunningMode.VIDEO) as e:
        assert np.isfinite(e.embed_for_video(BRIGHT, 1).embeddings[0].embedding).all()
        with pytest.raises(ModelOutputError):
            e.embed_for_video(BLACK, 2)
    got = []
    done = threading.Event()

    def callback(result, image, ts):
        got.append(ts)
        if ts == 3:
            done.set()

    with _embedder(path, RunningMode.LIVE_STREAM, callback) as e:
        e.embed_async(BRIGHT, 1)
        e.embed_async(BLACK, 2)
        e.embed_async(BRIGHT, 3)
        done.wait(10)
    stats = e.live_stream_stats
    assert 2 not in got and 3 in got
    assert stats.processed + stats.dropped + stats.failed == 3 and stats.processed == len(got)


@pytest.mark.parametrize("batch", ["batch", 1], ids=["dynamic batch", "batch 1"])
def test_batches_skip_and_list_the_image_the_model_made_nan(tmp_path, batch):
    path = image_model(tmp_path / "log.onnx", [_w()], log=True, batch=batch)
    images = [BRIGHT, BLACK, BRIGHT[::-1].copy(), BLACK, BRIGHT[:, ::-1].copy()]
    with _embedder(path) as e:
        items = list(e.iter_embed(images, batch_size=4))
        assert [i.index for i in items] == list(range(5))
        assert [type(i.error).__name__ if i.error else None for i in items] == \
            [None, "ModelOutputError", None, "ModelOutputError", None]
        assert all(np.isfinite(i.result.embeddings[0].embedding).all() for i in items if i.result)
        single = e.embed(images[2]).embeddings[0].embedding
        np.testing.assert_allclose(items[2].result.embeddings[0].embedding, single, rtol=1e-6)
        with pytest.raises(ModelOutputError, match=r"image 1 \(<ndarray>\)"):
            e.embed_batch(images)


@pytest.mark.parametrize("batch", ["batch", 1], ids=["dynamic batch", "batch 1"])
def test_an_interpreter_failing_at_run_time_is_a_typed_error_not_its_own(tmp_path, batch):
    path = gather_image_model(tmp_path / "g.onnx", rows=100, batch=batch)
    dark = np.full((SIDE, SIDE, 3), 50, np.uint8)  # indices < 100: fine
    with _embedder(path) as e:
        assert np.isfinite(e.embed(dark).embeddings[0].embedding).all()
        with pytest.raises(ModelOutputError, match="the model failed to run"):
            e.embed(BRIGHT)  # pixels up to 255: the Gather fails inside ONNX Runtime
        items = list(e.iter_embed([dark, BRIGHT, dark], batch_size=1))
        assert [type(i.error).__name__ if i.error else None for i in items] == [None, "ModelOutputError", None]
        items = list(e.iter_embed([dark, BRIGHT, dark, dark], batch_size=2))  # a failed batch: its images listed
        assert [i.index for i in items] == [0, 1, 2, 3]
        assert [i.error is None for i in items] == ([False, False, True, True] if batch == "batch" else
                                                    [True, False, True, True])
        assert e.embed(dark).embeddings  # the embedder still works afterwards


# -- classifiers ---------------------------------------------------------------------------------------


def _classifier(path, **kw) -> ImageClassifier:
    return ImageClassifier.create_from_options(ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path),
                                                                      **kw))


LABELS = ["tench", "goldfish", "shark", "ray"]


def test_a_classifier_never_returns_a_nan_score(tmp_path):
    w = _w()
    w[:, 1] = np.nan
    path = image_model(tmp_path / "c.onnx", [w], labels=[LABELS], softmax=True)
    for kw in ({}, {"max_results": 1}, {"category_allowlist": ["tench"]}):  # softmax spreads the NaN to every score
        with _classifier(path, **kw) as c:
            with pytest.raises(ModelOutputError, match="scores of head 0"):
                c.classify(BRIGHT)
    with _classifier(image_model(tmp_path / "v.onnx", [w], labels=[LABELS]), running_mode=RunningMode.VIDEO) as c:
        with pytest.raises(ModelOutputError):
            c.classify_for_video(BRIGHT, 0)
    with _classifier(image_model(tmp_path / "t.onnx", [w], labels=[LABELS]), score_threshold=0.5) as c:
        with pytest.raises(ModelOutputError):  # a threshold must not quietly drop the NaN class either
            c.classify(BRIGHT)


@pytest.mark.parametrize("transformation,weights_sign", [("LOG", -1.0), ("INVERSE_LOGISTIC", 50.0)])
def test_a_calibration_undefined_for_the_raw_scores_is_an_error_not_nan(tmp_path, transformation, weights_sign):
    # LOG of negative scores, INVERSE_LOGISTIC of scores > 1: TFLite Support's formula gives NaN there.
    w = _w() * weights_sign
    csv = "\n".join("1.0,1.0,0.0" for _ in LABELS) + "\n"
    path = image_model(tmp_path / "cal.onnx", [w], labels=[LABELS], calibration=(transformation, csv))
    with _classifier(path) as c:
        with pytest.raises(ModelOutputError, match=f"calibrated scores.*{transformation}"):
            c.classify(BRIGHT)
    good = image_model(tmp_path / "good.onnx", [_w()], labels=[LABELS], calibration=("LOG", csv), softmax=True)
    with _classifier(good) as c:
        scores = [x.score for x in c.classify(BRIGHT).classifications[0].categories]
        assert all(0 < s < 1 for s in scores)


def test_cli_classify_prints_no_nan_and_exits_3(tmp_path, capsys):
    w = _w()
    w[:, 0] = np.nan
    model = image_model(tmp_path / "c.onnx", [w], labels=[LABELS])
    img = tmp_path / "a.png"
    PILImage.fromarray(BRIGHT).save(img)
    assert cli(["classify", str(img), "--model", str(model)]) == 3
    out, err = capsys.readouterr()
    assert out == "" and "nan" not in out.lower()
    lines = err.splitlines()  # the skipped image, then the verdict: one line each
    assert len(lines) == 2 and "skipped" in lines[0] and "1 NaN value" in lines[0], err
    assert "unusable values for every image" in lines[1] and "Traceback" not in err
    assert cli(["classify", str(img), "--model", str(model), "--format", "json"]) == 3
    assert capsys.readouterr().out == ""


def test_cli_embed_lists_the_nan_image_and_keeps_the_good_one(tmp_path, capsys):
    model = image_model(tmp_path / "log.onnx", [_w()], log=True)
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    PILImage.fromarray(BRIGHT).save(good)
    PILImage.fromarray(BLACK).save(bad)
    assert cli(["embed", str(good), str(bad), "--model", str(model)]) == 1
    out, err = capsys.readouterr()
    records = json.loads(out)  # strict JSON: no NaN anywhere
    assert "embeddings" in records[0] and records[1]["error"]["type"] == "ModelOutputError"
    assert "NaN" not in json.dumps(records[0])
    assert "skipped" in err
    assert cli(["embed", str(bad), "--model", str(model)]) == 3
    assert "unusable values for every image" in capsys.readouterr().err


# -- folders, indexes and Ray -----------------------------------------------------------------------------


def _folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, arr in (("a.png", BRIGHT), ("b_black.png", BLACK), ("c.png", BRIGHT[::-1].copy())):
        PILImage.fromarray(arr).save(folder / name)
    return folder


@pytest.mark.parametrize("log,reason", [(True, "NaN"), (False, "all zeros")], ids=["nan", "zero vector"])
def test_embed_dir_stores_no_unusable_vector_and_lists_it(tmp_path, log, reason):
    model = image_model(tmp_path / "m.onnx", [_w()], log=log)
    folder = _folder(tmp_path)
    out = tmp_path / "out.npz"
    with _embedder(model) as e:
        report = embed_dir(e, folder, out, model_path=model, progress=False)
    assert report.embedded == 2 and report.model_errors == 1
    assert [p.endswith("b_black.png") for p, _ in report.skipped] == [True]
    assert reason in report.skipped[0][1] or ("infinite" in report.skipped[0][1] and reason == "NaN")
    tsv = (tmp_path / "out.npz.skipped.tsv").read_text()
    assert "b_black.png" in tsv
    index = EmbeddingIndex.load(out)
    assert sorted(p.rsplit("/", 1)[1] for p in index.paths) == ["a.png", "c.png"]
    assert all(np.isfinite(h.score) for h in index.search(index.vector(0), 5))


def test_cli_embed_dir_with_a_model_that_fails_every_image_exits_3(tmp_path, capsys):
    w = _w()
    w[:, 0] = np.nan
    model = image_model(tmp_path / "m.onnx", [w])
    assert cli(["embed-dir", str(_folder(tmp_path)), "-o", str(tmp_path / "o.npz"), "--model", str(model),
                "--no-progress"]) == 3
    assert "unusable vector for every image" in capsys.readouterr().err


def test_ray_callable_and_writer_skip_and_list_unusable_rows(tmp_path):
    pytest.importorskip("pyarrow")
    from edge_embedder.integrations.ray import EmbedImages, write_index_parquet

    model = image_model(tmp_path / "log.onnx", [_w()], log=True)
    mapper = EmbedImages(str(model))
    out = mapper({"image": np.stack([BRIGHT, BLACK, BRIGHT]), "path": np.array(["a", "b", "c"])})
    assert [bool(e) for e in out["error"]] == [False, True, False]
    assert "NaN" in out["error"][1] or "infinite" in out["error"][1]

    good = out["embedding"][0]
    rows = np.stack([good, np.full_like(good, np.nan), np.zeros_like(good), good * 17.6, good])

    class Dataset:  # what write_index_parquet reads from a Ray dataset
        def iter_batches(self, **kw):
            yield {"path": np.array(["ok1", "nan", "zero", "raw", "ok2"]), "embedding": rows,
                   "error": np.array(["", "", "", "", ""], dtype=object)}

    report = write_index_parquet(Dataset(), tmp_path / "o.parquet", model=str(model), normalized=True)
    assert report.rows == 2
    reasons = dict(report.errors)
    assert set(reasons) == {"nan", "zero", "raw"}
    assert "NaN" in reasons["nan"] and "all zeros" in reasons["zero"] and "norm 17.6" in reasons["raw"]
    assert EmbeddingIndex.load(tmp_path / "o.parquet").paths == ["ok1", "ok2"]


# -- text ----------------------------------------------------------------------------------------------


def test_text_embeddings_are_never_nan(tmp_path):
    path = text_model(tmp_path / "t.onnx", nan_ids=[2368])  # "cat</w>"
    with TextEmbedder.create_from_model_path(path) as t:
        assert np.isfinite(t.embed("a photo of a dog").embeddings[0].embedding).all()
        with pytest.raises(ModelOutputError):
            t.embed("a photo of a cat")
        for batch_size in (1, 8):
            with pytest.raises(ModelOutputError):
                t.embed_batch(["a dog", "a cat", "a car"], batch_size=batch_size)
