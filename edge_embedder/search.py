"""On-device search: top-k by cosine over ``embed-dir`` outputs.

An :class:`EmbeddingIndex` is the very file ``embed-dir`` writes (``.npz``, or
``.parquet``): ``paths``, an ``embeddings`` matrix and the model's identity.
``np.savez`` stores its members uncompressed, so the ``embeddings`` and
``paths`` arrays are memory-mapped in place: opening an index reads a few
kilobytes, and an index larger than free RAM still answers (the kernel pages
the vectors in and out; nothing is copied into anonymous memory but one chunk).

* **Cosine** is the dot product of L2-normalised vectors. Indexes built with
  ``edge-embedder index`` (or :meth:`EmbeddingIndex.save`) store normalised
  vectors; a raw ``embed-dir`` output is normalised on the fly (its inverse
  row norms are computed once when it is opened).
* **Storage**: float32, float16 (normalised) or int8, MediaPipe's scalar
  quantization of the normalised vector (``clamp(round(v * 128))``, see
  :func:`edge_embedder.containers.quantize`); int8 rows are scored against the
  float query and divided by their own norm, so the score is the cosine
  between the query and the quantized vector.
* **Exact search** (the default) is numpy: a chunked matrix-vector product
  over the memory map, then ``argpartition``. **Approximate search** (HNSW
  from the maintained ``usearch`` library, which ships aarch64 wheels) needs
  the ``[search]`` extra; it is chosen automatically for indexes of at least
  :data:`APPROXIMATE_MIN_ELEMENTS` vector elements (rows x dimensions), the
  size at which exact search stops meeting its latency goal on the reference
  machine (measured by ``benchmarks/bench_search.py``, figures in
  ``benchmarks/results/search.md``). Its graph is stored next to the index
  (``INDEX.usearch`` + ``INDEX.usearch.json``) and memory-mapped too;
  candidates it returns are re-scored exactly against the stored vectors.
* **Rows are checked**, never trusted: a row with NaN or infinite values,
  an all-zero row (no direction: its cosine is undefined), a row whose norm
  is outside :data:`NORM_RANGE` (float32 scores would overflow or lose their
  precision), or a row of an index that says its vectors are L2-normalised
  but whose norm is not 1, is an :class:`~edge_embedder.errors.IndexFormatError`
  naming the rows. :meth:`EmbeddingIndex.load` checks every row, in chunks,
  when it opens the file (an index answered by its HNSW graph checks each
  chunk or candidate row the first time it is read instead: opening such an
  index still reads a few kilobytes); no index file is written with a bad row;
  every score is checked too, so nothing outside [-1, 1] is ever returned.
* **Queries** are read only when they are unambiguous: a vector (or a
  ``(1, D)`` row) for :meth:`EmbeddingIndex.search`, a ``(Q, D)`` matrix for
  :meth:`EmbeddingIndex.search_batch`; int8 vectors are quantized embeddings;
  a uint8 array (MediaPipe's int8 bits, or unsigned values?) is refused.
* **close()** (or ``with``): searches already running finish, later calls
  raise :class:`~edge_embedder.errors.EmbedderClosedError`, and the memory
  maps, file handle and threads are released.
* **Embedding spaces**: every index records the embedding-space id of the
  model and head that made it (:func:`embedding_space_id`); queries from an
  ``ImageEmbedder``, a text embedder, or a raw vector with ``space=`` are
  refused with :class:`~edge_embedder.errors.EmbeddingSpaceMismatchError`
  when their space differs. A raw vector without ``space=`` is the caller's
  responsibility.

Only numpy is imported here; ``usearch`` and ``pyarrow`` are imported when an
approximate index or a Parquet file is used.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import uuid
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .containers import Embedding, quantize
from .errors import (
    EmbedderClosedError,
    EmbeddingMismatchError,
    EmbeddingSpaceMismatchError,
    IndexFormatError,
    MissingDependencyError,
    OptionsError,
)
from .extras import require
from .files import atomic_write, discard, publish, write_beside

__all__ = [
    "EmbeddingIndex",
    "SearchResult",
    "embedding_space_id",
    "embedder_space_id",
    "INDEX_FORMAT",
    "APPROXIMATE_MIN_ELEMENTS",
    "STORAGE_DTYPES",
    "NORM_RANGE",
    "IndexMeta",
    "row_problems",
    "build_index_sidecar",
    "write_index_file",
    "read_index_file",
    "to_storage",
    "display_path",
]

#: The ``format`` field written into index files.
INDEX_FORMAT = "edge_embedder.index/1"
#: Rows x dimensions from which ``approximate="auto"`` uses the HNSW graph (and
#: ``edge-embedder index`` builds it): about where exact float32 top-10 passes 10 ms on the 2-core
#: reference machine (100k x 512: 11-17 ms with other jobs running, 10.2 ms at load 1-2), while HNSW
#: answers in under 1 ms at recall@10 >= 0.99 (benchmarks/results/search.md, search_quiet.md).
APPROXIMATE_MIN_ELEMENTS = 50_000_000
#: Storage types of the ``embeddings`` matrix.
STORAGE_DTYPES = ("float32", "float16", "int8")
#: The L2 norms a stored row may have. Outside this range a float32 score overflows to ``inf`` or
#: underflows into subnormals (and loses its precision); embeddings have norms of about 0.1 to 1000.
NORM_RANGE = (1e-30, 1e30)
# How far from 1 the norm of a row of an index that says it is L2-normalised may be (float16
# storage rounds each value by up to 2**-11, so its norms are within 5e-4 of 1).
_UNIT_TOLERANCE = 2e-3
# A checked index cannot score beyond +-(1 + this): scores within it are clipped to +-1 (rounding),
# a score beyond it means the file changed under the index and is an IndexFormatError.
_SCORE_TOLERANCE = 2e-3

_ANN_SUFFIX = ".usearch"
_ANN_FORMAT = "edge_embedder.usearch/1"
# Rows per chunk: 1 MiB of float32 (512 rows at 512-d) stays in L2, and keeps OpenBLAS's gemv
# single-threaded: its own threads cost 10-100x under CPU contention (measured: 10k x 512 took
# 0.9 ms in 512-row chunks, 16 ms in one call, 163 ms in 1024-row chunks with another job running).
# Parallelism comes from our threads over disjoint row ranges instead.
_CHUNK_BYTES = 1 << 20
_MIN_ROWS_PER_THREAD = 8192


# -- embedding-space ids --------------------------------------------------------


def embedding_space_id(model_sha256: str, metadata: Any, head: int = 0) -> str:
    """The embedding-space id of one head of a model (the rule of ``ImageEmbedder.embedding_space_id``).

    The model's custom metadata entry ``edge_embedder.embedding_space`` when
    present (both towers of a CLIP checkpoint carry the same one), else
    ``"sha256:<model_sha256>"``; head ``h`` other than 0 adds ``"#h"``.

    Args:
      model_sha256: hex sha256 of the model file.
      metadata: the model's :class:`~edge_embedder.metadata.ModelMetadata`, or None.
      head: the output head (its index).

    Raises:
      MetadataError: the metadata entry is not UTF-8 text or is empty.
    """
    from .core.contract import declared_embedding_space
    from .core.task import embedding_space_id as space_rule

    return space_rule(model_sha256, declared_embedding_space(metadata), int(head))


def embedder_space_id(embedder: Any, head: int = 0) -> str:
    """:func:`embedding_space_id` of head ``head`` of an ``ImageEmbedder`` (its model bytes hashed once)."""
    from .core.task import embedding_space_id as space_rule

    return space_rule(embedder.model_sha256, embedder.model_spec.embedding_space, head)


def _is_model_space(space: str, model_sha256: str) -> bool:
    """Whether ``space`` is one of the fallback ids of the model with this sha256 (any head)."""
    own = f"sha256:{model_sha256}"
    return space == own or space.startswith(own + "#")


# -- results ----------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """One hit: ``rank`` (1 = best), the stored ``path``, its cosine ``score`` and its row ``index``."""

    rank: int
    path: str
    score: float
    index: int

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "path": display_path(self.path), "score": round(self.score, 6), "index": self.index}


def display_path(path: str) -> str:
    """A stored path as printable text (non-UTF-8 bytes shown as ``\\xNN``)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# -- file format ------------------------------------------------------------------


