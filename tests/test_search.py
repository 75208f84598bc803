"""EmbeddingIndex, embedding-space ids, incremental embed-dir and the search / index CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from edge_embedder import ImageEmbedder
from edge_embedder import search as search_mod
from edge_embedder.cli import main
from edge_embedder.containers import l2_normalize, quantize
from edge_embedder.errors import (
    EmbeddingMismatchError,
    EmbeddingSpaceMismatchError,
    IndexFormatError,
    MetadataError,
    MissingDependencyError,
    OptionsError,
)
from edge_embedder.folder import embed_dir
from edge_embedder.metadata import EMBEDDING_SPACE_KEY, ModelMetadata
from edge_embedder.search import EmbeddingIndex, embedder_space_id, embedding_space_id

from .conftest import DATA, FP32_MODEL, INT8_MODEL, ROOT

_SIMILARITY_TOLERANCE = 1e-4  # model outputs across CPUs / XNNPACK builds
_FLOAT32_TOLERANCE = 1e-5  # float32 dot products vs a float64 reference
_FLOAT16_TOLERANCE = 2e-3  # float16 storage rounding of unit vectors
_INT8_TOLERANCE = 0.02  # scalar quantization (1/128 steps) of unit vectors
# chelsea.png as the query against the four bundled photos (shipped fp32 model):
_CHELSEA_SCORES = {"chelsea": 1.0, "astronaut": 0.178988, "rocket": 0.149462, "coffee": 0.123701}

NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for name in NAMES:
        shutil.copy(DATA / f"{name}.png", root / f"{name}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.fixture()
def built(photos, tmp_path, fp32_embedder):
    out = tmp_path / "photos.npz"
    embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False)
    return out


def _clustered(n, d, seed=0, q=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(4, n // 50), d)).astype(np.float32)
    pick = rng.integers(0, len(centres), n + q)
    x = centres[pick] + 0.6 * rng.standard_normal((n + q, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def _reference_top(x, q, k):
    s = x.astype(np.float64) @ q.astype(np.float64)
    s /= np.linalg.norm(x.astype(np.float64), axis=1) * np.linalg.norm(q)
    order = np.lexsort((np.arange(len(s)), -s))[:k]
    return order, s[order]


# -- embedding-space ids --------------------------------------------------------------


def test_embedding_space_id_prefers_the_models_metadata_entry():
    assert embedding_space_id("ab" * 32, None, 1) == f"sha256:{'ab' * 32}#1"
    md = ModelMetadata(custom_metadata=((EMBEDDING_SPACE_KEY, b"clip-vit-b32/openai"),))
    assert embedding_space_id("ab" * 32, md, 0) == "clip-vit-b32/openai"
    assert embedding_space_id("ab" * 32, md, 2) == "clip-vit-b32/openai#2"
    assert embedding_space_id("ab" * 32, ModelMetadata(), 0) == f"sha256:{'ab' * 32}"
    for bad in (b"\xff\xfe", b"  "):
        with pytest.raises(MetadataError):
            embedding_space_id("ab" * 32, ModelMetadata(custom_metadata=((EMBEDDING_SPACE_KEY, bad),)), 0)


def test_embedder_space_id_hashes_the_model_file(fp32_embedder, int8_embedder):
    assert embedder_space_id(fp32_embedder) == f"sha256:{_sha(FP32_MODEL)}"
    assert embedder_space_id(int8_embedder) == f"sha256:{_sha(INT8_MODEL)}"
    # One rule: the index's id of head 0 is the embedder's own embedding_space_id.
    assert embedder_space_id(fp32_embedder) == fp32_embedder.embedding_space_id


def test_embed_dir_output_records_space_sizes_and_mtimes(built, photos):
    with np.load(built) as z:
        assert str(z["embedding_space"]) == f"sha256:{_sha(FP32_MODEL)}"
        assert str(z["model_sha256"]) == _sha(FP32_MODEL) and str(z["head_name"]) == "embedding"
        for p, size, mtime in zip(z["paths"], z["sizes"], z["mtimes_ns"]):
            st = os.stat(str(p))
            assert (size, mtime) == (st.st_size, st.st_mtime_ns)


# -- exact search -----------------------------------------------------------------------


def test_embed_dir_output_is_an_index_and_scores_are_cosines(built, fp32_embedder):
    index = EmbeddingIndex.load(built)
    assert index.memory_mapped and len(index) == 4 and index.dim == 1280 and not index.approximate
    hits = index.search_image(fp32_embedder, DATA / "chelsea.png", k=10)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    query = fp32_embedder.embed(DATA / "chelsea.png").embeddings[0]
    for h in hits:
        name = os.path.basename(h.path)[:-4]
        ref = ImageEmbedder.cosine_similarity(query, fp32_embedder.embed(h.path).embeddings[0])
        assert h.score == pytest.approx(ref, abs=_FLOAT32_TOLERANCE)
        assert h.score == pytest.approx(_CHELSEA_SCORES[name], abs=_SIMILARITY_TOLERANCE)
    assert [os.path.basename(h.path) for h in hits] == ["chelsea.png", "astronaut.png", "rocket.png", "coffee.png"]


@pytest.mark.parametrize("dtype,tol", [("float32", _FLOAT32_TOLERANCE), ("float16", _FLOAT16_TOLERANCE),
                                       ("int8", _INT8_TOLERANCE)])
def test_exact_search_matches_a_float64_reference(dtype, tol, monkeypatch):
    x, q = _clustered(3000, 64, q=20)
    monkeypatch.setattr(search_mod, "_CHUNK_BYTES", 64 * 4 * 100)  # 100-row chunks, a ragged last one
    monkeypatch.setattr(search_mod, "_MIN_ROWS_PER_THREAD", 700)  # and 4 threads over disjoint row ranges
    index = EmbeddingIndex.from_arrays([f"v{i}" for i in range(len(x))], x * 3.0, dtype=dtype)  # not unit norm
    index.threads = 4
    recalls = []
    for v in q:
        ids, scores = _reference_top(x, v, 10)
        hits = index.search(v, 10)
        got = {h.index: h.score for h in hits}
        recalls.append(len(set(got) & set(ids.tolist())) / 10)
        for i, s in zip(ids, scores):
            if i in got:
                assert got[i] == pytest.approx(s, abs=tol)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].path == f"v{hits[0].index}"
    assert np.mean(recalls) >= {"float32": 1.0, "float16": 0.99, "int8": 0.9}[dtype]


def test_int8_storage_is_the_embedders_scalar_quantization(tmp_path):
    x, _ = _clustered(50, 1280)
    path = tmp_path / "i8.npz"
    EmbeddingIndex.from_arrays([f"v{i}" for i in range(50)], x * 7.0, dtype="int8").save(path)
    with np.load(path) as z:
        stored = z["embeddings"]
    assert stored.dtype == np.int8
    for row, v in zip(stored, x * 7.0):
        np.testing.assert_array_equal(row, quantize(l2_normalize(v.astype(np.float32))))


def test_batch_queries_equal_single_queries():
    x, q = _clustered(500, 32, q=7)
    index = EmbeddingIndex.from_arrays([str(i) for i in range(500)], x)
    batch = index.search_batch(q, 5)
    for v, hits in zip(q, batch):
        single = index.search(v, 5)
        assert [h.index for h in hits] == [h.index for h in single]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in single], atol=_FLOAT32_TOLERANCE)


def test_search_over_a_memory_map_does_not_copy_the_vectors(tmp_path):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux) to read RssAnon")
    rng = np.random.default_rng(1)
    n, d = 100_000, 512  # 100 MB of float16: a copy (or a float32 conversion) would be 100-200 MB of anonymous memory
    x = rng.standard_normal((n, d), dtype=np.float32)
    path = tmp_path / "big.npz"
    EmbeddingIndex.from_arrays([f"{i}" for i in range(n)], x, dtype="float16").save(path)
    q = x[12345].copy()
    del x

    def rss_anon_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    index = EmbeddingIndex.load(path)
    assert index.memory_mapped
    before = rss_anon_mb()
    hits = index.search(q, 10)
    grown = rss_anon_mb() - before
    assert hits[0].index == 12345
    assert grown < 20, f"anonymous memory grew by {grown:.0f} MB during one search"


def test_query_validation():
    index = EmbeddingIndex.from_arrays(["a", "b"], np.eye(2, 8, dtype=np.float32))
    with pytest.raises(EmbeddingMismatchError, match="dimensions"):
        index.search(np.ones(7), 1)
    with pytest.raises(EmbeddingMismatchError, match="zero-norm"):
        index.search(np.zeros(8), 1)
    with pytest.raises(OptionsError):
        index.search(np.ones(8), 0)
    assert len(index.search(np.ones(8), 10)) == 2  # k larger than the index
    q8 = quantize(l2_normalize(np.eye(1, 8, dtype=np.float32)[0]))
    assert index.search(q8, 1)[0].path == "a"  # a quantized (int8) query
    with pytest.raises(OptionsError):
        EmbeddingIndex.from_arrays(["a"], np.ones((2, 8), np.float32))
    with pytest.raises(EmbeddingMismatchError):
        EmbeddingIndex.from_arrays(["a"], np.full((1, 8), np.nan, np.float32))


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_save_and_load_round_trip(tmp_path, suffix, dtype):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    x, q = _clustered(200, 48, q=3)
    paths = [f"img/{i}.jpg" for i in range(199)] + [os.fsdecode(b"caf\xe9.jpg")]  # a non-UTF-8 name
    index = EmbeddingIndex.from_arrays(paths, x, dtype=dtype, space="test-space", model_sha256="00" * 32)
    index.save(tmp_path / f"i{suffix}")
    back = EmbeddingIndex.load(tmp_path / f"i{suffix}")
    assert back.dtype == dtype and back.space == "test-space" and back.paths == paths
    for v in q:
        assert [(h.index, h.path) for h in back.search(v, 5)] == [(h.index, h.path) for h in index.search(v, 5)]


# -- embedding spaces -------------------------------------------------------------------


def test_queries_from_another_space_are_refused(built, fp32_embedder, int8_embedder):
    index = EmbeddingIndex.load(built)
    with pytest.raises(EmbeddingSpaceMismatchError) as exc:
        index.search_image(int8_embedder, DATA / "coffee.png")
    assert isinstance(exc.value, ValueError)
    v = fp32_embedder.embed(DATA / "coffee.png").embeddings[0].embedding
    with pytest.raises(EmbeddingSpaceMismatchError):
        index.search(v, 1, space=embedder_space_id(int8_embedder))
    assert index.search(v, 1, space=embedder_space_id(fp32_embedder))[0].path.endswith("coffee.png")
    assert index.search(v, 1)[0].path.endswith("coffee.png")  # no space given: the caller's responsibility


class _FakeTextEmbedder:
    """Any object with embed(text) and an embedding_space_id is a text embedder to search_text."""

    def __init__(self, space, vector):
        self.embedding_space_id, self._v = space, vector

    def embed(self, text):
        from edge_embedder.containers import Embedding, ImageEmbedderResult

        return ImageEmbedderResult([Embedding(self._v, 0, "text")])


def test_text_queries_need_a_text_embedder_of_the_same_space(built, fp32_embedder):
    index = EmbeddingIndex.load(built)
    coffee = fp32_embedder.embed(DATA / "coffee.png").embeddings[0].embedding
    hits = index.search_text(_FakeTextEmbedder(index.space, coffee), "a cup of coffee", k=1)
    assert hits[0].path.endswith("coffee.png")
    with pytest.raises(EmbeddingSpaceMismatchError):
        index.search_text(_FakeTextEmbedder("clip-text", coffee), "a cup of coffee")
    with pytest.raises(OptionsError, match="embedding_space_id"):
        index.search_text(object(), "a cup of coffee")


# -- bad files ---------------------------------------------------------------------------


def test_truncated_or_foreign_files_give_typed_errors(built, tmp_path):
    data = built.read_bytes()
    for n in (0, 10, 200, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{n}.npz"
        bad.write_bytes(data[:n])
        with pytest.raises(IndexFormatError):
            EmbeddingIndex.load(bad)
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(IndexFormatError, match="not an embedding index"):
        EmbeddingIndex.load(tmp_path / "other.npz")
    with pytest.raises(IndexFormatError, match="no such"):
        EmbeddingIndex.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "rows.npz", paths=np.array(["a", "b"]), embeddings=np.ones((3, 4), np.float32))
    with pytest.raises(IndexFormatError, match="2 paths for 3"):
        EmbeddingIndex.load(tmp_path / "rows.npz")


def test_truncated_parquet_gives_a_typed_error(photos, tmp_path, fp32_embedder):
    pytest.importorskip("pyarrow")
    out = tmp_path / "p.parquet"
    embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False)
    assert len(EmbeddingIndex.load(out)) == 4
    data = out.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFormatError):
        EmbeddingIndex.load(tmp_path / "cut.parquet")


def test_outputs_of_older_versions_still_load_and_resume(photos, tmp_path, fp32_embedder, int8_embedder):
    vecs = np.stack([fp32_embedder.embed(photos / f"{n}.png").embeddings[0].embedding for n in NAMES[:3]])
    old = tmp_path / "old.npz"
    np.savez(old, paths=np.array([str(photos / f"{n}.png") for n in NAMES[:3]]), embeddings=vecs,
             model_sha256=np.array(_sha(FP32_MODEL)), head_name=np.array("embedding"))
    index = EmbeddingIndex.load(old)
    assert index.space is None
    assert index.search_image(fp32_embedder, photos / "coffee.png", k=1)[0].path.endswith("coffee.png")
    with pytest.raises(EmbeddingSpaceMismatchError, match="another model"):
        index.search_image(int8_embedder, photos / "coffee.png")
    report = embed_dir(fp32_embedder, photos, old, model_path=FP32_MODEL, resume=True, progress=False)
    assert (report.resumed, report.embedded) == (3, 1)
    assert EmbeddingIndex.load(old).space == embedder_space_id(fp32_embedder)


# -- incremental embed-dir ----------------------------------------------------------------


class _CountingBackend:
    """Wraps a backend and counts model invocations."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, write_input):
        self.calls += 1
        return self.inner.run(write_input)


