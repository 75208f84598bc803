"""embed-dir: a folder of photos with bad files, symlink loops and interruptions."""

from __future__ import annotations

import os
import shutil
import struct
import zlib

import numpy as np
import pytest

from edge_embedder import OptionsError
from edge_embedder.cli import main
from edge_embedder.folder import Interrupted, embed_dir, list_image_files

from .conftest import DATA, FP32_MODEL


def _png_bomb(path):
    """A tiny PNG whose header claims 30000 x 30000 pixels (900 MP)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture()
def photo_dir(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for name in ("chelsea", "coffee", "astronaut"):
        shutil.copy(DATA / f"{name}.png", root / f"{name}.png")
    shutil.copy(DATA / "rocket.png", root / "sub" / "rocket.png")
    shutil.copy(DATA / "chelsea.png", os.path.join(os.fsencode(root / "sub"), b"caf\xe9-chelsea.png"))  # non-UTF-8 name
    (root / "zero.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    data = (DATA / "coffee.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 3])
    _png_bomb(root / "bomb.png")
    os.symlink(root, root / "sub" / "loop")  # a folder symlink loop
    os.symlink(root / "missing.png", root / "dangling.png")
    return root


GOOD = 5  # chelsea, coffee, astronaut, sub/rocket, sub/caf\xe9-chelsea


def test_listing_cuts_symlink_loops_and_reports_dangling_links(photo_dir):
    files, problems = list_image_files(photo_dir)
    assert len(files) == len(set(os.path.realpath(f) for f in files)) == 9
    assert [p for p, _ in problems] == [str(photo_dir / "dangling.png")]


def test_embed_dir_embeds_every_good_image_and_reports_the_rest(photo_dir, tmp_path, fp32_embedder):
    out = tmp_path / "out.npz"
    report = embed_dir(fp32_embedder, photo_dir, out, model_path=FP32_MODEL, progress=False)
    assert report.embedded == GOOD
    skipped = {os.path.basename(p): reason for p, reason in report.skipped}
    assert set(skipped) == {"zero.jpg", "notes.txt", "truncated.png", "bomb.png", "dangling.png"}
    assert "empty file" in skipped["zero.jpg"] and "decompression bomb" in skipped["bomb.png"]
    with np.load(out) as z:
        paths, emb = list(z["paths"]), z["embeddings"]
        assert emb.shape == (GOOD, 1280) and emb.dtype == np.float32
        assert str(z["model_sha256"]) and str(z["head_name"]) == "embedding"
    assert any(os.fsencode(p).endswith(b"caf\xe9-chelsea.png") for p in paths)
    for p, v in zip(paths, emb):
        np.testing.assert_array_equal(v, fp32_embedder.embed(os.fsencode(p).decode("utf-8", "surrogateescape")).embeddings[0].embedding)
    tsv = (tmp_path / "out.npz.skipped.tsv").read_bytes().decode("utf-8", "surrogateescape").splitlines()
    assert tsv[0] == "path\treason" and len(tsv) == 6
    assert not list(tmp_path.glob(".out.npz*")) and not (tmp_path / "out.npz.partial.npz").exists()


class _InterruptAfter:
    """Delegates to a real embedder and raises KeyboardInterrupt after n images; counts work done."""

    def __init__(self, inner, n=None):
        self.inner, self.n, self.seen = inner, n, 0
        self.model_spec = inner.model_spec
        self.decode_tag = inner.decode_tag

    def iter_embed(self, images, *args, **kw):
        for item in self.inner.iter_embed(images, *args, **kw):
            if self.n is not None and self.seen == self.n:
                raise KeyboardInterrupt
            self.seen += 1
            yield item


def test_interrupt_writes_a_checkpoint_and_resume_finishes_without_recomputing(photo_dir, tmp_path, fp32_embedder):
    out = tmp_path / "out.npz"
    with pytest.raises(Interrupted) as exc:
        embed_dir(_InterruptAfter(fp32_embedder, n=4), photo_dir, out, model_path=FP32_MODEL, progress=False)
    assert not out.exists()  # never a half-written output
    partial = tmp_path / "out.npz.partial.npz"
    assert exc.value.report.checkpoint == partial
    with np.load(partial) as z:
        done_before = len(z["paths"])
    assert done_before >= 2

    counting = _InterruptAfter(fp32_embedder)
    report = embed_dir(counting, photo_dir, out, model_path=FP32_MODEL, resume=True, progress=False)
    assert report.resumed == done_before and report.resumed + report.embedded == GOOD
    assert counting.seen == 9 - done_before  # only the unfinished files were looked at
    full = embed_dir(fp32_embedder, photo_dir, tmp_path / "full.npz", model_path=FP32_MODEL, progress=False)
    with np.load(out) as a, np.load(tmp_path / "full.npz") as b:
        assert sorted(a["paths"]) == sorted(b["paths"])
        order = {p: i for i, p in enumerate(b["paths"])}
        for p, v in zip(a["paths"], a["embeddings"]):
            np.testing.assert_array_equal(v, b["embeddings"][order[p]])
    assert full.embedded == GOOD


def test_resume_refuses_another_models_checkpoint(photo_dir, tmp_path, fp32_embedder, int8_embedder):
    from .conftest import INT8_MODEL

    out = tmp_path / "out.npz"
    embed_dir(fp32_embedder, photo_dir, out, model_path=FP32_MODEL, progress=False)
    with pytest.raises(OptionsError, match="another model"):
        embed_dir(int8_embedder, photo_dir, out, model_path=INT8_MODEL, resume=True, progress=False)
    with pytest.raises(OptionsError, match="--resume"):
        embed_dir(fp32_embedder, photo_dir, out, model_path=FP32_MODEL, progress=False)


def test_parquet_output(photo_dir, tmp_path, fp32_embedder):
    pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    embed_dir(fp32_embedder, photo_dir, out, model_path=FP32_MODEL, progress=False)
    t = pq.read_table(out)
    assert t.num_rows == GOOD and t.schema.metadata[b"head_name"] == b"embedding"


def test_cli_exit_status_says_whether_anything_was_skipped(photo_dir, tmp_path, capsys):
    assert main(["embed-dir", str(photo_dir), "-o", str(tmp_path / "a.npz"), "--no-progress"]) == 1
    assert "skipped 5" in capsys.readouterr().err
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(DATA / "coffee.png", clean / "coffee.png")
    assert main(["embed-dir", str(clean), "-o", str(tmp_path / "b.npz"), "--no-progress"]) == 0
    assert main(["embed-dir", str(clean), "-o", str(tmp_path / "b.npz"), "--no-progress"]) == 2  # exists, no --resume
    assert main(["embed-dir", str(clean), "-o", str(tmp_path / "b.csv"), "--no-progress"]) == 2
