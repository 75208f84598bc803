"""The checksum a model file carries of itself, written by the converters and verified at load.

Nothing in a ``.tflite`` (or ``.onnx``) guards its weights: a bit flipped by a
damaged download or an SD card changes the vectors and nothing notices. So the
converters record a checksum in the file's own metadata (the custom metadata
entry :data:`CHECKSUM_KEY`, in ONNX files inside the ``metadata_props``), and
every task verifies it when it opens the file: on a thread while the
interpreter is built (which parses the bytes with its own verifier), and
before any contract check, inference or result. A mismatch is a
:class:`~edge_embedder.errors.ModelLoadError`; a file without the record loads
as before (a debug message says it was not verified).

The record is the text ``edge_embedder.checksum/1 chunked-crc32=<8 hex digits>``.
Scheme 1: the file is cut into consecutive 8 MiB chunks, each gets its CRC-32
(zlib's, as zip and PNG use), computed with the record's own 8 hex digits
read as ``"0"`` characters; the digest is the CRC-32 of the chunks' CRCs (4
bytes each, big-endian). It covers every other byte of the file: graph,
weights, metadata, packed files. CRC-32 is the standard guard against
accidental damage; it is no signature (nothing stored in a file can stop
someone who rewrites it, checksum included). It is computed several times
faster than SHA-256 here, and more so on boards without SHA instructions (a
Raspberry Pi 4), and the chunks are checked on several threads (zlib releases
the GIL): ``benchmarks/bench_checksum.py``, ``benchmarks/results/checksum.md``.

Editing the metadata with :func:`~edge_embedder.metadata.populate_tflite_metadata`
keeps a file sealed (a record in the metadata it writes is recomputed);
anything else that changes a sealed file must call :func:`seal_checksum` again.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from typing import Optional, Union

from ..errors import ModelLoadError

__all__ = ["CHECKSUM_KEY", "CHECKSUM_PLACEHOLDER", "CHECKSUM_RECORD_PREFIX", "seal_checksum", "verify_checksum",
           "find_checksum_record", "model_checksum"]

log = logging.getLogger("edge_embedder")

#: The custom metadata entry holding the checksum record.
CHECKSUM_KEY = "edge_embedder.checksum"
_MAGIC = b"edge_embedder.checksum/1 chunked-crc32="
#: The record's text before its digest (scheme 1).
CHECKSUM_RECORD_PREFIX = _MAGIC
_DIGEST_LEN = 8
_ZEROS = b"0" * _DIGEST_LEN
#: What the writers put in the entry before :func:`seal_checksum` fills in the digest.
CHECKSUM_PLACEHOLDER = _MAGIC + _ZEROS
_CHUNK = 8 << 20
_HEX = re.compile(rb"[0-9a-f]{8}")

Buffer = Union[bytes, bytearray, memoryview]


def _chunk_crc(view: memoryview, start: int, stop: int, masked: tuple[int, int]) -> int:
    m0, m1 = masked
    if m1 <= start or m0 >= stop:
        return zlib.crc32(view[start:stop])
    a, b = max(start, m0), min(stop, m1)
    crc = zlib.crc32(view[start:a])
    crc = zlib.crc32(_ZEROS[: b - a], crc)
    return zlib.crc32(view[b:stop], crc)


def model_checksum(data: Buffer, digest_at: int, threads: Optional[int] = None) -> str:
    """The scheme-1 digest (8 hex digits) of ``data`` whose record's digest starts at byte ``digest_at``.

    ``threads``: chunks checked at once (default: min(4, cores) from 4 chunks on, else 1); the result does
    not depend on it.
    """
    view = memoryview(data).cast("B")
    n = len(view)
    bounds = [(a, min(n, a + _CHUNK)) for a in range(0, n, _CHUNK)] or [(0, 0)]
    masked = (digest_at, digest_at + _DIGEST_LEN)
    # Threads only pay off for large files (measured: slower than one thread below ~4 chunks on 2 busy cores).
    default = min(4, os.cpu_count() or 1) if len(bounds) >= 4 else 1
    workers = min(len(bounds), threads if threads is not None else default)
    if workers <= 1:
        crcs = [_chunk_crc(view, a, b, masked) for a, b in bounds]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge_embedder-checksum") as pool:
            crcs = list(pool.map(lambda ab: _chunk_crc(view, ab[0], ab[1], masked), bounds))
    return f"{zlib.crc32(b''.join(c.to_bytes(4, 'big') for c in crcs)):08x}"


def _tflite_metadata_range(data: bytes) -> Optional[tuple[int, int]]:
    """Where the bytes of a TFLite file's ``TFLITE_METADATA`` buffer are (None: not found / not readable)."""
    from flatbuffers import number_types as nt

    from .flatbuffer import FlatTable

    try:
        root = FlatTable.root(data)
        buffers_field = root._off(4)
        for entry in root.tables(6):  # Metadata: name 0, buffer 1
            if entry.string(0) != "TFLITE_METADATA":
                continue
            idx = entry.scalar(1, nt.Uint32Flags)
            buf = FlatTable(data, root.tab.Indirect(root.tab.Vector(buffers_field) + 4 * idx))
            o = buf._off(0)  # Buffer: data 0, offset 1, size 2
            if o:
                start = buf.tab.Vector(o)
                return start, start + buf.tab.VectorLen(o)
            offset, size = buf.scalar(1, nt.Uint64Flags), buf.scalar(2, nt.Uint64Flags)
            if offset > 1:
                return int(offset), int(offset + size)
            return None
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    return None