def test_resume_updates_new_changed_and_deleted_files_without_recomputing(photos, tmp_path):
    out = tmp_path / "index.npz"
    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        counter = _CountingBackend(e._backend)
        e._backend = counter
        embed_dir(e, photos, out, model_path=FP32_MODEL, progress=False)
        assert counter.calls == 4
        shutil.copy(DATA / "rocket.png", photos / "new.png")  # new
        shutil.copy(DATA / "coffee.png", photos / "chelsea.png")  # changed content and size
        st = os.stat(photos / "rocket.png")
        os.utime(photos / "rocket.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched only
        os.unlink(photos / "astronaut.png")  # deleted
        counter.calls = 0
        report = embed_dir(e, photos, out, model_path=FP32_MODEL, resume=True, progress=False)
        assert counter.calls == 3  # new.png, chelsea.png, rocket.png; coffee.png is not recomputed
        assert (report.embedded, report.changed, report.resumed, report.removed) == (3, 2, 1, 1)
        counter.calls = 0
        again = embed_dir(e, photos, out, model_path=FP32_MODEL, resume=True, progress=False)
        assert counter.calls == 0 and again.embedded == 0 and again.resumed == 4
        ref = {os.path.basename(p): e.embed(photos / p).embeddings[0].embedding
               for p in ("chelsea.png", "coffee.png", "rocket.png", "new.png")}
    index = EmbeddingIndex.load(out)
    assert sorted(os.path.basename(p) for p in index.paths) == sorted(ref)
    for i, p in enumerate(index.paths):
        np.testing.assert_array_equal(np.asarray(index._vectors[i]), ref[os.path.basename(p)])


def test_resume_refuses_another_head_or_storage(photos, tmp_path, fp32_embedder):
    out = tmp_path / "i.npz"
    embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False, storage="int8")
    with pytest.raises(OptionsError, match="int8"):
        embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, resume=True, progress=False)
    with pytest.raises(OptionsError, match="storage"):
        embed_dir(fp32_embedder, photos, tmp_path / "j.npz", model_path=FP32_MODEL, progress=False, storage="int4")


