"""Indexes that lie, queries that would be reinterpreted, and close(): typed errors, never a wrong answer."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

from edge_embedder import EmbedderClosedError
from edge_embedder import search as search_mod
from edge_embedder.cli import main as cli
from edge_embedder.errors import EmbeddingMismatchError, IndexFormatError, OptionsError
from edge_embedder.folder import embed_dir
from edge_embedder.search import INDEX_FORMAT, EmbeddingIndex, write_index_file

from .conftest import DATA, FP32_MODEL

D = 8
_FLOAT32_TOLERANCE = 1e-5  # float32 dot products vs float64


def _unit_rows(n: int = 6, d: int = D, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _npz(path, matrix, *, normalized=None, inv=None, paths=None, **extra):
    """An index file as another tool (or a damaged disk) might have written it: no checks."""
    n = matrix.shape[0]
    arrays = {"paths": np.array(paths if paths is not None else [f"img{i}.jpg" for i in range(n)], dtype=str)
              if n else np.zeros(0, "<U1"), "embeddings": matrix, "format": np.array(INDEX_FORMAT)}
    if normalized is not None:
        arrays["normalized"] = np.array("1" if normalized else "0")
    if inv is not None:
        arrays["inv_norms"] = inv
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


# -- rows that cannot be scored --------------------------------------------------------------------


@pytest.mark.parametrize("poison,why", [
    (np.nan, "1 NaN value"), (np.inf, "1 infinite value"), (-np.inf, "1 infinite value"),
    ("zero", "all zeros"), ("huge", r"norm 5\.66e\+35 outside"), ("tiny", r"norm 2\.83e-35 outside"),
])
@pytest.mark.parametrize("normalized", [None, False, True])
@pytest.mark.parametrize("mmap", [True, False])
def test_a_row_that_cannot_be_scored_is_refused_at_load_naming_it(tmp_path, poison, why, normalized, mmap):
    m = _unit_rows() * (1.0 if normalized else 3.0)
    if poison == "zero":
        m[4] = 0
    elif poison == "huge":
        m[4] = 2e35
    elif poison == "tiny":
        m[4] = 1e-35
    else:
        m[4, 2] = poison
    if normalized and poison in ("huge", "tiny"):
        why = "norm"
    path = _npz(tmp_path / "bad.npz", m, normalized=normalized)
    with pytest.raises(IndexFormatError, match=rf"row 4 \(img4.jpg\): {why}"):
        EmbeddingIndex.load(path, mmap=mmap)


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_a_normalized_flag_on_raw_vectors_is_refused(tmp_path, storage):
    raw = (_unit_rows() * 17.6).astype(storage)  # cosines of 17.6 otherwise
    with pytest.raises(IndexFormatError, match=r"row 0 \(img0.jpg\): norm 17\.[56].*says its vectors are L2-normalised"):
        EmbeddingIndex.load(_npz(tmp_path / "lie.npz", raw, normalized=True))
    # The same vectors declared raw are fine: normalised on the fly, exact cosines.
    index = EmbeddingIndex.load(_npz(tmp_path / "raw.npz", raw, normalized=False))
    q = _unit_rows(1, seed=5)[0]
    want = raw.astype(np.float64) @ q / np.linalg.norm(raw.astype(np.float64), axis=1)
    got = {h.index: h.score for h in index.search(q, 6)}
    np.testing.assert_allclose([got[i] for i in range(6)], want, atol=2e-3 if storage == "float16" else 1e-5)
    assert max(got.values()) <= 1.0


def test_int8_rows_whose_stored_norms_lie_are_refused(tmp_path):
    m = np.clip(np.round(_unit_rows() * 128), -128, 127).astype(np.int8)
    inv = (1 / np.linalg.norm(m.astype(np.float64), axis=1)).astype(np.float32)
    EmbeddingIndex.load(_npz(tmp_path / "ok.npz", m, normalized=True, inv=inv))
    inv[3] *= 2  # scores of row 3 doubled
    with pytest.raises(IndexFormatError, match=r"inv_norms: row 3 \(img3.jpg\)"):
        EmbeddingIndex.load(_npz(tmp_path / "bad.npz", m, normalized=True, inv=inv))
    m[1] = 0
    with pytest.raises(IndexFormatError, match=r"row 1 \(img1.jpg\): all zeros"):
        EmbeddingIndex.load(_npz(tmp_path / "zero.npz", m, normalized=True))


@pytest.mark.parametrize("shape", [(0, 0), (3, 0)])
def test_a_zero_dimension_index_is_refused(tmp_path, shape):
    with pytest.raises(IndexFormatError, match="at least 1 dimension"):
        EmbeddingIndex.load(_npz(tmp_path / "z.npz", np.zeros(shape, np.float32)))
    with pytest.raises(OptionsError, match="at least 1 dimension"):
        EmbeddingIndex.from_arrays([f"p{i}" for i in range(shape[0])], np.zeros(shape, np.float32))


@pytest.mark.parametrize("name,value", [("sizes", np.array(["1", "2", "3", "4", "5", "6"])),
                                        ("mtimes_ns", np.full(6, 1.5)), ("inv_norms", np.arange(6))])
def test_side_arrays_of_the_wrong_type_are_refused(tmp_path, name, value):
    extra = {name: value, **({"mtimes_ns": np.zeros(6, np.int64)} if name == "sizes" else {})}
    extra.update({"sizes": np.zeros(6, np.int64)} if name == "mtimes_ns" else {})
    with pytest.raises(IndexFormatError, match=name):
        EmbeddingIndex.load(_npz(tmp_path / "s.npz", _unit_rows(), normalized=True, **extra))


def test_from_arrays_and_the_writer_refuse_the_same_rows(tmp_path):
    for bad in (np.nan, 0.0, 1e36):
        m = _unit_rows()
        m[2] = bad
        with pytest.raises(EmbeddingMismatchError, match=r"row 2 \(p2\)"):
            EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], m)
        with pytest.raises(EmbeddingMismatchError, match="not written"):
            write_index_file(tmp_path / "w.npz", [f"p{i}" for i in range(6)], m, search_mod.IndexMeta())
        assert not (tmp_path / "w.npz").exists()
    ones = np.ones((2, 4), np.float32)
    with pytest.raises(EmbeddingMismatchError, match="says its vectors are L2-normalised"):
        write_index_file(tmp_path / "w.npz", ["a", "b"], ones, search_mod.IndexMeta(normalized=True))


def test_a_file_changed_under_an_open_index_never_scores_beyond_one(tmp_path):
    m = _unit_rows(40)
    path = tmp_path / "live.npz"
    write_index_file(path, [f"p{i}" for i in range(40)], m, search_mod.IndexMeta(normalized=True))
    index = EmbeddingIndex.load(path)  # memory-mapped: the checks ran on what was there then
    assert index.memory_mapped and index.search(m[0], 1)[0].index == 0
    data = bytearray(path.read_bytes())
    at = bytes(data).find(m[7].tobytes())
    data[at : at + 4] = np.float32(np.nan).tobytes()
    with open(path, "r+b") as f:  # in place: the mapping sees it
        f.write(data)
    with pytest.raises(IndexFormatError, match=r"row 7 \(p7\) scores nan.*changed after the index was opened"):
        index.search(m[3], 3)
    data[at : at + 4] = np.float32(40.0).tobytes()
    with open(path, "r+b") as f:
        f.write(data)
    with pytest.raises(IndexFormatError, match=r"row 7 \(p7\) scores"):
        index.search(np.eye(1, D, 0, dtype=np.float32)[0], 3)


def test_an_index_answered_by_its_graph_checks_rows_when_it_reads_them(tmp_path, monkeypatch):
    pytest.importorskip("usearch")
    m = _unit_rows(300, seed=3)
    path = tmp_path / "ann.npz"
    write_index_file(path, [f"p{i}" for i in range(300)], m, search_mod.IndexMeta(normalized=True, build_id="b1"))
    search_mod.build_index_sidecar(path)
    # Damage one row after the graph was built (a failing disk): the lazy checks must still catch it.
    data = bytearray(path.read_bytes())
    at = bytes(data).find(m[11].tobytes())
    data[at : at + 8] = np.array([np.inf, np.inf], np.float32).tobytes()
    path.write_bytes(bytes(data))
    monkeypatch.setattr(search_mod, "APPROXIMATE_MIN_ELEMENTS", 10)
    index = EmbeddingIndex.load(path)  # opening reads no rows
    assert index.approximate
    hits = index.search(m[200], 3)  # a query far from row 11 is fine
    assert hits[0].index == 200 and all(abs(h.score) <= 1 for h in hits)
    with pytest.raises(IndexFormatError, match=r"row 11 \(p11\): 2 infinite values"):
        index.search(m[11], 3)
    with pytest.raises(IndexFormatError, match=r"row 11"):
        index.search(m[200], 3, exact=True)
    with pytest.raises(IndexFormatError, match=r"row 11"):
        EmbeddingIndex.load(path, approximate="never")


# -- Parquet --------------------------------------------------------------------------------------


def _parquet(path, columns: dict, metadata=None):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)
    return path


def test_ragged_parquet_rows_are_refused_even_when_the_total_divides(tmp_path):
    pa = pytest.importorskip("pyarrow")
    # 2 rows of 3 and 5 values: 8 values, divisible by 2 rows. Reshaped, row 0 would get 1 of row 1's values.
    col = pa.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]], pa.list_(pa.float32()))
    path = _parquet(tmp_path / "r.parquet", {"path": ["a", "b"], "embedding": col})
    with pytest.raises(IndexFormatError, match=r"rows of different lengths \(row 0 has 3 values, row 1 \(b\) has 5"):
        EmbeddingIndex.load(path)
    col = pa.array([[1.0, 0.0], [0.0, 1.0, 0.0], [1.0]], pa.list_(pa.float32()))  # 6 values, 3 rows
    with pytest.raises(IndexFormatError, match="rows of different lengths"):
        EmbeddingIndex.load(_parquet(tmp_path / "r3.parquet", {"path": ["a", "b", "c"], "embedding": col}))
    col = pa.array([[1.0, 0.0], [0.0, 1.0]], pa.large_list(pa.float64()))  # equal lengths: fine
    index = EmbeddingIndex.load(_parquet(tmp_path / "ok.parquet", {"path": ["a", "b"], "embedding": col}))
    assert index.dim == 2 and [h.path for h in index.search([0.1, 1.0], 2)] == ["b", "a"]


@pytest.mark.parametrize("column,values,match", [
    ("size", ["1", "2"], "size column: expected integers"),
    ("mtime_ns", [1.5, 2.5], "mtime_ns column: expected integers"),
    ("size", [1, None], "size column: 1 null values"),
])
def test_parquet_side_columns_of_the_wrong_type_are_typed_errors(tmp_path, column, values, match):
    pa = pytest.importorskip("pyarrow")
    cols = {"path": ["a", "b"], "embedding": pa.array([[1.0, 0.0], [0.0, 1.0]], pa.list_(pa.float32(), 2)),
            "size": pa.array([1, 2], pa.int64()), "mtime_ns": pa.array([1, 2], pa.int64())}
    cols[column] = pa.array(values)
    with pytest.raises(IndexFormatError, match=match):
        EmbeddingIndex.load(_parquet(tmp_path / "s.parquet", cols))


@pytest.mark.parametrize("embedding,match", [
    ([[1.0, None], [0.0, 1.0]], "null values inside the vectors"),
    ([["x", "y"], ["z", "w"]], "expected float or int8 values"),
    ([[1e300, 1.0], [0.0, 1.0]], "1 infinite value"),
    ([[float("nan"), 1.0], [0.0, 1.0]], "1 NaN value"),
])
def test_parquet_vectors_that_cannot_be_scored_are_refused(tmp_path, embedding, match):
    pytest.importorskip("pyarrow")
    with pytest.raises(IndexFormatError, match=match):
        EmbeddingIndex.load(_parquet(tmp_path / "v.parquet", {"path": ["a", "b"], "embedding": embedding}))


def test_parquet_paths_must_be_text_and_present(tmp_path):
    pa = pytest.importorskip("pyarrow")
    emb = pa.array([[1.0, 0.0], [0.0, 1.0]], pa.list_(pa.float32(), 2))
    with pytest.raises(IndexFormatError, match="path column: expected strings"):
        EmbeddingIndex.load(_parquet(tmp_path / "p.parquet", {"path": [1, 2], "embedding": emb}))
    with pytest.raises(IndexFormatError, match="1 null paths"):
        EmbeddingIndex.load(_parquet(tmp_path / "n.parquet", {"path": ["a", None], "embedding": emb}))


# -- resumed outputs ----------------------------------------------------------------------------------


def _photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        shutil.copy(DATA / f"{name}.png", photos / f"{name}.png")
    return photos


def test_embed_dir_resume_never_carries_a_bad_row(tmp_path, fp32_embedder):
    photos = _photos(tmp_path)
    out = tmp_path / "o.npz"
    embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False)
    good = EmbeddingIndex.load(out, mmap=False)
    want = {p: good.vector(i) for i, p in enumerate(good.paths)}
    # A tool that does not check its rows rewrites the output with a NaN row for coffee: not an index ...
    z = dict(np.load(out))
    coffee = good.paths.index(str(photos / "coffee.png"))
    z["embeddings"][coffee, 5] = np.nan
    np.savez(out, **z)
    with pytest.raises(IndexFormatError, match="coffee.png"):
        EmbeddingIndex.load(out)
    # ... and --resume embeds coffee again instead of carrying the bad row.
    report = embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False, resume=True)
    assert (report.repaired, report.embedded, report.resumed) == (1, 1, 2)
    fixed = EmbeddingIndex.load(out)
    for i, p in enumerate(fixed.paths):
        np.testing.assert_allclose(fixed.vector(i), want[p], atol=_FLOAT32_TOLERANCE)


def test_embed_dir_resume_keeps_nothing_from_an_output_damaged_on_disk(tmp_path, fp32_embedder):
    photos = _photos(tmp_path)
    out = tmp_path / "o.npz"
    embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False)
    want = EmbeddingIndex.load(out, mmap=False)
    vectors = {p: want.vector(i) for i, p in enumerate(want.paths)}
    data = bytearray(out.read_bytes())
    at = bytes(data).find(np.load(out)["embeddings"][1].tobytes())
    data[at + 2] ^= 0x10  # one flipped bit in a vector: still finite, but the zip CRC no longer matches
    out.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="is damaged .*CRC.*none of its 3 rows is kept"):
        report = embed_dir(fp32_embedder, photos, out, model_path=FP32_MODEL, progress=False, resume=True)
    assert (report.repaired, report.embedded, report.resumed) == (3, 3, 0)
    fixed = EmbeddingIndex.load(out, mmap=False)  # CRC-checked read
    for i, p in enumerate(fixed.paths):
        np.testing.assert_allclose(fixed.vector(i), vectors[p], atol=_FLOAT32_TOLERANCE)


# -- queries --------------------------------------------------------------------------------------


@pytest.fixture()
def index():
    return EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], _unit_rows())


@pytest.mark.parametrize("query,match", [
    (np.array([200, 10, 0, 0, 0, 0, 0, 0], np.uint8), "uint8 array is ambiguous"),
    (np.zeros((2, D), np.float32), r"expected one vector.*got shape \(2, 8\); use search_batch"),
    (np.zeros((1, 1, D), np.float32), r"got shape \(1, 1, 8\)"),
    (np.zeros((D, 1), np.float32), r"got shape \(8, 1\)"),
    ([], "got an empty one"),
    (np.zeros((1, 0), np.float32), "got an empty one"),
    (3.0, "got a scalar"),
    ("a photo", "expected a numeric vector"),
    ([[1.0, 2.0], [3.0]], "expected a numeric vector"),
    ([True] * D, "expected a numeric vector, got dtype bool"),
    ([None] * D, "expected a numeric vector, got dtype object"),
    ([1.0] * 7, "has 7 dimensions, the index has 8"),
    ([np.nan] + [1.0] * 7, "NaN or infinite"),
    ([0.0] * D, "zero-norm"),
])
def test_queries_that_are_not_one_unambiguous_vector_are_refused(index, query, match):
    with pytest.raises(EmbeddingMismatchError, match=match):
        index.search(query, 3)


def test_unambiguous_queries_are_accepted_and_mean_what_they_say(index):
    rows = _unit_rows()
    q = rows[2] + 0.05
    want = [h.index for h in index.search(q, 6)]
    assert want[0] == 2
    assert [h.index for h in index.search(q[None], 6)] == want  # a (1, D) row
    assert [h.index for h in index.search(q.astype(np.float64) * 1e300, 6)] == want  # no overflow on the way
    assert [h.index for h in index.search(q.astype(np.float64) * 1e-300, 6)] == want  # nor underflow
    assert [h.index for h in index.search(list(map(float, q)), 6)] == want
    assert [h.index for h in index.search((q * 100).astype(np.int64), 6)][:2] == want[:2]  # integer values
    q8 = np.clip(np.round(q / np.linalg.norm(q) * 128), -128, 127).astype(np.int8)
    assert [h.index for h in index.search(q8, 6)] == [h.index for h in index.search(q8.astype(np.float32), 6)]
    assert [h.index for h in index.search(q8.tobytes(), 6)] == [h.index for h in index.search(q8, 6)]
    assert [h.index for h in index.search(q8.view(np.uint8).view(np.int8), 6)][0] == 2  # the documented fix


def test_search_batch_takes_a_matrix_one_vector_or_nothing(index):
    rows = _unit_rows()
    both = index.search_batch(rows[[1, 4]], 2)
    assert [b[0].index for b in both] == [1, 4]
    assert [b[0].index for b in index.search_batch(rows[1], 2)] == [1]
    assert index.search_batch(np.zeros((0, D), np.float32), 2) == []
    with pytest.raises(EmbeddingMismatchError, match=r"\(Q, 8\) matrix, got shape \(1, 2, 8\)"):
        index.search_batch(rows[None, :2], 2)
    with pytest.raises(EmbeddingMismatchError, match=r"row 1"):
        index.search_batch(np.stack([rows[0], np.zeros(D, np.float32)]), 2)


@pytest.mark.parametrize("vector,match", [("[]", "got an empty one"), ("[[1, 2], [3, 4]]", "expected one vector"),
                                          ("[NaN, 1, 1, 1, 1, 1, 1, 1]", "NaN or infinite"),
                                          ('["a", "b"]', "expected a .npy vector or a JSON list")])
def test_cli_search_vector_errors_are_one_line(tmp_path, capsys, vector, match):
    path = tmp_path / "i.npz"
    EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], _unit_rows()).save(path)
    (tmp_path / "q.json").write_text(vector)
    assert cli(["search", str(path), "--vector", str(tmp_path / "q.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and __import__("re").search(match, err), err


def test_cli_search_refuses_a_uint8_npy_vector(tmp_path, capsys):
    path = tmp_path / "i.npz"
    EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], _unit_rows()).save(path)
    np.save(tmp_path / "q.npy", np.full(D, 200, np.uint8))
    assert cli(["search", str(path), "--vector", str(tmp_path / "q.npy")]) == 2
    assert "ambiguous" in capsys.readouterr().err


# -- close() ------------------------------------------------------------------------------------------


def test_a_closed_index_is_closed(tmp_path):
    path = tmp_path / "i.npz"
    EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], _unit_rows()).save(path)
    with EmbeddingIndex.load(path) as index:
        assert index.search(_unit_rows()[0], 1)[0].index == 0
    assert index.closed and not index.memory_mapped
    for call in (lambda: index.search(_unit_rows()[0], 1), lambda: index.search_batch(_unit_rows(), 1),
                 lambda: index.vector(0), lambda: index.paths, lambda: index.path(0),
                 lambda: index.save(tmp_path / "again.npz"), lambda: index.set_search_mode(False),
                 lambda: index.search_text(object(), "a cat"), lambda: index.search_image(object(), DATA / "chelsea.png")):
        with pytest.raises(EmbedderClosedError):
            call()
    assert (index.size, index.dim, index.dtype) == (6, D, "float32")  # what it was stays readable
    assert "closed" in repr(index)
    index.close()  # idempotent


def test_close_while_other_threads_search_gives_results_or_closed_errors_only(monkeypatch):
    n, d = 40_000, 64
    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    index = EmbeddingIndex.from_arrays([f"p{i}" for i in range(n)], x)
    monkeypatch.setattr(EmbeddingIndex, "threads", 2)  # the thread pool is in use while close() runs
    monkeypatch.setattr(search_mod, "_MIN_ROWS_PER_THREAD", 1000)
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def searcher(seed: int) -> None:
        q = np.random.default_rng(seed).standard_normal(d)
        start.wait()
        for _ in range(200):
            try:
                hits = index.search(q, 3)
                assert len(hits) == 3 and all(-1 <= h.score <= 1 for h in hits)
                outcomes.append("result")
            except EmbedderClosedError:
                outcomes.append("closed")
                return
            except BaseException as exc:  # anything else is the bug this test is about
                outcomes.append(f"{type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(0.05)
    index.close()
    for t in threads:
        t.join(30)
    foreign = [o for o in outcomes if o not in ("result", "closed")]
    assert not foreign, foreign
    assert outcomes.count("closed") == 4  # every thread was told, none kept answering after close()
    with pytest.raises(EmbedderClosedError):
        index.search(x[0], 1)


def test_close_waits_for_a_search_in_progress(monkeypatch):
    index = EmbeddingIndex.from_arrays([f"p{i}" for i in range(6)], _unit_rows())
    inside, release = threading.Event(), threading.Event()
    real = EmbeddingIndex._scores

    def slow(self, q):
        inside.set()
        release.wait(10)
        return real(self, q)

    monkeypatch.setattr(EmbeddingIndex, "_scores", slow)
    result: list = []
    t = threading.Thread(target=lambda: result.append(index.search(_unit_rows()[1], 1)))
    t.start()
    inside.wait(10)
    closer = threading.Thread(target=index.close)
    closer.start()
    time.sleep(0.2)
    assert closer.is_alive()  # still waiting for the search
    release.set()
    closer.join(10)
    t.join(10)
    assert not closer.is_alive() and result[0][0].index == 1


def test_zero_shot_image_vectors_are_read_only_when_unambiguous():
    from edge_embedder.zero_shot import zero_shot_scores

    table = _unit_rows(3)
    want = zero_shot_scores(table[1] * 3, table, 100.0)
    assert int(np.argmax(want)) == 1 and abs(float(want.sum()) - 1) < 1e-9
    np.testing.assert_allclose(zero_shot_scores(table[1][None] * 3, table, 100.0), want, rtol=1e-12)
    for bad, match in ((np.full(D, 200, np.uint8), "got uint8"), (np.ones(D, np.int8), "got int8"),
                       (table[:2], r"expected one vector, got shape \(2, 8\)"), (np.full(D, np.nan), "norm nan"),
                       (np.zeros(D), "norm 0")):
        with pytest.raises(EmbeddingMismatchError, match=match):
            zero_shot_scores(bad, table, 100.0)
