"""Embed a corpus with Ray Data and the very model file the devices run.

``pip install 'edge-embedder[ray]'``. A callable class for
``Dataset.map_batches`` loads the model once per actor, decodes on the
workers, and returns one embedding per row plus an ``error`` column; a helper
writes the result as a Parquet file that :class:`~edge_embedder.search.EmbeddingIndex`
loads (the same schema as ``embed-dir``'s Parquet output)::

    import ray
    from edge_embedder.integrations.ray import EmbedImages, write_index_parquet

    ray.init()                                             # or ray.init(address="ray://head:10001")
    model = "models/efficientnet_lite0_fp32.tflite"        # a path every worker can read, or bytes / ray.put(bytes)
    ds = ray.data.read_binary_files("photos/", include_paths=True)          # columns: bytes, path
    out = ds.map_batches(EmbedImages, fn_constructor_kwargs={"model": model},
                         compute=ray.data.ActorPoolStrategy(size=2), batch_size=64, num_cpus=1)
    report = write_index_parquet(out, "photos.parquet", model=model)
    print(report.rows, report.errors)                      # bad images are listed, never dropped silently

Rows may carry the image as a path (``path`` column: str, or bytes from
``os.fsencode``), as the encoded file (``bytes`` column, as
``read_binary_files`` gives it) or as a decoded ``(H, W, 3)`` uint8 array
(``image`` column, as ``read_images`` gives it). Paths and bytes go through
the same decoder as ``embed-dir`` (EXIF orientation, 16-bit scaling,
decompression-bomb limit), so their vectors equal ``embed-dir``'s; arrays
decoded by another library may differ (Ray's ``read_images`` ignores EXIF
orientation).

Ray is imported only inside these functions; importing this module is cheap.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import ImageError, OptionsError
from ..extras import require
from ..vision.image import Image

__all__ = ["EmbedImages", "ModelInfo", "model_info", "write_index_parquet", "WriteReport", "SOURCE_COLUMNS", "init_local"]

#: Columns an image can come in, in the order they are looked for.
SOURCE_COLUMNS = ("image", "bytes", "path")


def _require_ray() -> Any:
    require("ray", "the Ray integration")
    import ray

    return ray


def _model_bytes(model: Any) -> tuple[Optional[bytes], Optional[str]]:
    """(bytes, None) or (None, path) from a path, bytes, or a Ray ObjectRef to bytes."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), None
    if isinstance(model, (str, os.PathLike)):
        return None, os.fspath(model)
    try:
        import ray
    except ImportError:
        raise OptionsError(f"model: expected a path or bytes, got {type(model).__name__}") from None
    if isinstance(model, ray.ObjectRef):
        return _model_bytes(ray.get(model))
    raise OptionsError(f"model: expected a path, bytes or a ray.ObjectRef to bytes, got {type(model).__name__}")


def _open_embedder(model: Any, num_threads: Optional[int], l2_normalize: bool, shrink_on_load: bool = True) -> Any:
    from .. import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    data, path = _model_bytes(model)
    base = BaseOptions(model_asset_buffer=data, num_threads=num_threads) if data is not None else \
        BaseOptions(model_asset_path=path, num_threads=num_threads)
    return ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base, l2_normalize=l2_normalize,
                                                                  shrink_on_load=shrink_on_load))