def find_checksum_record(data: Buffer, source: str = "<model>") -> Optional[int]:
    """Byte offset of the checksum record (its ``edge_embedder.checksum/1`` text) in a model file, or None.

    TFLite: looked for in the metadata buffer (where the converters put it; the whole file when that
    buffer cannot be located); ONNX: from the end (``metadata_props`` follow the graph). An ONNX file
    without the record costs one scan for the entry's name.

    Raises:
      ModelLoadError: the entry's name is there but not a well-formed record (a damaged file).
    """
    raw = bytes(data) if not isinstance(data, bytes) else data
    tflite = len(raw) >= 8 and raw[4:8] == b"TFL3"
    key = CHECKSUM_KEY.encode("ascii")
    if tflite:
        span = _tflite_metadata_range(raw)
        if span is not None:
            pos = raw.find(_MAGIC, span[0], span[1])
            if pos >= 0:
                return pos
            if raw.find(key, span[0], span[1]) < 0:
                return None  # a readable metadata buffer without the entry: no scan of the weights
    if (raw.find(key) if tflite else raw.rfind(key)) < 0:
        return None
    pos = raw.find(_MAGIC) if tflite else raw.rfind(_MAGIC)
    if pos < 0:
        raise ModelLoadError(f"{source}: the model's checksum record is damaged (its {CHECKSUM_KEY} entry holds no "
                             f"{_MAGIC.decode()}... record): the file is corrupt")
    return pos


def seal_checksum(model: Buffer) -> bytes:
    """Fill in the digest of a model file whose metadata holds :data:`CHECKSUM_PLACEHOLDER` (or a stale record).

    Raises:
      ModelLoadError: the file holds no checksum record, or more than one.
    """
    data = bytearray(model)
    pos = find_checksum_record(data)
    if pos is None:
        raise ModelLoadError(f"cannot seal: the model holds no {CHECKSUM_KEY} record ({CHECKSUM_PLACEHOLDER.decode()!r})")
    if bytes(data).count(_MAGIC) != 1:
        raise ModelLoadError(f"cannot seal: the model holds {bytes(data).count(_MAGIC)} checksum records, expected 1")
    at = pos + len(_MAGIC)
    data[at : at + _DIGEST_LEN] = model_checksum(data, at).encode("ascii")
    return bytes(data)


def verify_checksum(model: Buffer, source: str = "<model>") -> Optional[str]:
    """Verify the checksum a model file carries; return its digest (8 hex digits), or None when it carries none.

    Raises:
      ModelLoadError: the record is damaged, a placeholder never sealed, or the digest does not match
        (the file changed after it was written: a damaged download or storage, or an edit).
    """
    pos = find_checksum_record(model, source)
    if pos is None:
        log.debug("%s: no checksum record (converted before edge_embedder recorded one): integrity not verified",
                  source)
        return None
    at = pos + len(_MAGIC)
    recorded = bytes(model[at : at + _DIGEST_LEN])
    if not _HEX.fullmatch(recorded):
        raise ModelLoadError(f"{source}: the model's checksum record is damaged ({recorded[:16]!r}...): the file is corrupt")
    actual = model_checksum(model, at)
    if recorded == _ZEROS:
        raise ModelLoadError(f"{source}: the model's checksum record was never filled in: seal the file with "
                             "edge_embedder.metadata.seal_checksum(data) after writing its metadata")
    if actual.encode("ascii") != recorded:
        raise ModelLoadError(
            f"{source}: checksum mismatch: the file records {recorded.decode()}, its bytes give "
            f"{actual}: the model file is damaged (an incomplete download, a failing SD card) or was changed "
            "after it was written; get a fresh copy (if you edited it on purpose, reseal it with "
            "edge_embedder.metadata.seal_checksum)")
    return actual
