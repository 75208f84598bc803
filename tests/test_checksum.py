"""The checksum a model file carries of itself: written by the converters (every format), verified at load."""

from __future__ import annotations

import dataclasses
import logging
import zlib

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    ImageClassifier,
    ImageEmbedder,
    ImageEmbedderOptions,
    ModelLoadError,
    TextEmbedder,
    inspect_model,
)
from edge_embedder.cli import main as cli
from edge_embedder.metadata import (
    CHECKSUM_KEY,
    CHECKSUM_PLACEHOLDER,
    populate_tflite_metadata,
    read_tflite_metadata,
    seal_checksum,
    verify_checksum,
)
from edge_embedder.metadata.checksum import find_checksum_record, model_checksum

from .conftest import CONTRACT, DATA, MODELS

SHIPPED = sorted(MODELS.glob("*.tflite"))


def _flip(data: bytes, at: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[at] ^= 1 << bit
    return bytes(b)


def _record(data: bytes) -> bytes:
    pos = find_checksum_record(data)
    return data[pos : pos + len(CHECKSUM_PLACEHOLDER)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_models_carry_a_checksum_that_matches(path):
    data = path.read_bytes()
    digest = verify_checksum(data, path.name)
    assert digest is not None and len(digest) == 8
    md = read_tflite_metadata(data)
    assert md.custom(CHECKSUM_KEY) == b"edge_embedder.checksum/1 chunked-crc32=" + digest.encode()
    assert inspect_model(path)["checksum"] == {"verified": True, "scheme": "edge_embedder.checksum/1 chunked-crc32",
                                               "digest": digest}


def test_scheme_1_is_the_crc32_of_the_chunk_crc32s_with_the_digest_read_as_zeros():
    """An independent computation of the documented scheme (one thread, no chunk helper)."""
    data = (MODELS / "efficientnet_lite0_classifier_fp32.tflite").read_bytes()
    at = find_checksum_record(data) + len(b"edge_embedder.checksum/1 chunked-crc32=")
    zeroed = data[:at] + b"0" * 8 + data[at + 8 :]
    chunk = 8 << 20
    crcs = b"".join(zlib.crc32(zeroed[a : a + chunk]).to_bytes(4, "big") for a in range(0, len(zeroed), chunk))
    want = f"{zlib.crc32(crcs):08x}"
    assert len(data) > 2 * chunk and data[at : at + 8].decode() == want
    assert model_checksum(data, at, threads=1) == model_checksum(data, at, threads=3) == want


@pytest.mark.parametrize("where", ["weights", "first byte", "metadata", "packed labels", "last byte", "digest"])
def test_one_flipped_bit_anywhere_is_a_model_load_error_in_every_task(tmp_path, where):
    path = MODELS / "efficientnet_lite0_classifier_fp32.tflite"
    data = path.read_bytes()
    rec = find_checksum_record(data)
    at = {"weights": len(data) // 2, "first byte": 0, "metadata": rec - 40, "packed labels": data.find(b"tench") + 2,
          "last byte": len(data) - 1, "digest": rec + len(CHECKSUM_PLACEHOLDER) - 1}[where]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_flip(data, at, 3))
    with pytest.raises(ModelLoadError, match="checksum|damaged"):
        ImageClassifier.create_from_model_path(bad)
    with pytest.raises(ModelLoadError, match="checksum|damaged"):
        ImageEmbedder.create_from_model_path(bad)
    with pytest.raises(ModelLoadError):  # from a buffer too
        ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=BaseOptions(
            model_asset_buffer=bad.read_bytes())))
    with pytest.raises(ModelLoadError):
        inspect_model(bad)