# -- approximate search ---------------------------------------------------------------------


def test_approximate_search_recall_and_its_stored_graph(tmp_path, monkeypatch):
    pytest.importorskip("usearch")
    x, q = _clustered(4000, 64, seed=3, q=50)
    index = EmbeddingIndex.from_arrays([f"v{i}" for i in range(len(x))], x, space="s")
    path = tmp_path / "ann.npz"
    index.save(path)
    index = EmbeddingIndex.load(path, approximate="never")
    index.build_approximate(threads=2)
    assert index.approximate
    hits_a = index.search_batch(q, 10)
    hits_e = index.search_batch(q, 10, exact=True)
    recall = np.mean([len({h.index for h in a} & {h.index for h in e}) / 10 for a, e in zip(hits_a, hits_e)])
    assert recall >= 0.95
    for a, e in zip(hits_a, hits_e):  # candidates are re-scored exactly
        exact_scores = {h.index: h.score for h in e}
        for h in a:
            if h.index in exact_scores:
                assert h.score == pytest.approx(exact_scores[h.index], abs=_FLOAT32_TOLERANCE)
    index.save(path)  # with the graph: PATH.usearch + PATH.usearch.json
    assert (tmp_path / "ann.npz.usearch").exists()
    assert not EmbeddingIndex.load(path).approximate  # below the size threshold: exact
    monkeypatch.setattr(search_mod, "APPROXIMATE_MIN_ELEMENTS", 1000)
    loaded = EmbeddingIndex.load(path)
    assert loaded.approximate
    assert [h.index for h in loaded.search(q[0], 10)] == [h.index for h in index.search(q[0], 10)]
    # The index file is rewritten (as embed-dir --resume does): the graph is stale and ignored.
    EmbeddingIndex.load(path, approximate="never").save(tmp_path / "copy.npz")
    shutil.copy(tmp_path / "copy.npz", path)
    with pytest.warns(UserWarning, match="another version"):
        assert not EmbeddingIndex.load(path).approximate


