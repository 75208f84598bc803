"""Ray Data integration on a local 2-CPU Ray cluster: the same vectors as embed-dir, bad files reported."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edge_embedder.folder import embed_dir, list_image_files
from edge_embedder.search import EmbeddingIndex

from .conftest import FP32_MODEL
from .test_folder import GOOD, photo_dir  # noqa: F401  (the embed-dir test folder, reused as a fixture)

ray = pytest.importorskip("ray", reason="needs the [ray] extra")
pytest.importorskip("pyarrow")

pytestmark = pytest.mark.slow  # starts a local Ray cluster (~5 s); still run in CI

_COSINE_FLOOR = 0.99999  # per image, Ray vs embed-dir (same model file, same decoder)
BAD = {"zero.jpg", "notes.txt", "truncated.png", "bomb.png"}  # regular files that are not usable images


@pytest.fixture(scope="module")
def local_ray():
    from edge_embedder.integrations.ray import init_local

    init_local(num_cpus=2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _reference(folder, tmp_path, fp32_embedder):
    out = tmp_path / "ref.npz"
    embed_dir(fp32_embedder, folder, out, model_path=FP32_MODEL, progress=False)
    index = EmbeddingIndex.load(out)
    return {p: index.vector(i) for i, p in enumerate(index.paths)}


def _check(ref, parquet):
    index = EmbeddingIndex.load(parquet)
    got = {p: index.vector(i) for i, p in enumerate(index.paths)}
    assert set(got) == set(ref) and len(got) == GOOD
    for p, v in got.items():
        cos = float(np.dot(v, ref[p]))
        assert cos >= _COSINE_FLOOR, f"{p}: cosine {cos}"
    return index


def test_ray_paths_two_actors_equal_embed_dir(local_ray, photo_dir, tmp_path, fp32_embedder):  # noqa: F811
    from edge_embedder.integrations.ray import EmbedImages, write_index_parquet

    ref = _reference(photo_dir, tmp_path, fp32_embedder)
    files, _ = list_image_files(photo_dir)
    ds = ray.data.from_items([{"path": os.fsencode(f)} for f in files])  # bytes: keeps the non-UTF-8 name exact
    out = ds.map_batches(EmbedImages, fn_constructor_kwargs={"model": str(FP32_MODEL)},
                         compute=ray.data.ActorPoolStrategy(size=2), batch_size=4, num_cpus=1)
    report = write_index_parquet(out, tmp_path / "ray.parquet", model=str(FP32_MODEL))
    assert report.rows == GOOD
    assert {os.path.basename(p) for p, _ in report.errors} == BAD
    assert all(reason for _, reason in report.errors)
    tsv = (tmp_path / "ray.parquet.skipped.tsv").read_text(errors="surrogateescape").splitlines()
    assert len(tsv) == 1 + len(BAD)
    index = _check(ref, tmp_path / "ray.parquet")
    assert index.space == f"sha256:{index.model_sha256}" and index.head_name == "embedding"
    assert index.search_image(fp32_embedder, files[0], k=1)[0].path == files[0]


def test_ray_bytes_shipped_model_one_actor(local_ray, photo_dir, tmp_path, fp32_embedder):  # noqa: F811
    from edge_embedder.integrations.ray import EmbedImages, write_index_parquet

    ref = _reference(photo_dir, tmp_path, fp32_embedder)
    files, _ = list_image_files(photo_dir)
    rows = [{"path": os.fsencode(f), "bytes": open(f, "rb").read()} for f in files]
    model_ref = ray.put(FP32_MODEL.read_bytes())  # the model through the object store
    out = ray.data.from_items(rows).map_batches(EmbedImages, fn_constructor_kwargs={"model": model_ref},
                                                compute=ray.data.ActorPoolStrategy(size=1), batch_size=3, num_cpus=1)
    report = write_index_parquet(out, tmp_path / "bytes.parquet", model=model_ref)
    assert report.rows == GOOD and {os.path.basename(p) for p, _ in report.errors} == BAD
    _check(ref, tmp_path / "bytes.parquet")


def test_embed_images_directly_reports_bad_rows(photo_dir, fp32_embedder):  # noqa: F811
    """The callable itself, without Ray: an error column, NaN rows, other columns passed through."""
    from edge_embedder.integrations.ray import EmbedImages

    embed = EmbedImages(str(FP32_MODEL))
    good, bad = photo_dir / "coffee.png", photo_dir / "truncated.png"
    batch = {"path": np.array([str(good), str(bad)], dtype=object), "id": np.array([7, 8])}
    out = embed(batch)
    assert list(out["id"]) == [7, 8] and out["embedding"].shape == (2, 1280)
    assert out["error"][0] == "" and "truncated.png" in out["error"][1]
    assert np.isnan(out["embedding"][1]).all()
    ref = fp32_embedder.embed(good).embeddings[0].embedding
    np.testing.assert_allclose(out["embedding"][0], ref / np.linalg.norm(ref), atol=1e-6)
    images = np.empty(2, dtype=object)
    images[0], images[1] = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32)  # float pixels: refused
    arrays = embed({"image": images})
    assert arrays["error"][0] == "" and "float32" in arrays["error"][1]