@dataclass
class IndexMeta:
    """What an index file records besides its vectors (None: unknown, e.g. an older file)."""

    model_sha256: Optional[str] = None
    head_name: Optional[str] = None
    head_index: Optional[int] = None
    embedding_space: Optional[str] = None
    normalized: Optional[bool] = None
    build_id: Optional[str] = None
    model_path: Optional[str] = None
    #: How the image files were decoded ("full", or the shrink-on-load tag); None: unknown (older files: full).
    decode: Optional[str] = None
    #: The region of interest / rotation applied to every image (``roi=l,t,r,b;rotation=deg``); None: whole images.
    geometry: Optional[str] = None

    _STR_FIELDS = ("model_sha256", "head_name", "embedding_space", "build_id", "model_path", "decode", "geometry")

    def to_strings(self) -> dict[str, str]:
        out = {"format": INDEX_FORMAT}
        for name in self._STR_FIELDS:
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        if self.head_index is not None:
            out["head_index"] = str(self.head_index)
        if self.normalized is not None:
            out["normalized"] = "1" if self.normalized else "0"
        return out

    @classmethod
    def from_strings(cls, d: Mapping[str, str]) -> "IndexMeta":
        m = cls(**{k: (d.get(k) or None) for k in cls._STR_FIELDS})  # type: ignore[arg-type]
        if d.get("head_index") not in (None, ""):
            try:
                m.head_index = int(d["head_index"])
            except ValueError:
                raise IndexFormatError(f"head_index: expected an integer, got {d['head_index']!r}") from None
        if d.get("normalized") in ("0", "1"):
            m.normalized = d["normalized"] == "1"
        return m


def write_index_file(
    path: Union[str, "os.PathLike[str]"],
    paths: Sequence[str],
    matrix: np.ndarray,
    meta: IndexMeta,
    *,
    sizes: Optional[np.ndarray] = None,
    mtimes_ns: Optional[np.ndarray] = None,
) -> None:
    """Write an index (``.npz`` or ``.parquet``) atomically; ``matrix`` is already in its storage dtype.

    Raises:
      EmbeddingMismatchError: a row :func:`row_problems` refuses (nothing is written).
      OptionsError: ``matrix`` is not a 2-D matrix of a storage type with at least one column.
    """
    path = Path(path)
    if matrix.dtype.name not in STORAGE_DTYPES or matrix.ndim != 2:
        raise OptionsError(f"embeddings: expected a 2-D {'/'.join(STORAGE_DTYPES)} matrix, got {matrix.dtype} {matrix.shape}")
    if matrix.shape[1] < 1:
        raise OptionsError(f"embeddings: expected vectors of at least 1 dimension, got shape {matrix.shape}")
    _check_matrix(matrix, paths, f"{path}: not written", normalized=meta.normalized, quantized=matrix.dtype == np.int8)
    strings = meta.to_strings()
    inv = _inv_norms(matrix) if matrix.dtype == np.int8 else None
    if path.suffix == ".parquet":
        pa, pq = _import_pyarrow("Parquet index files")
        cols = {
            "path": pa.array([display_path(p) for p in paths], type=pa.string()),
            "path_bytes": pa.array([os.fsencode(p) for p in paths], type=pa.binary()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(matrix).reshape(-1)), matrix.shape[1]),
        }
        if sizes is not None and mtimes_ns is not None:
            cols["size"] = pa.array(np.asarray(sizes, np.int64))
            cols["mtime_ns"] = pa.array(np.asarray(mtimes_ns, np.int64))
        table = pa.table(cols).replace_schema_metadata(strings)
        atomic_write(path, lambda f: pq.write_table(table, f))
        return
    arrays: dict[str, np.ndarray] = {
        "paths": np.array(list(paths), dtype=str) if len(paths) else np.zeros(0, "<U1"),
        "embeddings": np.ascontiguousarray(matrix),
    }
    arrays.update({k: np.array(v) for k, v in strings.items()})
    if sizes is not None and mtimes_ns is not None:
        arrays["sizes"] = np.asarray(sizes, np.int64)
        arrays["mtimes_ns"] = np.asarray(mtimes_ns, np.int64)
    if inv is not None:
        arrays["inv_norms"] = inv
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


@dataclass
class _Stored:
    paths: Any  # numpy str array (maybe memory-mapped) or list of str
    matrix: np.ndarray
    meta: IndexMeta
    sizes: Optional[np.ndarray]
    mtimes_ns: Optional[np.ndarray]
    inv_norms: Optional[np.ndarray]


def read_index_file(path: Union[str, "os.PathLike[str]"], *, mmap: bool = True) -> _Stored:
    """Read an index file (``.npz``, ``.parquet`` or a folder of Parquet files).

    Raises:
      IndexFormatError: missing, truncated, corrupt, or not an index.
    """
    p = Path(path)
    if not p.exists():
        raise IndexFormatError(f"{p}: no such index file")
    if p.is_dir() or p.suffix == ".parquet":
        return _read_parquet(p)
    try:
        stored = _read_npz(p, mmap=mmap)
    except IndexFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, struct.error) as exc:
        raise IndexFormatError(f"{p}: not a readable index file (truncated or corrupt?): {exc}") from None
    _check_shapes(p, stored)
    return stored


def _check_shapes(p: Path, s: _Stored) -> None:
    m = s.matrix
    if m.ndim != 2:
        raise IndexFormatError(f"{p}: embeddings: expected a 2-D matrix, got shape {m.shape}")
    if m.dtype.name not in STORAGE_DTYPES:
        raise IndexFormatError(f"{p}: embeddings: expected {'/'.join(STORAGE_DTYPES)}, got {m.dtype}")
    if m.shape[1] < 1:
        raise IndexFormatError(f"{p}: embeddings: expected vectors of at least 1 dimension, got shape {m.shape}")
    if len(s.paths) != m.shape[0]:
        raise IndexFormatError(f"{p}: {len(s.paths)} paths for {m.shape[0]} embeddings")
    for name, kind in (("sizes", "i"), ("mtimes_ns", "i"), ("inv_norms", "f")):
        a = getattr(s, name)
        if a is None:
            continue
        if a.shape != (m.shape[0],):
            raise IndexFormatError(f"{p}: {name}: expected {m.shape[0]} values, got shape {a.shape}")
        if a.dtype.kind != kind:
            raise IndexFormatError(f"{p}: {name}: expected {'integers' if kind == 'i' else 'floats'}, got {a.dtype}")


def _read_npz(p: Path, *, mmap: bool) -> _Stored:
    size = p.stat().st_size
    with zipfile.ZipFile(p) as zf:
        infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        if "embeddings" not in infos or "paths" not in infos:
            raise IndexFormatError(f"{p}: not an embedding index (expected 'paths' and 'embeddings', got {sorted(infos)})")

        def small(name: str) -> Optional[np.ndarray]:
            if name not in infos:
                return None
            with zf.open(infos[name]) as f:
                return np.lib.format.read_array(f, allow_pickle=False)

        strings = {}
        for name in ("format", "head_index", "normalized", *IndexMeta._STR_FIELDS):
            a = small(name)
            if a is not None:
                strings[name] = str(a)
        fmt = strings.get("format")
        if fmt is not None and fmt != INDEX_FORMAT:
            raise IndexFormatError(f"{p}: index format {fmt!r} is not supported (expected {INDEX_FORMAT!r})")
        meta = IndexMeta.from_strings(strings)
        sizes, mtimes, inv = small("sizes"), small("mtimes_ns"), small("inv_norms")
        if mmap:
            with open(p, "rb") as raw:
                matrix = _member_memmap(p, raw, infos["embeddings"], size)
                paths = _member_memmap(p, raw, infos["paths"], size)
        else:
            loaded_matrix, loaded_paths = small("embeddings"), small("paths")
            if loaded_matrix is None or loaded_paths is None:
                raise IndexFormatError(f"{p}: not an index (no embeddings or paths array)")
            matrix, paths = loaded_matrix, loaded_paths
    return _Stored(paths, matrix, meta, sizes, mtimes, inv)