def test_truncated_and_zeroed_copies_are_refused(tmp_path):
    data = (MODELS / "efficientnet_lite0_int8.tflite").read_bytes()
    for i, damaged in enumerate([data[: len(data) - 1], data[: len(data) // 2],
                                 data[:8192] + bytes(4096) + data[12288:]]):
        p = tmp_path / f"d{i}.tflite"
        p.write_bytes(damaged)
        with pytest.raises(ModelLoadError):
            ImageEmbedder.create_from_model_path(p)


def test_the_cli_says_so_in_one_line_with_exit_code_3(tmp_path, capsys):
    data = (MODELS / "efficientnet_lite0_classifier_fp32.tflite").read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_flip(data, 5_000_000))
    assert cli(["classify", str(DATA / "chelsea.png"), "--model", str(bad)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checksum mismatch" in err[0] and "Traceback" not in err[0]
    assert cli(["inspect", str(bad)]) == 3


def test_a_file_without_the_record_loads_as_before_with_a_debug_note(caplog):
    path = CONTRACT / "valid_float.tflite"  # written before checksums existed
    assert verify_checksum(path.read_bytes()) is None
    with caplog.at_level(logging.DEBUG, logger="edge_embedder"):
        with ImageEmbedder.create_from_model_path(path) as e:
            assert e.embed(np.zeros((8, 8, 3), np.uint8)).embeddings
    assert any("no checksum record" in r.getMessage() for r in caplog.records)
    assert inspect_model(path)["checksum"]["verified"] is False


def test_a_placeholder_never_sealed_and_a_damaged_record_are_refused():
    data = (MODELS / "efficientnet_lite0_fp32.tflite").read_bytes()
    rec = find_checksum_record(data)
    head = len(b"edge_embedder.checksum/1 chunked-crc32=")
    placeholder = data[: rec + head] + b"0" * 8 + data[rec + head + 8 :]
    with pytest.raises(ModelLoadError, match="never filled in"):
        verify_checksum(placeholder)
    not_hex = data[: rec + head] + b"Z" + data[rec + head + 1 :]
    with pytest.raises(ModelLoadError, match="record is damaged"):
        verify_checksum(not_hex)
    other_scheme = data[:rec] + b"edge_embedder.checksum/9" + data[rec + 24 :]
    with pytest.raises(ModelLoadError, match="record is damaged"):
        verify_checksum(other_scheme)


def test_editing_the_metadata_with_the_writer_keeps_the_file_sealed():
    data = (MODELS / "efficientnet_lite0_classifier_fp32.tflite").read_bytes()
    md = read_tflite_metadata(data)
    edited = populate_tflite_metadata(data, dataclasses.replace(md, name="my classifier"))
    assert read_tflite_metadata(edited).name == "my classifier"
    assert verify_checksum(edited) is not None and _record(edited) != _record(data)
    with ImageClassifier.create_from_options(__import__("edge_embedder").ImageClassifierOptions(
            base_options=BaseOptions(model_asset_buffer=edited))) as c:
        assert c.classify(DATA / "chelsea.png").classifications[0].categories[0].index == 285
    # Without the entry the writer writes an unsealed file; with the placeholder it seals a new one.
    unsealed = populate_tflite_metadata(data, dataclasses.replace(
        md, custom_metadata=[(k, v) for k, v in md.custom_metadata if k != CHECKSUM_KEY]))
    assert verify_checksum(unsealed) is None
    resealed = populate_tflite_metadata(unsealed, dataclasses.replace(
        md, custom_metadata=[*[(k, v) for k, v in md.custom_metadata if k != CHECKSUM_KEY],
                             (CHECKSUM_KEY, CHECKSUM_PLACEHOLDER)]))
    assert verify_checksum(resealed) is not None


def test_a_changed_byte_after_sealing_is_caught_and_seal_checksum_reseals():
    data = (MODELS / "efficientnet_lite0_int8.tflite").read_bytes()
    changed = _flip(data, 100_000)
    with pytest.raises(ModelLoadError, match="mismatch"):
        verify_checksum(changed)
    assert verify_checksum(seal_checksum(changed)) is not None
    with pytest.raises(ModelLoadError, match="no edge_embedder.checksum record"):
        seal_checksum((CONTRACT / "valid_float.tflite").read_bytes())
    twice = data + CHECKSUM_PLACEHOLDER
    with pytest.raises(ModelLoadError, match="2 checksum records"):
        seal_checksum(twice)


@pytest.mark.slow
@pytest.mark.parametrize("tower,fmt", [("text", "tflite"), ("text", "onnx"), ("image", "onnx"), ("image", "tflite")])
def test_the_converters_seal_every_format(clip_file, tower, fmt, tmp_path):
    path = clip_file(tower, fmt)
    data = path.read_bytes()
    assert verify_checksum(data) is not None
    assert inspect_model(path)["checksum"]["verified"] is True
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(_flip(data, len(data) // 3))
    with pytest.raises(ModelLoadError, match="checksum"):
        if tower == "text":
            TextEmbedder.create_from_model_path(bad)
        else:
            ImageEmbedder.create_from_model_path(bad)