def _as_path(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        return os.fsdecode(bytes(value))
    return str(value)


class EmbedImages:
    """A callable class for ``Dataset.map_batches``: one ``ImageEmbedder`` per actor.

    Args:
      model: the model file: a path every worker can read (a shared file
        system), its bytes, or a ``ray.ObjectRef`` to its bytes (``ray.put``:
        shipped to the workers through the object store).
      column: the column holding the images (``"path"``, ``"bytes"`` or
        ``"image"``); default: the first of :data:`SOURCE_COLUMNS` present.
      head: which output head to return.
      l2_normalize: L2-normalise the vectors (default True, as an index stores them).
      num_threads: interpreter threads per actor (default 1: one actor per core).
      shrink_on_load: decode JPEG paths and bytes at the smallest DCT scale the
        model's recipe allows (default True, as ``embed-dir``; the MediaPipe
        recipe decodes fully): pass the same to :func:`write_index_parquet`.

    Each batch comes back with its other columns unchanged (the ``bytes`` /
    ``image`` column is dropped to keep the result small), plus
    ``embedding`` (``(n, dim)`` float32; NaN rows for bad images) and
    ``error`` (empty, or the reason the row's image could not be used: it
    could not be decoded, or the model made its vector NaN, infinite or all zeros).
    """

    def __init__(self, model: Any, *, column: Optional[str] = None, head: int = 0, l2_normalize: bool = True,
                 num_threads: Optional[int] = 1, shrink_on_load: bool = True) -> None:
        if column is not None and column not in SOURCE_COLUMNS:
            raise OptionsError(f"column: expected one of {', '.join(SOURCE_COLUMNS)}, got {column!r}")
        self._embedder = _open_embedder(model, num_threads, l2_normalize, shrink_on_load)
        self._shrink = shrink_on_load
        outputs = self._embedder.model_spec.outputs
        if not 0 <= head < len(outputs):
            raise OptionsError(f"head: expected 0..{len(outputs) - 1}, got {head}")
        self._head, self._dim, self._column = head, outputs[head].size, column

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        column = self._column or next((c for c in SOURCE_COLUMNS if c in batch), None)
        if column is None or column not in batch:
            raise OptionsError(f"batch: expected a column {column or ' / '.join(SOURCE_COLUMNS)}, got {sorted(batch)}")
        values = batch[column]
        n = len(values)
        paths = batch.get("path")
        # Paths and bytes are decoded (and shrunk on load) by iter_embed; arrays are wrapped here.
        inputs: list[Any] = []
        sources: list[str] = []
        for i in range(n):
            source = _as_path(paths[i]) if paths is not None else f"row {i}"
            sources.append(source)
            if column == "path":
                inputs.append(_as_path(values[i]))
            elif column == "bytes":
                inputs.append(bytes(values[i]))
            else:
                try:
                    img = Image.create_from_array(np.asarray(values[i]))
                except ImageError as exc:
                    inputs.append(exc)
                    continue
                img.source = source
                inputs.append(img)
        from ..search import row_problems

        embeddings = np.full((n, self._dim), np.nan, np.float32)
        errors = [""] * n
        good = [i for i, d in enumerate(inputs) if not isinstance(d, ImageError)]
        for i, d in enumerate(inputs):
            if isinstance(d, ImageError):
                errors[i] = f"{sources[i]}: {d.reason}"
        items = self._embedder.iter_embed([inputs[i] for i in good], decode_workers=1, shrink_on_load=self._shrink)
        for item in items:
            row = good[item.index]
            if item.error is not None:
                err = item.error
                errors[row] = f"{sources[row]}: {err.reason if isinstance(err, ImageError) else err}"
            else:
                vec = item.result.embeddings[self._head].embedding.astype(np.float32, copy=False)
                _, problem = row_problems(vec[None])
                if problem:  # e.g. an all-zero vector: no cosine can be computed with it
                    errors[row] = f"{sources[row]}: the model's vector is {problem[0]}"
                else:
                    embeddings[row] = vec
        out = {k: v for k, v in batch.items() if k not in ("bytes", "image")}
        out["embedding"] = embeddings
        out["error"] = np.array(errors, dtype=object)
        return out

    def __del__(self) -> None:
        embedder = getattr(self, "_embedder", None)
        if embedder is not None:
            embedder.close()


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about the model that made it."""

    model_sha256: str
    head_name: str
    head_index: int
    embedding_space: str
    dim: int
    decode: str = "full"  # how EmbedImages decodes image files for this model


def model_info(model: Any, head: int = 0, *, shrink_on_load: bool = True) -> ModelInfo:
    """sha256, head name, embedding-space id, size and decode of head ``head`` of ``model`` (path, bytes or ObjectRef)."""
    from ..search import embedder_space_id

    with _open_embedder(model, 1, False, shrink_on_load) as e:
        outputs = e.model_spec.outputs
        if not 0 <= head < len(outputs):
            raise OptionsError(f"head: expected 0..{len(outputs) - 1}, got {head}")
        return ModelInfo(e.model_sha256, outputs[head].name or str(head), head, embedder_space_id(e, head),
                         outputs[head].size, e.decode_tag())


@dataclass
class WriteReport:
    """What :func:`write_index_parquet` wrote: good rows, and every bad row with its reason."""

    output: Path
    rows: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def write_index_parquet(
    dataset: Any,
    path: Union[str, "os.PathLike[str]"],
    *,
    model: Any,
    head: int = 0,
    normalized: bool = True,
    batch_size: int = 1024,
    shrink_on_load: bool = True,
) -> WriteReport:
    """Stream the output of :class:`EmbedImages` into one Parquet file that ``EmbeddingIndex`` loads.

    Rows whose ``error`` is set are not written to the index; they are listed
    in the report and in ``PATH.skipped.tsv`` (as ``embed-dir`` does). So are
    rows without an error whose vector cannot be stored (NaN or infinite
    values, all zeros, a norm outside ``search.NORM_RANGE``, or not 1 with
    ``normalized=True``; :func:`~edge_embedder.search.row_problems`). The
    file is written to a temporary name and renamed.

    Args:
      dataset: a Ray ``Dataset`` (or any object with ``iter_batches``) with
        ``path``, ``embedding`` and ``error`` columns.
      model: the model the embeddings came from (path, bytes or ObjectRef):
        its sha256 and embedding-space id go into the file.
      normalized: whether the vectors are L2-normalised (``EmbedImages``' default).
      shrink_on_load: what ``EmbedImages`` was given (recorded as the file's decode).

    Raises:
      OptionsError: a column is missing, or the output name is not ``.parquet``.
      MissingDependencyError: the ray extra (Ray Data, pyarrow) is not installed.
    """
    from ..files import atomic_write
    from ..search import IndexMeta, _import_pyarrow, display_path, row_problems

    out = Path(path)
    if out.suffix != ".parquet":
        raise OptionsError(f"path: expected a .parquet file name, got {out.name!r}")
    require("ray", "write_index_parquet")  # pyarrow comes with the ray extra
    pa, pq = _import_pyarrow("Parquet index files")
    info = model_info(model, head, shrink_on_load=shrink_on_load)
    meta = IndexMeta(model_sha256=info.model_sha256, head_name=info.head_name, head_index=head,
                     embedding_space=info.embedding_space, normalized=normalized, build_id=uuid.uuid4().hex,
                     decode=info.decode)
    schema = pa.schema([("path", pa.string()), ("path_bytes", pa.binary()),
                        ("embedding", pa.list_(pa.float32(), info.dim))]).with_metadata(meta.to_strings())
    report = WriteReport(output=out)

    def write(f: Any) -> None:
        with pq.ParquetWriter(f, schema) as writer:
            for batch in dataset.iter_batches(batch_format="numpy", batch_size=batch_size):
                missing = {"path", "embedding", "error"} - set(batch)
                if missing:
                    raise OptionsError(f"dataset: expected columns path, embedding, error; missing {sorted(missing)} "
                                       "(map it with EmbedImages, and read_binary_files(..., include_paths=True))")
                paths = [_as_path(p) for p in batch["path"]]
                emb = np.asarray(batch["embedding"], np.float32)
                if emb.ndim != 2 or emb.shape[1] != info.dim:
                    raise OptionsError(f"embedding column: expected (n, {info.dim}) vectors, got shape {emb.shape}")
                ok = np.array([not e for e in batch["error"]], bool)
                report.errors.extend((p, str(e)) for p, e in zip(paths, batch["error"]) if e)
                unit = np.eye(1, info.dim, dtype=np.float32)  # stands in for the rows already refused
                _, problems = row_problems(np.where(ok[:, None], emb, unit), normalized=normalized)
                for i, why in sorted(problems.items()):
                    ok[i] = False
                    report.errors.append((paths[i], f"vector not stored: {why}"))
                if not ok.any():
                    continue
                good = [p for p, keep in zip(paths, ok) if keep]
                vecs = np.ascontiguousarray(emb[ok])
                table = pa.table({
                    "path": pa.array([display_path(p) for p in good], pa.string()),
                    "path_bytes": pa.array([os.fsencode(p) for p in good], pa.binary()),
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), info.dim),
                }, schema=schema)
                writer.write_table(table)
                report.rows += len(good)

    atomic_write(out, write)
    lines = "".join(f"{p}\t{r}\n" for p, r in report.errors)
    atomic_write(out.with_name(out.name + ".skipped.tsv"),
                 ("path\treason\n" + lines).encode("utf-8", "surrogateescape"))
    return report


def init_local(num_cpus: int = 2, **kwargs: Any) -> Any:
    """``ray.init`` for a single machine (no dashboard), as the tests and benchmarks use it."""
    ray = _require_ray()
    return ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, **kwargs)
