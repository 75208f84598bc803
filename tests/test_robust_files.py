"""Files: stale temporary files of dead writers are removed by the next write; damaged packed files are named."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from edge_embedder import ImageClassifier, MetadataError
from edge_embedder.files import atomic_write, discard, publish, remove_stale_temp_files, write_beside
from edge_embedder.metadata import read_tflite_metadata
from edge_embedder.metadata.tflite import read_packed_files
from edge_embedder.search import EmbeddingIndex

from .conftest import DATA, MODELS, ROOT

CLASSIFIER = MODELS / "efficientnet_lite0_classifier_fp32.tflite"


def _age(path, seconds: float = 60.0) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _temps(folder, name: str) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.startswith(f".{name}.") and p.endswith(".tmp"))


# -- stale temporary files -----------------------------------------------------------------------------


def test_a_writer_killed_mid_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "index.npz"
    code = ("import sys, time\n"
            "from edge_embedder.files import atomic_write\n"
            "def write(f):\n"
            "    f.write(b'x' * 1_000_000); f.flush(); print('writing', flush=True); time.sleep(60)\n"
            "atomic_write(sys.argv[1], write)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "writing"
    (leftover,) = _temps(tmp_path, "index.npz")
    # While the writer lives, its file is never touched, however old it looks.
    _age(tmp_path / leftover)
    atomic_write(target, b"first")
    assert leftover in _temps(tmp_path, "index.npz")
    child.send_signal(signal.SIGKILL)  # kill -9: no cleanup of its own
    child.wait()
    assert _temps(tmp_path, "index.npz") == [leftover] and (tmp_path / leftover).stat().st_size == 1_000_000
    atomic_write(target, b"second")
    assert _temps(tmp_path, "index.npz") == [] and target.read_bytes() == b"second"


def test_only_the_dead_writers_temp_files_of_that_target_are_removed(tmp_path):
    target = tmp_path / "out.npz"
    stale = [tmp_path / f".out.npz.{r}.tmp" for r in ("abcd1234", "zz_9yy8x")]
    young = tmp_path / ".out.npz.young123.tmp"
    other = tmp_path / ".other.npz.abcd1234.tmp"
    lookalikes = [tmp_path / ".out.npz.toolongname.tmp", tmp_path / ".out.npz.abcd1234.tmp.keep",
                  tmp_path / "out.npz.abcd1234.tmp"]
    for p in (*stale, young, other, *lookalikes):
        p.write_bytes(b"left over")
    for p in (*stale, other, *lookalikes):
        _age(p)
    removed = remove_stale_temp_files(target)
    assert sorted(removed) == sorted(stale)
    assert young.exists() and other.exists() and all(p.exists() for p in lookalikes)


def test_temp_files_held_by_this_process_are_left_alone(tmp_path):
    target = tmp_path / "model.tflite"
    tmp = write_beside(target, b"in progress")  # locked until published or discarded
    _age(tmp)
    atomic_write(tmp_path / "model.tflite", b"another writer")  # cleans stale ones first
    assert tmp.exists()
    other = write_beside(target, b"second")
    discard(other)
    assert not other.exists()
    publish(tmp, target)
    assert target.read_bytes() == b"in progress" and _temps(tmp_path, "model.tflite") == []


def test_index_save_and_embed_dir_clean_up_after_a_killed_run(tmp_path, fp32_embedder):
    from edge_embedder.folder import embed_dir

    index = EmbeddingIndex.from_arrays(["a", "b"], np.eye(2, 4, dtype=np.float32))
    stale = tmp_path / ".saved.npz.deadbeef.tmp"
    stale.write_bytes(b"\0" * 4096)
    _age(stale)
    index.save(tmp_path / "saved.npz")
    assert not stale.exists()
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes((DATA / "chelsea.png").read_bytes())
    out = tmp_path / "photos.npz"
    stale_ckpt = tmp_path / ".photos.npz.partial.npz.x1y2z3w4.tmp"
    stale_out = tmp_path / ".photos.npz.k9k9k9k9.tmp"
    for p in (stale_ckpt, stale_out):
        p.write_bytes(b"\0" * 4096)
        _age(p)
    embed_dir(fp32_embedder, photos, out, model_path=MODELS / "efficientnet_lite0_fp32.tflite", progress=False,
              checkpoint_every=1)
    assert not stale_ckpt.exists() and not stale_out.exists()


# -- packed files (the zip appended to a .tflite) ------------------------------------------------


def _zip_at(data: bytes) -> int:
    return data.find(b"PK\x03\x04")


def test_a_crc_corrupt_packed_file_is_reported_as_damaged_not_missing(tmp_path):
    data = CLASSIFIER.read_bytes()
    at = data.find(b"goldfish")  # inside labels.txt, stored uncompressed
    bad = bytearray(data)
    bad[at] ^= 0x01
    with pytest.raises(MetadataError, match="packed file 'labels.txt' is damaged .*CRC") as info:
        read_tflite_metadata(bytes(bad))
    assert "not packed" not in str(info.value)


def test_a_second_member_with_the_same_name_is_an_error(tmp_path):
    data = CLASSIFIER.read_bytes()
    sink = io.BytesIO(data)
    with zipfile.ZipFile(sink, "a") as z:
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("labels.txt", "\n".join(["x"] * 1000) + "\n")
    with pytest.raises(MetadataError, match=r"more than one file named \['labels.txt'\]"):
        read_tflite_metadata(sink.getvalue())
    with pytest.raises(MetadataError, match="more than one file named"):
        read_packed_files(sink.getvalue())


def test_a_missing_or_truncated_zip_says_so(tmp_path):
    data = CLASSIFIER.read_bytes()
    flat = data[: _zip_at(data)]  # the flatbuffer alone: the metadata names labels.txt
    with pytest.raises(MetadataError, match="carries no readable zip of packed files"):
        read_tflite_metadata(flat)
    cut = data[:-30]  # the zip's end record is gone
    with pytest.raises(MetadataError, match="carries no readable zip|damaged"):
        read_tflite_metadata(cut)
    sink = io.BytesIO()
    sink.write(flat)
    with zipfile.ZipFile(sink, "a") as z:
        z.writestr("other.txt", "not the labels")
    with pytest.raises(MetadataError, match=r"not packed in the model file \(packed: \['other.txt'\]\)"):
        read_tflite_metadata(sink.getvalue())


def test_an_unreadable_member_is_a_metadata_error(tmp_path):
    data = CLASSIFIER.read_bytes()
    flat = data[: _zip_at(data)]
    sink = io.BytesIO()
    sink.write(flat)
    with zipfile.ZipFile(sink, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("labels.txt", "\n".join(f"c{i}" for i in range(1000)) + "\n")
    deflated = bytearray(sink.getvalue())
    start = _zip_at(bytes(deflated)) + 30 + len("labels.txt")
    deflated[start : start + 8] = b"\xff" * 8  # garbage compressed stream
    with pytest.raises(MetadataError, match="labels.txt"):
        read_tflite_metadata(bytes(deflated))


def test_the_classifier_cli_turns_a_damaged_packed_file_into_exit_3(tmp_path, capsys):
    from edge_embedder.cli import main as cli
    from edge_embedder.metadata import seal_checksum

    data = bytearray(CLASSIFIER.read_bytes())
    data[data.find(b"goldfish")] ^= 0x01
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(seal_checksum(bytes(data)))  # resealed: the zip's own CRC must still catch it
    with pytest.raises(MetadataError, match="damaged"):
        ImageClassifier.create_from_model_path(bad)
    assert cli(["classify", str(DATA / "chelsea.png"), "--model", str(bad)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "labels.txt" in err