def _member_memmap(p: Path, raw: Any, info: zipfile.ZipInfo, file_size: int) -> np.ndarray:
    """Memory-map one stored (uncompressed) ``.npy`` member of a zip; load it when compressed."""
    if info.compress_type != zipfile.ZIP_STORED:
        with zipfile.ZipFile(p) as zf, zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise IndexFormatError(f"{p}: member {info.filename}: bad local zip header (corrupt file)")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    raw.seek(start)
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
    if dtype.hasobject:
        raise IndexFormatError(f"{p}: member {info.filename}: object arrays are not allowed")
    offset = raw.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > min(file_size, start + info.compress_size):
        raise IndexFormatError(
            f"{p}: member {info.filename}: expected {nbytes} bytes of data, the file is truncated"
        )
    if nbytes == 0:
        return np.zeros(shape, dtype)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _read_parquet(p: Path) -> _Stored:
    pa, pq = _import_pyarrow("Parquet index files")
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as exc:
        raise IndexFormatError(f"{p}: not a readable Parquet index (truncated or corrupt?): {exc}") from None
    names = set(table.column_names)
    if "embedding" not in names or not ({"path", "path_bytes"} & names):
        raise IndexFormatError(f"{p}: not an embedding index (expected 'path' and 'embedding' columns, got {sorted(names)})")
    strings = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (table.schema.metadata or {}).items()
               if not k.startswith(b"ARROW:") and k != b"pandas"}
    fmt = strings.get("format")
    if fmt is not None and fmt != INDEX_FORMAT:
        raise IndexFormatError(f"{p}: index format {fmt!r} is not supported (expected {INDEX_FORMAT!r})")
    meta = IndexMeta.from_strings(strings)
    path_col = "path_bytes" if "path_bytes" in names else "path"
    ptype = table.schema.field(path_col).type
    if not (pa.types.is_binary(ptype) or pa.types.is_large_binary(ptype) or pa.types.is_string(ptype)
            or pa.types.is_large_string(ptype)):
        raise IndexFormatError(f"{p}: {path_col} column: expected strings or bytes, got {ptype}")
    if table.column(path_col).null_count:
        raise IndexFormatError(f"{p}: {path_col} column: {table.column(path_col).null_count} null paths")
    raw_paths = table.column(path_col).to_pylist()
    paths = [os.fsdecode(b) if isinstance(b, bytes) else str(b) for b in raw_paths]
    col = table.column("embedding").combine_chunks()
    n = len(col)
    if not (pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise IndexFormatError(f"{p}: embedding column: expected a list of numbers, got {col.type}")
    if col.null_count:
        raise IndexFormatError(f"{p}: embedding column: {col.null_count} null rows")
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
    else:
        # Every row must have the same length: rows of different lengths whose total happens to divide
        # by the row count would otherwise be reshaped across rows (one path getting part of another's vector).
        import pyarrow.compute as pc

        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if n else 0
        if n and (lengths != dim).any():
            bad = np.flatnonzero(lengths != dim)
            raise IndexFormatError(
                f"{p}: embedding column: rows of different lengths (row 0 has {dim} values, row {int(bad[0])} "
                f"({display_path(paths[int(bad[0])])}) has {int(lengths[bad[0]])}; {len(bad)} rows differ from row 0)")
    flat = col.flatten()
    if flat.null_count:
        raise IndexFormatError(f"{p}: embedding column: {flat.null_count} null values inside the vectors")
    if not (pa.types.is_floating(flat.type) or pa.types.is_int8(flat.type)):
        raise IndexFormatError(f"{p}: embedding column: expected float or int8 values, got {flat.type}")
    values = flat.to_numpy(zero_copy_only=False)
    if values.size != n * dim:
        raise IndexFormatError(f"{p}: embedding column: {values.size} values for {n} rows of {dim}")
    matrix = values.reshape(n, dim)
    if matrix.dtype == np.float64:
        with np.errstate(over="ignore"):
            matrix = matrix.astype(np.float32)  # values beyond float32 become inf: refused by the row checks
    sizes = mtimes = None
    if {"size", "mtime_ns"} <= names:
        for name in ("size", "mtime_ns"):
            if not pa.types.is_integer(table.schema.field(name).type):
                raise IndexFormatError(f"{p}: {name} column: expected integers, got {table.schema.field(name).type}")
            if table.column(name).null_count:
                raise IndexFormatError(f"{p}: {name} column: {table.column(name).null_count} null values")
        sizes = table.column("size").to_numpy().astype(np.int64)
        mtimes = table.column("mtime_ns").to_numpy().astype(np.int64)
    stored = _Stored(paths, matrix, meta, sizes, mtimes, None)
    _check_shapes(p, stored)
    return stored


def _import_pyarrow(what: str) -> Any:
    require("parquet", what)
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _import_usearch() -> Any:
    require("search", "approximate search (exact search needs nothing)")
    import usearch.index as usearch_index

    return usearch_index


# -- vectors ----------------------------------------------------------------------


def _chunk_rows(matrix: np.ndarray) -> int:
    return max(16, _CHUNK_BYTES // max(1, 4 * matrix.shape[1]))


# float16 -> float32 by bits: the sign moves from bit 15 to bit 31; exponent and mantissa (bits 0-14)
# move up by the 13 extra mantissa bits of float32; multiplying by 2**(127 - 15) then re-biases the
# exponent (and turns float16 subnormals into the right float32 normals).
_F16_SIGN = 0x8000
_F16_MAGNITUDE = 0x7FFF
_F16_TO_F32_SIGN_SHIFT = 16
_F16_TO_F32_MANTISSA_SHIFT = 13
_F16_TO_F32_REBIAS = np.float32(2.0 ** (127 - 15))


class _Converter:
    """float16 / int8 rows -> float32 into reused buffers (float32 rows pass through as views).

    float16 uses the exact bit-level widening (above), 2.4x faster than numpy's float16 cast here and
    bit-identical to it (subnormals included).
    """

    def __init__(self, matrix: np.ndarray) -> None:
        self.kind = matrix.dtype
        rows = min(_chunk_rows(matrix), max(1, matrix.shape[0]))
        d = matrix.shape[1]
        self.buf = None if self.kind == np.float32 else np.empty((rows, d), np.uint32 if self.kind == np.float16 else np.float32)
        self.sign = np.empty((rows, d), np.uint32) if self.kind == np.float16 else None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if self.buf is None:
            return rows
        m = rows.shape[0]
        if self.kind != np.float16:
            out = self.buf[:m]
            np.copyto(out, rows, casting="unsafe")
            return out
        u, sign = self.buf[:m], self.sign[:m]  # type: ignore[index]
        np.copyto(u, rows.view(np.uint16), casting="unsafe")
        np.bitwise_and(u, _F16_SIGN, out=sign)
        np.left_shift(sign, _F16_TO_F32_SIGN_SHIFT, out=sign)
        np.bitwise_and(u, _F16_MAGNITUDE, out=u)
        np.left_shift(u, _F16_TO_F32_MANTISSA_SHIFT, out=u)
        np.bitwise_or(u, sign, out=u)
        f = u.view(np.float32)
        f *= _F16_TO_F32_REBIAS
        return f


def _iter_chunks(matrix: np.ndarray, start: int = 0, stop: Optional[int] = None) -> Iterable[tuple[int, int, np.ndarray]]:
    """(start, stop, float32 rows) over ``matrix[start:stop]``, one L2-sized chunk at a time."""
    stop = matrix.shape[0] if stop is None else stop
    rows = _chunk_rows(matrix)
    convert = _Converter(matrix)
    for a in range(start, stop, rows):
        b = min(stop, a + rows)
        yield a, b, convert(matrix[a:b])


def _inv_norms(matrix: np.ndarray) -> np.ndarray:
    """1 / L2 norm of every row (0 for an all-zero row), in chunks."""
    out = np.empty(matrix.shape[0], np.float32)
    for a, b, chunk in _iter_chunks(matrix):
        sq = np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64)
        with np.errstate(divide="ignore"):
            inv = np.where(sq > 0, 1.0 / np.sqrt(sq), 0.0)
        out[a:b] = inv
    return out


def row_problems(rows: np.ndarray, *, normalized: Optional[bool] = None,
                 quantized: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    """Check stored rows (float32, one vector per row): ``(squared norms in float64, {row: reason})``.

    A row is refused when it holds NaN or infinite values, is all zeros (no
    direction: its cosine is undefined), has a norm outside :data:`NORM_RANGE`,
    or, for float rows of an index that says it is L2-normalised
    (``normalized=True``), a norm further than 2e-3 from 1. ``quantized`` rows
    (int8 storage) are divided by their own norm, so only the all-zero rule applies.
    """
    rows = np.asarray(rows)
    finite = np.isfinite(rows).all(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    norm = np.sqrt(sq)
    bad = ~finite | (norm == 0)
    if not quantized:
        bad |= (norm < NORM_RANGE[0]) | (norm > NORM_RANGE[1])
        if normalized:
            bad |= np.abs(norm - 1.0) > _UNIT_TOLERANCE
    problems: dict[int, str] = {}
    for i in np.flatnonzero(bad).tolist():
        if not finite[i]:
            n_nan = int(np.isnan(rows[i]).sum())
            n_inf = int((~np.isfinite(rows[i])).sum()) - n_nan
            total = n_nan + n_inf
            problems[i] = " and ".join(f"{c} {k}" for c, k in ((n_nan, "NaN"), (n_inf, "infinite")) if c) + \
                f" value{'s' if total > 1 else ''}"
        elif norm[i] == 0:
            problems[i] = "all zeros (no direction: its cosine is undefined)"
        elif not (NORM_RANGE[0] <= norm[i] <= NORM_RANGE[1]):
            problems[i] = f"norm {norm[i]:.3g} outside [{NORM_RANGE[0]:g}, {NORM_RANGE[1]:g}] (float32 scores would be wrong)"
        else:
            problems[i] = f"norm {norm[i]:.6g}, but the index says its vectors are L2-normalised (norm 1)"
    return sq, problems


def _check_matrix(matrix: np.ndarray, paths: Any, what: str, *, normalized: Optional[bool] = None,
                  quantized: bool = False) -> None:
    """:func:`row_problems` over ``matrix`` in chunks (no full-size copy); EmbeddingMismatchError naming the rows."""
    step = max(16, _CHUNK_BYTES // max(1, 8 * matrix.shape[1]))
    for a in range(0, matrix.shape[0], step):
        _, problems = row_problems(matrix[a : a + step], normalized=normalized, quantized=quantized)
        if problems:
            raise EmbeddingMismatchError(f"{what}: {_problem_text(problems, paths, a)}")


def _problem_text(problems: dict[int, str], paths: Any, offset: int = 0, limit: int = 3) -> str:
    """``row 7 (a.jpg): NaN values; ...`` for the first ``limit`` problems."""
    items = sorted(problems.items())
    shown = "; ".join(f"row {offset + i} ({display_path(str(paths[offset + i]))}): {why}" for i, why in items[:limit])
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return shown + more


def _normalize_rows(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    norms = np.linalg.norm(v.astype(np.float64), axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(norms > 0, v / norms, 0.0)
    return out.astype(np.float32)


def to_storage(vectors: np.ndarray, dtype: str) -> np.ndarray:
    """Float vectors (one per row) -> L2-normalised storage rows (int8: MediaPipe's scalar quantization)."""
    if dtype not in STORAGE_DTYPES:
        raise OptionsError(f"dtype: expected one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
    v = _normalize_rows(vectors)
    if dtype == "float32":
        return v
    if dtype == "float16":
        return v.astype(np.float16)
    return quantize(v).reshape(v.shape)


def _query_matrix(query: Any, dim: int, *, single: bool) -> np.ndarray:
    """Query vectors as L2-normalised float32 rows ``(Q, dim)``, read only when that is unambiguous.

    ``single``: one vector, shape ``(D,)`` or ``(1, D)`` (``search``); else
    ``(Q, D)`` or one ``(D,)`` vector (``search_batch``). int8 vectors (and
    bytes) are quantized embeddings; uint8 arrays are refused (MediaPipe hands
    out int8 values in uint8 arrays, so their meaning is ambiguous).

    Raises:
      EmbeddingMismatchError
    """
    what = "query" if single else "queries"
    if isinstance(query, Embedding):
        query = query.embedding
    if isinstance(query, (bytes, bytearray, memoryview)):
        query = np.frombuffer(bytes(query), np.int8)
    try:
        q = np.asarray(query)
    except (ValueError, TypeError) as exc:  # ragged nested lists, ...
        raise EmbeddingMismatchError(f"{what}: expected a numeric vector, got {type(query).__name__} ({exc})") from None
    if q.dtype == np.uint8:
        raise EmbeddingMismatchError(
            f"{what}: a uint8 array is ambiguous: MediaPipe hands out quantized embeddings as uint8 arrays holding "
            "int8 values (pass q.view(np.int8)), other uint8 data are unsigned values (pass q.astype(np.float32))")
    if q.dtype.kind not in "fiu":
        raise EmbeddingMismatchError(f"{what}: expected a numeric vector, got dtype {q.dtype}")
    if q.ndim == 0:
        raise EmbeddingMismatchError(f"{what}: expected a vector of {dim} values, got a scalar")
    if single:
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.ndim != 1:
            raise EmbeddingMismatchError(f"query: expected one vector, shape ({dim},) or (1, {dim}), got shape "
                                         f"{q.shape}; use search_batch() for several queries")
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2:
        raise EmbeddingMismatchError(f"queries: expected a (Q, {dim}) matrix, got shape {q.shape}")
    if q.shape[1] == 0 and (single or q.shape[0]):
        raise EmbeddingMismatchError(f"{what}: expected a vector of {dim} values, got an empty one")
    if q.shape[0] == 0:
        return np.zeros((0, dim), np.float32)
    if q.shape[1] != dim:
        raise EmbeddingMismatchError(f"{what} has {q.shape[1]} dimensions, the index has {dim}")
    q64 = q.astype(np.float64)
    finite = np.isfinite(q64).all(axis=1)
    if not finite.all():
        row = "" if single else f" (row {int(np.flatnonzero(~finite)[0])})"
        raise EmbeddingMismatchError(f"{what} contains NaN or infinite values{row}")
    scale = np.abs(q64).max(axis=1)  # normalise in two steps: no overflow or underflow in the sum of squares
    if np.any(scale == 0):
        row = "" if single else f" (row {int(np.flatnonzero(scale == 0)[0])})"
        raise EmbeddingMismatchError(f"cannot search with a zero-norm query vector{row}")
    q64 /= scale[:, None]
    q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
    return q64.astype(np.float32)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the k highest scores, best first (ties: lower index first)."""
    if k >= scores.size:
        cand = np.arange(scores.size)
    else:
        cand = np.argpartition(-scores, k - 1)[:k]
    order = np.lexsort((cand, -scores[cand]))
    return cand[order]


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionsError(f"k: expected an integer >= 1, got {k!r}")
    return int(k)


# -- the index --------------------------------------------------------------------


class _InUse:
    """One call into an :class:`EmbeddingIndex` (see ``EmbeddingIndex._use``)."""

    __slots__ = ("index", "me")

    def __init__(self, index: "EmbeddingIndex") -> None:
        self.index = index
        self.me = threading.get_ident()

    def __enter__(self) -> None:
        ix = self.index
        with ix._state:
            if ix._closed:
                raise EmbedderClosedError("the EmbeddingIndex is closed; load it again")
            ix._active[self.me] = ix._active.get(self.me, 0) + 1

    def __exit__(self, *exc: object) -> None:
        ix = self.index
        with ix._state:
            n = ix._active[self.me] - 1
            if n:
                ix._active[self.me] = n
            else:
                del ix._active[self.me]
            ix._state.notify_all()


class EmbeddingIndex:
    """Top-k cosine search over stored embeddings (see the module docstring).

    Create with :meth:`load` (an ``embed-dir`` / ``index`` output) or
    :meth:`from_arrays`; query with :meth:`search` (a vector),
    :meth:`search_image` (through an ``ImageEmbedder``) or :meth:`search_text`.

    Example::

        index = EmbeddingIndex.load("pictures.npz")
        with ImageEmbedder.create_from_model_path("models/efficientnet_lite0_fp32.tflite") as e:
            for hit in index.search_image(e, "query.jpg", k=5):
                print(hit.rank, hit.score, hit.path)
    """

    def __init__(self, stored: _Stored, *, source: Optional[str] = None, lazy_checks: bool = False) -> None:
        # Internal: use load() or from_arrays(). ``lazy_checks``: check each chunk when it is first read
        # (an index answered by its HNSW graph) instead of every row now.
        self._paths = stored.paths
        self._vectors = stored.matrix
        self._meta = stored.meta
        self._sizes, self._mtimes = stored.sizes, stored.mtimes_ns
        self._source = source or "<index>"
        self._shape = (int(stored.matrix.shape[0]), int(stored.matrix.shape[1]))
        self._dtype = stored.matrix.dtype.name
        self._quantized = stored.matrix.dtype == np.int8
        self._chunk = _chunk_rows(stored.matrix)
        self._checked = np.zeros(-(-self._shape[0] // self._chunk), bool)
        self._stored_inv = stored.inv_norms
        # 1 / norm of every row, when rows are not stored normalised (raw embed-dir output, int8).
        self._inv: Optional[np.ndarray] = None
        if self._quantized or not self._meta.normalized:
            self._inv = stored.inv_norms if stored.inv_norms is not None else np.empty(self._shape[0], np.float32)
        if not lazy_checks or (self._inv is not None and stored.inv_norms is None):
            self._check_rows(0, self._shape[0])
            if (not self._quantized and self._inv is not None and self._inv.size
                    and np.allclose(self._inv, 1.0, atol=1e-5)):
                self._inv = None  # already normalised (an older file that did not say so)
        self._state = threading.Condition()
        self._active: dict[int, int] = {}  # thread id -> calls in progress
        self._closed = False
        self._executor: Any = None
        self._fd: Optional[int] = None
        self._ann: Any = None
        self._ann_info: dict[str, Any] = {}
        self._use_ann = False

    # -- row checks ----------------------------------------------------------------
    def _check_rows(self, start: int, stop: int) -> None:
        """Check every not yet checked chunk overlapping rows ``[start, stop)`` (:func:`row_problems`).

        Fills in the inverse norms of raw rows; compares stored ones (int8) with the rows.

        Raises:
          IndexFormatError: a bad row (named, with its path).
        """
        if start >= stop:
            return
        c = self._chunk
        for ci in range(start // c, -(-stop // c)):
            if self._checked[ci]:
                continue
            a, b = ci * c, min(self._shape[0], (ci + 1) * c)
            _, _, rows = next(iter(_iter_chunks(self._vectors, a, b)))
            sq, problems = row_problems(rows, normalized=self._meta.normalized and not self._quantized,
                                        quantized=self._quantized)
            if problems:
                raise IndexFormatError(f"{self._source}: {len(problems)} unusable row{'s' if len(problems) > 1 else ''}: "
                                       f"{_problem_text(problems, self._paths, a)} (the file is damaged, or was written "
                                       "by a tool that does not check its rows: rebuild it; embed-dir --resume "
                                       "re-embeds bad rows)")
            if self._inv is not None:
                inv = (1.0 / np.sqrt(sq)).astype(np.float32)
                if self._stored_inv is not None:
                    stored = self._stored_inv[a:b]
                    wrong = ~(np.abs(stored - inv) <= 1e-4 * inv)
                    if wrong.any():
                        i = int(np.flatnonzero(wrong)[0])
                        raise IndexFormatError(
                            f"{self._source}: inv_norms: row {a + i} ({display_path(str(self._paths[a + i]))}) records "
                            f"{float(stored[i]):.6g}, its vector has 1 / norm {float(inv[i]):.6g} (the file is damaged)")
                else:
                    self._inv[a:b] = inv
            self._checked[ci] = True

    def _check_scores(self, scores: np.ndarray, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Scores of checked rows lie in [-1, 1] up to rounding (clipped); anything else means the file changed.

        ``rows``: the row ids of ``scores``' last axis (None: all rows).
        """
        bad = ~(np.abs(scores) <= 1.0 + _SCORE_TOLERANCE)
        if bad.any():
            col = int(np.flatnonzero(bad.any(axis=0) if scores.ndim == 2 else bad)[0])
            row = int(rows[col]) if rows is not None else col
            value = float(scores.reshape(-1, scores.shape[-1])[:, col].max())
            raise IndexFormatError(
                f"{self._source}: row {row} ({display_path(str(self._paths[row]))}) scores {value!r}, which no cosine "
                "can be: the file changed after the index was opened (or is damaged); load it again")
        return np.clip(scores, -1.0, 1.0, out=scores)

    # -- lifecycle -------------------------------------------------------------------
    def _use(self) -> "_InUse":
        """A context for one call: EmbedderClosedError after close(); close() waits for the calls in progress."""
        return _InUse(self)

    def __enter__(self) -> "EmbeddingIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        paths: Sequence[str],
        vectors: np.ndarray,
        *,
        space: Optional[str] = None,
        dtype: str = "float32",
        model_sha256: Optional[str] = None,
        head_name: Optional[str] = None,
    ) -> "EmbeddingIndex":
        """An in-memory index over ``vectors`` (one row per path), stored L2-normalised as ``dtype``.

        Float rows are normalised (then quantized for ``dtype="int8"``); int8
        rows are taken as already quantized embeddings.

        Raises:
          OptionsError: ``paths`` and ``vectors`` disagree, unknown ``dtype``, no dimension.
          EmbeddingMismatchError: a row with NaN or infinite values, all zeros, or a norm outside
            :data:`NORM_RANGE` (the message names the rows).
        """
        v = np.asarray(vectors)
        paths = [os.fspath(p) for p in paths]
        if v.ndim != 2:
            raise OptionsError(f"vectors: expected a 2-D matrix (one row per path), got shape {v.shape}")
        if v.shape[1] < 1:
            raise OptionsError(f"vectors: expected at least 1 dimension, got shape {v.shape}")
        if len(paths) != v.shape[0]:
            raise OptionsError(f"paths: expected {v.shape[0]} (one per row), got {len(paths)}")
        if v.dtype == np.int8:
            if dtype != "int8":
                raise OptionsError(f"dtype: int8 vectors are quantized embeddings; expected dtype 'int8', got {dtype!r}")
            matrix = v
        else:
            if v.dtype.kind != "f":
                raise OptionsError(f"vectors: expected float or int8 values, got {v.dtype}")
            _check_matrix(v, paths, "vectors")
            matrix = to_storage(v, dtype)
        # int8 rows given as they are; float16 rows whose values underflowed
        _check_matrix(matrix, paths, "vectors", quantized=matrix.dtype == np.int8)
        meta = IndexMeta(model_sha256=model_sha256, head_name=head_name, embedding_space=space, normalized=True)
        return cls(_Stored(paths, matrix, meta, None, None, None), source="<from_arrays>")

    @classmethod
    def load(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        mmap: bool = True,
        approximate: str = "auto",
    ) -> "EmbeddingIndex":
        """Open an index file: an ``embed-dir`` / ``index`` output (``.npz``, ``.parquet``) or a folder of Parquet files.

        Args:
          mmap: memory-map the vectors of a ``.npz`` (Parquet is read into RAM).
          approximate: ``"auto"``: use the stored HNSW graph (``PATH.usearch``)
            when it matches the file and the index has at least
            :data:`APPROXIMATE_MIN_ELEMENTS` elements; ``"always"``: use it
            (build one in memory when there is none); ``"never"``: exact only.

        Every row is checked (:func:`row_problems`), in chunks; an index that
        will answer with its HNSW graph checks each chunk or row the first
        time a query reads it instead.

        Raises:
          IndexFormatError: missing, truncated or corrupt file, not an index, or a bad row (NaN or
            infinite values, all zeros, a norm out of range or not 1 when the file says normalised;
            ragged Parquet rows; columns of the wrong type).
          MissingDependencyError: ``approximate="always"`` without the ``[search]`` extra.
          OptionsError: a bad ``approximate`` value.
        """
        if approximate not in ("auto", "always", "never"):
            raise OptionsError(f"approximate: expected 'auto', 'always' or 'never', got {approximate!r}")
        p = Path(path)
        stored = read_index_file(p, mmap=mmap)
        big = stored.matrix.shape[0] * max(1, stored.matrix.shape[1]) >= APPROXIMATE_MIN_ELEMENTS
        sidecar = Path(str(p) + _ANN_SUFFIX)
        graph = approximate == "always" or (approximate == "auto" and big and sidecar.exists())
        # An index answered by its graph reads few rows per query: its rows are checked when read, not all now.
        index = cls(stored, source=str(p), lazy_checks=graph and isinstance(stored.matrix, np.memmap))
        if approximate == "never":
            return index
        if graph:
            loaded = index._load_approximate(sidecar, required=approximate == "always")
            if not loaded and approximate == "always":
                index.build_approximate()
            index._use_ann = index._ann is not None
        return index

    # -- properties ----------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of stored vectors."""
        return self._shape[0]

    def __len__(self) -> int:
        return self.size

    @property
    def dim(self) -> int:
        return self._shape[1]

    @property
    def dtype(self) -> str:
        """Storage type: ``float32``, ``float16`` or ``int8``."""
        return self._dtype

    @property
    def space(self) -> Optional[str]:
        """The embedding-space id, None for files written before it was recorded."""
        return self._meta.embedding_space

    @property
    def model_sha256(self) -> Optional[str]:
        return self._meta.model_sha256

    @property
    def head_name(self) -> Optional[str]:
        return self._meta.head_name

    @property
    def head_index(self) -> Optional[int]:
        return self._meta.head_index

    @property
    def model_path(self) -> Optional[str]:
        """The model file that built the index, as recorded then (a hint; it may have moved)."""
        return self._meta.model_path

    @property
    def approximate(self) -> bool:
        """Whether :meth:`search` uses the HNSW graph by default."""
        return self._use_ann

    @property
    def memory_mapped(self) -> bool:
        return isinstance(self._vectors, np.memmap)

    def path(self, i: int) -> str:
        with self._use():
            return str(self._paths[i])

    @property
    def paths(self) -> list[str]:
        with self._use():
            return [str(p) for p in self._paths]

    def vector(self, i: int) -> np.ndarray:
        """Row ``i`` as a unit-norm float32 vector.

        Raises:
          IndexFormatError: the row is unusable (see :meth:`load`).
          EmbedderClosedError: after :meth:`close`.
        """
        with self._use():
            i = int(i)
            if not -self.size <= i < self.size:
                raise OptionsError(f"i: expected a row from 0 to {self.size - 1}, got {i}")
            i %= self.size
            self._check_rows(i, i + 1)
            v = self._vectors[i].astype(np.float32)
            if self._inv is not None:
                v = v * self._inv[i]
            return v

    def __repr__(self) -> str:
        mode = "closed" if self._closed else "approximate" if self._use_ann else "exact"
        return f"EmbeddingIndex({self.size} x {self.dim} {self.dtype}, {mode}, space={self.space!r})"

    # -- queries -------------------------------------------------------------------
    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        space: Optional[str] = None,
        exact: Optional[bool] = None,
    ) -> list[SearchResult]:
        """The ``k`` stored vectors closest to ``query`` by cosine, best first.

        Args:
          query: one vector: shape ``(D,)`` or ``(1, D)``, float or integer
            values, int8 (a quantized embedding, as ``bytes`` too) or an
            :class:`Embedding`. uint8 arrays are refused (ambiguous: MediaPipe's
            quantized embeddings are int8 values in uint8 arrays).
          k: number of results (fewer when the index is smaller).
          space: the query's embedding-space id; refused when it differs from
            the index's. Without it, matching spaces are the caller's responsibility.
          exact: force exact (True) or approximate (False) search; default:
            approximate when the index uses it (:attr:`approximate`).

        Raises:
          EmbeddingSpaceMismatchError: ``space`` differs from the index's.
          EmbeddingMismatchError: an empty, ambiguous (uint8), non-numeric or
            several-row query, wrong dimension, zero norm, NaN.
          OptionsError: bad ``k``.
          MissingDependencyError: ``exact=False`` without an approximate index.
          IndexFormatError: a stored row turned out unusable (see :meth:`load`).
          EmbedderClosedError: after :meth:`close`.
        """
        with self._use():
            k = _check_k(k)
            if space is not None:
                self.check_space(space)
            return self._search(_query_matrix(query, self.dim, single=True), k, exact)[0]

    def search_batch(self, queries: Any, k: int = 10, *, space: Optional[str] = None,
                     exact: Optional[bool] = None) -> list[list[SearchResult]]:
        """:meth:`search` for each row of a ``(Q, D)`` matrix (one matrix product for all).

        A single ``(D,)`` vector counts as one query; ``(0, D)`` gives ``[]``.
        Raises what :meth:`search` raises (a 3-D array is refused).
        """
        with self._use():
            k = _check_k(k)
            if space is not None:
                self.check_space(space)
            return self._search(_query_matrix(queries, self.dim, single=False), k, exact)

    def _search(self, q: np.ndarray, k: int, exact: Optional[bool]) -> list[list[SearchResult]]:
        if self.size == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        use_ann = self._use_ann if exact is None else not exact
        if use_ann:
            if self._ann is None:
                raise MissingDependencyError("no approximate index: call build_approximate() or load(..., approximate='always')")
            rows = self._search_ann(q, k)
        else:
            rows = self._search_exact(q, k)
        return [[SearchResult(r + 1, str(self._paths[int(i)]), float(s), int(i)) for r, (i, s) in enumerate(hits)]
                for hits in rows]

    def search_image(self, embedder: Any, image: Any, k: int = 10, *, head: int = 0,
                     image_processing_options: Any = None, exact: Optional[bool] = None) -> list[SearchResult]:
        """Embed ``image`` with ``embedder`` (an ``ImageEmbedder``) and search with head ``head``.

        Raises:
          EmbeddingSpaceMismatchError: the embedder's model / head is not the index's.
          ImageError: the image cannot be decoded.
          ModelOutputError: the model's vector is NaN / infinite.
          EmbedderClosedError: the index (or the embedder) is closed.
        """
        self._require_open()
        self.check_embedder(embedder, head)
        result = embedder.embed(image, image_processing_options)
        if head >= len(result.embeddings):
            raise OptionsError(f"head: expected < {len(result.embeddings)}, got {head}")
        return self.search(result.embeddings[head], k, exact=exact)

    def search_text(self, text_embedder: Any, text: str, k: int = 10, *, exact: Optional[bool] = None) -> list[SearchResult]:
        """Embed ``text`` with a text embedder and search (image-text models sharing one space).

        ``text_embedder`` is anything with ``embed(text)`` returning
        ``.embeddings[0].embedding`` and an ``embedding_space_id`` (attribute
        or method), e.g. the ``TextEmbedder`` of CLIP's text tower.

        Raises:
          OptionsError: ``text_embedder`` is not a text embedder.
          EmbeddingSpaceMismatchError: its space is not the index's (or the index has none recorded).
          TextInputError: ``text`` is not a str, or not valid Unicode.
          EmbedderClosedError: the index (or the embedder) is closed.
        """
        self._require_open()
        sid = getattr(text_embedder, "embedding_space_id", None)
        if not hasattr(text_embedder, "embed") or sid is None:
            raise OptionsError(
                f"text_embedder: expected an object with embed(text) and embedding_space_id, got {type(text_embedder).__name__}"
            )
        sid = sid() if callable(sid) else sid
        if self.space is None:
            raise EmbeddingSpaceMismatchError(
                "the index records no embedding-space id (an older embed-dir output), so a text query cannot be "
                "checked against it; rebuild it with embed-dir --resume or edge-embedder index"
            )
        self.check_space(str(sid))
        emb = text_embedder.embed(text).embeddings[0].embedding
        return self.search(emb, k, exact=exact)

    def check_space(self, space: str) -> None:
        """Refuse a query space that differs from the index's (no-op when the index's is unknown).

        Raises:
          EmbeddingSpaceMismatchError
        """
        mine = self.space
        if mine is None:
            sha = self.model_sha256
            if sha and space.startswith("sha256:") and not _is_model_space(space, sha):
                raise EmbeddingSpaceMismatchError(
                    f"query space {space!r} is from another model than the index (model sha256 {sha[:12]}...)"
                )
            return
        if space != mine:
            raise EmbeddingSpaceMismatchError(
                f"query embedding space {space!r} differs from the index's {mine!r}: the vectors are not comparable "
                "(embed the query with the model and head that built the index)"
            )

    def check_embedder(self, embedder: Any, head: int = 0) -> None:
        """Refuse an ``ImageEmbedder`` whose model / head did not build this index.

        Raises:
          EmbeddingSpaceMismatchError
        """
        if self.space is not None:
            self.check_space(embedder_space_id(embedder, head))
            return
        sha = self.model_sha256
        if sha and embedder.model_sha256 != sha:
            raise EmbeddingSpaceMismatchError(
                f"the index was built by another model (sha256 {sha[:12]}..., this embedder's "
                f"{embedder.model_sha256[:12]}...)"
            )
        heads = embedder.model_spec.outputs
        if self.head_name and head < len(heads) and (heads[head].name or str(head)) != self.head_name:
            raise EmbeddingSpaceMismatchError(
                f"the index holds head {self.head_name!r}, the query uses head {head} ({heads[head].name!r})"
            )

    # -- exact ---------------------------------------------------------------------
    def _search_exact(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        out: list[list[tuple[int, float]]] = []
        group = 16  # queries per pass: the score buffer is group x N float32
        for g in range(0, len(q), group):
            qg = q[g : g + group]
            scores = self._check_scores(self._scores(qg))
            for row in scores:
                top = _top_k(row, k)
                out.append([(int(i), float(row[i])) for i in top])
        return out

    def _scores(self, q: np.ndarray) -> np.ndarray:
        """Cosine of every stored row with each query row: ``(len(q), N)`` float32."""
        n = self.size
        scores = np.empty((len(q), n), np.float32)
        qt = np.ascontiguousarray(q.T)

        def part(start: int, stop: int) -> None:
            if not self._all_checked:
                self._check_rows(start, stop)
            for a, b, chunk in _iter_chunks(self._vectors, start, stop):
                if len(q) == 1:
                    np.matmul(chunk, qt[:, 0], out=scores[0, a:b])
                else:
                    scores[:, a:b] = (chunk @ qt).T
            if self._inv is not None:
                scores[:, start:stop] *= self._inv[start:stop]

        threads = max(1, min(self.threads, n // _MIN_ROWS_PER_THREAD))
        if threads == 1:
            part(0, n)
            return scores
        bounds = np.linspace(0, n, threads + 1).astype(int)
        pool = self._pool(threads)
        for f in [pool.submit(part, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]:
            f.result()
        return scores

    def _pool(self, threads: int) -> Any:
        """The thread pool of ``threads`` workers (one per size in use; all shut down by close())."""
        with self._state:
            pools = self._executor if self._executor is not None else {}
            pool = pools.get(threads)
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="edge_embedder-search")
                self._executor = pools
            return pool

    @property
    def _all_checked(self) -> bool:
        if self._checked.size and not self._checked[-1]:
            return False
        return bool(self._checked.all())

    #: Threads of exact search (numpy releases the GIL in matmul): the machine's cores, at most 4.
    threads = min(4, os.cpu_count() or 1)

    # -- approximate ---------------------------------------------------------------
    def build_approximate(
        self,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 128,
        dtype: Optional[str] = None,
        threads: int = 0,
    ) -> None:
        """Build an HNSW graph (usearch) over the stored vectors; :meth:`search` then uses it.

        Args:
          connectivity, expansion_add, expansion_search: HNSW parameters
            (defaults measured in benchmarks/bench_search.py).
          dtype: the graph's vector type: ``"f16"`` (default for float
            storage), ``"i8"`` (default for int8 storage) or ``"f32"``.
          threads: build threads (0: all cores).

        Raises:
          MissingDependencyError: usearch is not installed (``[search]`` extra).
          IndexFormatError: a stored row is unusable (see :meth:`load`).
          EmbedderClosedError: after :meth:`close`.
        """
        with self._use():
            self._check_rows(0, self.size)
            self._build_approximate(connectivity, expansion_add, expansion_search, dtype, threads)

    def _build_approximate(self, connectivity: int, expansion_add: int, expansion_search: int, dtype: Optional[str],
                           threads: int) -> None:
        ui = _import_usearch()
        dtype = dtype or ("i8" if self.dtype == "int8" else "f16")
        if dtype not in ("f32", "f16", "i8"):
            raise OptionsError(f"dtype: expected 'f32', 'f16' or 'i8', got {dtype!r}")
        if dtype == "i8" and self.dtype != "int8":
            raise OptionsError("dtype 'i8' graphs are built from int8 storage (save the index with dtype='int8')")
        ann = ui.Index(ndim=self.dim, metric="cos", dtype=dtype, connectivity=connectivity,
                       expansion_add=expansion_add, expansion_search=expansion_search)
        step = 1 << 15
        for a in range(0, self.size, step):
            b = min(self.size, a + step)
            rows = np.ascontiguousarray(self._vectors[a:b])
            if dtype != "i8":
                rows = rows.astype(np.float32)
            ann.add(np.arange(a, b, dtype=np.uint64), rows, threads=threads)
        self._ann = ann
        self._ann_info = {"dtype": dtype, "connectivity": connectivity, "expansion_add": expansion_add,
                          "expansion_search": expansion_search}
        self._use_ann = True

    def set_search_mode(self, approximate: bool) -> None:
        """Make :meth:`search` approximate (needs a graph) or exact by default."""
        self._require_open()
        if approximate and self._ann is None:
            raise MissingDependencyError("no approximate index: call build_approximate() first")
        self._use_ann = bool(approximate)

    @property
    def expansion_search(self) -> Optional[int]:
        return None if self._ann is None else int(self._ann.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        if self._ann is None:
            raise MissingDependencyError("no approximate index: call build_approximate() first")
        self._ann.expansion_search = int(value)

    oversample = 2  #: the graph returns ``oversample * k`` candidates, re-scored exactly

    def _search_ann(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        want = min(self.size, max(k, self.oversample * k))
        qq = quantize(q).reshape(q.shape) if self._ann_info.get("dtype") == "i8" else q
        matches = self._ann.search(qq, want, threads=1)
        if hasattr(matches, "counts"):  # BatchMatches
            keys, counts = np.atleast_2d(matches.keys), np.atleast_1d(matches.counts)
        else:  # usearch returns Matches for a single query row
            keys, counts = np.atleast_2d(matches.keys), np.array([len(matches.keys)])
        out = []
        for qi in range(len(q)):
            cand = np.sort(np.asarray(keys[qi][: counts[qi]], np.int64))
            if cand.size and (cand[0] < 0 or cand[-1] >= self.size):
                raise IndexFormatError(f"{self._source}{_ANN_SUFFIX}: the graph returned row {int(cand[-1])}, the index has "
                                       f"{self.size} rows (a damaged graph: rebuild it with edge-embedder index --resume)")
            rows = self._rows(cand)
            if not self._all_checked:
                self._check_candidates(cand, rows)
            s = rows @ q[qi]
            if self._inv is not None:
                s *= self._inv[cand]
            s = self._check_scores(s, cand)
            top = _top_k(s, k)
            out.append([(int(cand[i]), float(s[i])) for i in top])
        return out

    def _check_candidates(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """:func:`row_problems` of rows read one by one (an index answered by its graph); stored inverse norms too."""
        sq, problems = row_problems(rows, normalized=self._meta.normalized and not self._quantized,
                                    quantized=self._quantized)
        if problems:
            named = {int(ids[i]): why for i, why in problems.items()}
            raise IndexFormatError(f"{self._source}: {_problem_text(named, self._paths)} (the file is damaged: rebuild it)")
        if self._inv is not None and self._stored_inv is not None:
            inv = (1.0 / np.sqrt(sq)).astype(np.float32)
            wrong = ~(np.abs(self._stored_inv[ids] - inv) <= 1e-4 * inv)
            if wrong.any():
                row = int(ids[np.flatnonzero(wrong)[0]])
                raise IndexFormatError(f"{self._source}: inv_norms: row {row} ({display_path(str(self._paths[row]))}) does "
                                       "not match its vector (the file is damaged)")

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """Stored rows ``ids`` (sorted) as float32.

        From a memory map they are read with ``os.pread``, not through the
        mapping: faulting pages in at random would map their neighbours too
        (the kernel's fault-around), and the resident memory of an
        approximate search would grow towards the whole float32 file.
        """
        v = self._vectors
        if not isinstance(v, np.memmap) or getattr(v, "filename", None) is None or not v.flags.c_contiguous:
            return np.asarray(v[ids], np.float32)
        with self._state:
            if self._fd is None:
                self._fd = os.open(str(v.filename), os.O_RDONLY)
            fd = self._fd
        row = v.dtype.itemsize * v.shape[1]
        buf = b"".join(os.pread(fd, row, v.offset + int(i) * row) for i in ids)
        if len(buf) != row * len(ids):
            raise IndexFormatError(f"{v.filename}: short read (the file changed or was truncated after it was opened)")
        return np.frombuffer(buf, v.dtype).reshape(len(ids), v.shape[1]).astype(np.float32)

    def close(self) -> None:
        """Close the index: calls already running finish first, later ones raise EmbedderClosedError. Idempotent.

        Releases the memory maps, the file handle and the search threads. Metadata
        (``size``, ``dim``, ``dtype``, ``space``...) stays readable.
        """
        state = getattr(self, "_state", None)
        if state is None:  # __init__ failed before the lifecycle existed
            return
        me = threading.get_ident()
        with state:
            self._closed = True
            # A call of this thread that is in progress (close() from inside a callback) is not waited for.
            while sum(n for t, n in self._active.items() if t != me):
                state.wait()
            fd, self._fd = self._fd, None
            pools, self._executor = self._executor, None
            if not self._active:
                self._vectors = np.zeros((0, self._shape[1]), self._dtype)  # drop the memory maps
                self._paths = []
                self._ann = None
        if fd is not None:
            os.close(fd)
        for pool in (pools or {}).values():
            pool.shutdown(wait=True)

    def _require_open(self) -> None:
        if self._closed:
            raise EmbedderClosedError("the EmbeddingIndex is closed; load it again")

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _load_approximate(self, sidecar: Path, *, required: bool) -> bool:
        meta_path = Path(str(sidecar) + ".json")
        if not sidecar.exists() or not meta_path.exists():
            return False
        try:
            info = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            warnings.warn(f"{meta_path}: unreadable ({exc}); using exact search", stacklevel=3)
            return False
        fresh = (info.get("format") == _ANN_FORMAT and info.get("build_id") == self._meta.build_id
                 and self._meta.build_id is not None and info.get("count") == self.size and info.get("dim") == self.dim)
        if not fresh:
            warnings.warn(f"{sidecar} was built for another version of the index; using exact search "
                          "(rebuild it with edge-embedder index --resume)", stacklevel=3)
            return False
        try:
            ui = _import_usearch()
        except MissingDependencyError:
            if required:
                raise
            warnings.warn(f"{sidecar} needs usearch (pip install 'edge-embedder[search]'); using exact search",
                          stacklevel=3)
            return False
        try:
            ann = ui.Index.restore(str(sidecar), view=True)
        except Exception as exc:  # usearch raises RuntimeError / ValueError on bad files
            raise IndexFormatError(f"{sidecar}: not a readable usearch index (truncated or corrupt?): {exc}") from None
        if ann is None or len(ann) != self.size:
            raise IndexFormatError(f"{sidecar}: holds {0 if ann is None else len(ann)} vectors, the index {self.size}")
        ann.expansion_search = int(info.get("expansion_search", 128))
        self._ann, self._ann_info = ann, info
        return True

    # -- saving --------------------------------------------------------------------
    def save(self, path: Union[str, "os.PathLike[str]"], *, dtype: Optional[str] = None) -> Path:
        """Write the index (``.npz``: memory-mappable; ``.parquet``) atomically, with its graph if built.

        Args:
          dtype: convert the stored vectors (``float32``, ``float16``, ``int8``).

        Raises:
          OptionsError: a bad file name or ``dtype``.
          IndexFormatError: a stored row is unusable (see :meth:`load`): nothing is written.
          EmbedderClosedError: after :meth:`close`.
        """
        with self._use():
            self._check_rows(0, self.size)
            return self._save(Path(path), dtype)

    def _save(self, path: Path, dtype: Optional[str]) -> Path:
        if path.suffix not in (".npz", ".parquet"):
            raise OptionsError(f"path: expected a .npz or .parquet file name, got {path.name!r}")
        matrix = self._vectors
        if dtype is not None and dtype != self.dtype:
            if dtype not in STORAGE_DTYPES:
                raise OptionsError(f"dtype: expected one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
            matrix = np.concatenate([to_storage(chunk * (self._inv[a:b, None] if self._inv is not None else 1), dtype)
                                     for a, b, chunk in _iter_chunks(self._vectors)] or
                                    [np.zeros((0, self.dim), dtype)])
        elif self._inv is not None and self.dtype != "int8":
            matrix = np.concatenate([to_storage(chunk, self.dtype) for _, _, chunk in _iter_chunks(self._vectors)]
                                    or [np.zeros((0, self.dim), self.dtype)])
        meta = IndexMeta(**{**self._meta.__dict__, "normalized": True, "build_id": uuid.uuid4().hex})
        write_index_file(path, self.paths, matrix, meta, sizes=self._sizes, mtimes_ns=self._mtimes)
        if self._ann is not None and (dtype is None or dtype == self.dtype):
            save_approximate(self._ann, path, meta.build_id, len(matrix), self.dim, self._ann_info)
        return path


def save_approximate(ann: Any, index_path: Union[str, "os.PathLike[str]"], build_id: Optional[str],
                     count: int, dim: int, info: Mapping[str, Any]) -> Path:
    """Write a usearch graph next to ``index_path`` (``INDEX.usearch`` + ``.json``), atomically."""
    sidecar = Path(str(index_path) + _ANN_SUFFIX)
    # A locked temporary file (edge_embedder.files): usearch writes into it by name; a killed run's leftover
    # is removed by the next write.
    tmp = write_beside(sidecar, b"")
    try:
        ann.save(str(tmp))
    except BaseException:
        discard(tmp)
        raise
    publish(tmp, sidecar)
    meta = {**dict(info), "format": _ANN_FORMAT, "build_id": build_id, "count": count, "dim": dim}
    atomic_write(Path(str(sidecar) + ".json"), (json.dumps(meta, indent=1) + "\n").encode())
    return sidecar


def build_index_sidecar(index_path: Union[str, "os.PathLike[str]"], **params: Any) -> Path:
    """Build and store the HNSW graph of the index file at ``index_path``."""
    index = EmbeddingIndex.load(index_path, approximate="never")
    index.build_approximate(**params)
    return save_approximate(index._ann, index_path, index._meta.build_id, index.size, index.dim, index._ann_info)