def test_missing_usearch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "usearch", None)  # as if not installed
    index = EmbeddingIndex.from_arrays(["a"], np.ones((1, 4), np.float32))
    with pytest.raises(MissingDependencyError, match=r"edge-embedder\[search\]") as exc:
        index.build_approximate()
    assert isinstance(exc.value, ImportError)
    assert index.search(np.ones(4), 1)[0].path == "a"  # exact search needs nothing


def test_import_stays_light():
    code = ("import sys, edge_embedder, edge_embedder.search, edge_embedder.integrations.ray, edge_embedder.cli; "
            "heavy = [m for m in ('ray', 'usearch', 'pyarrow', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- CLI ------------------------------------------------------------------------------------


def test_cli_search_image_text_and_json(built, capsys):
    import json

    assert main(["search", str(built), "--image", str(DATA / "chelsea.png"), "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank\tscore\tpath" and len(lines) == 3
    rank, score, path = lines[1].split("\t")
    assert rank == "1" and path.endswith("chelsea.png") and float(score) == pytest.approx(1.0, abs=_SIMILARITY_TOLERANCE)
    assert main(["search", str(built), "--image", str(DATA / "coffee.png"), "--output", "json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4] and hits[0]["path"].endswith("coffee.png")
    assert set(hits[0]) == {"rank", "path", "score", "index"}


def test_cli_search_errors_are_one_line_with_exit_codes(built, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a truncated")
    cases = [
        (["--image", str(bad)], 4),
        (["--image", str(DATA / "coffee.png"), "--model", str(INT8_MODEL)], 3),  # another model's space
        (["--text", "a cat"], 2),  # no --text-model
        (["--text", "a cat", "--text-model", str(DATA / "missing.tflite")], 3),
        (["--image", str(DATA / "coffee.png"), "--text-model", str(FP32_MODEL)], 2),  # --text-model without --text
    ]
    for extra, code in cases:
        assert main(["search", str(built)] + extra) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edge-embedder: ") and "Traceback" not in err[0]
    cut = tmp_path / "cut.npz"
    cut.write_bytes(built.read_bytes()[:3000])
    assert main(["search", str(cut), "--image", str(DATA / "coffee.png")]) == 4  # an index file that cannot be used: an input error
    assert "truncated" in capsys.readouterr().err


def test_text_queries_through_the_clip_text_tower(clip_pair, photos, tmp_path, capsys):
    """An index built by CLIP's image tower answers text queries of its text tower (one embedding space)."""
    from edge_embedder import TextEmbedder

    out = tmp_path / "clip.npz"
    assert main(["index", str(photos), "-o", str(out), "--model", str(clip_pair["image"])]) == 1  # broken.jpg skipped
    capsys.readouterr()
    index = EmbeddingIndex.load(out)
    with ImageEmbedder.create_from_model_path(clip_pair["image"]) as img, \
            TextEmbedder.create_from_model_path(clip_pair["text"]) as text:
        assert index.space == img.embedding_space_id == text.embedding_space_id
        assert index.space.startswith("weights-sha256:")
        q = l2_normalize(text.embed("a photo of a cat").embeddings[0].embedding)
        want = {}
        for name in NAMES:
            v = l2_normalize(img.embed(photos / f"{name}.png").embeddings[0].embedding)
            want[name] = float(np.dot(q, v))
        hits = index.search_text(text, "a photo of a cat", k=4)
    order = sorted(want, key=lambda n: -want[n])
    assert [os.path.basename(h.path) for h in hits] == [f"{n}.png" for n in order]
    for h in hits:
        assert h.score == pytest.approx(want[os.path.basename(h.path)[:-4]], abs=_FLOAT32_TOLERANCE)
    assert main(["search", str(out), "--text", "a photo of a cat", "--text-model", str(clip_pair["text"]),
                 "--output", "json", "-k", "2"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [os.path.basename(h["path"]) for h in cli] == [f"{n}.png" for n in order[:2]]


def test_text_queries_of_another_space_are_refused(clip_pair, built, capsys):
    from edge_embedder import TextEmbedder

    with TextEmbedder.create_from_model_path(clip_pair["text"]) as text:
        with pytest.raises(EmbeddingSpaceMismatchError, match="differs from the index"):
            EmbeddingIndex.load(built).search_text(text, "a cat")
    assert main(["search", str(built), "--text", "a cat", "--text-model", str(clip_pair["text"])]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the index" in err[0]


def test_cli_search_with_a_vector_file(built, tmp_path, capsys, fp32_embedder):
    v = fp32_embedder.embed(DATA / "rocket.png").embeddings[0].embedding
    np.save(tmp_path / "q.npy", v)
    assert main(["search", str(built), "--vector", str(tmp_path / "q.npy"), "-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("rocket.png")
    assert main(["search", str(built), "--vector", str(tmp_path / "q.npy"), "--space", "other"]) == 3
    (tmp_path / "q.json").write_text("[1, 2,")
    assert main(["search", str(built), "--vector", str(tmp_path / "q.json")]) == 2
    np.save(tmp_path / "short.npy", v[:10])
    assert main(["search", str(built), "--vector", str(tmp_path / "short.npy")]) == 2


def test_cli_index_builds_an_int8_index_and_updates_it(photos, tmp_path, capsys):
    out = tmp_path / "photos.npz"
    assert main(["index", str(photos), "-o", str(out), "--dtype", "int8", "--no-progress"]) == 1  # broken.jpg
    index = EmbeddingIndex.load(out)
    assert index.dtype == "int8" and len(index) == 4
    assert main(["search", str(out), "--image", str(DATA / "astronaut.png"), "-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("astronaut.png")
    os.unlink(photos / "broken.jpg")
    os.unlink(photos / "rocket.png")
    assert main(["index", str(photos), "-o", str(out), "--dtype", "int8", "--resume", "--no-progress"]) == 0
    assert "3 unchanged, 1 removed" in capsys.readouterr().err
    assert len(EmbeddingIndex.load(out)) == 3
    assert main(["index", str(photos), "-o", str(out), "--resume", "--no-progress"]) == 2  # int8 vs float32
    assert "int8" in capsys.readouterr().err


def test_cli_index_approximate_always_writes_the_graph(photos, tmp_path, capsys):
    pytest.importorskip("usearch")
    out = tmp_path / "g.npz"
    assert main(["index", str(photos), "-o", str(out), "--approximate", "always", "--no-progress"]) == 1
    assert (tmp_path / "g.npz.usearch").exists() and (tmp_path / "g.npz.usearch.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = EmbeddingIndex.load(out, approximate="always")
    assert index.approximate
    capsys.readouterr()
    assert main(["search", str(out), "--image", str(DATA / "rocket.png"), "-k", "1", "--approximate"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("rocket.png")
