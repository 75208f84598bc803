"""Embed a whole folder of photos: survives bad files and interruptions.

* Files are found recursively, in sorted order; symlinked folders are followed
  once (loops are cut), broken or looping symlinks are reported.
* Every regular file is tried: unreadable, truncated, zero-byte, non-image and
  decompression-bomb files are skipped and listed with the reason in
  ``OUT.skipped.tsv``; every good image is embedded.
* Output is ``.npz`` (``paths``: str array, ``embeddings`` matrix,
  ``model_sha256``, ``head_name``, ``embedding_space``, per-file ``sizes`` and
  ``mtimes_ns``; see :mod:`edge_embedder.search`) or ``.parquet`` when
  pyarrow is installed. It is written to a temporary file and renamed, so it
  is never half-written. The output is directly an
  :class:`~edge_embedder.search.EmbeddingIndex` (``np.savez`` stores arrays
  uncompressed, so the index memory-maps them in place).
* ``storage="float16"`` / ``"int8"`` store L2-normalised vectors in that type
  (int8: MediaPipe's scalar quantization); ``"float32"`` (default) stores
  what the embedder returns.
* A checkpoint ``OUT.partial.npz`` is written the same way every
  ``checkpoint_every`` images and on Ctrl-C; ``resume=True`` continues from it
  (or from a finished OUT) without recomputing finished images, and refuses a
  checkpoint made with another model or head.
* ``resume=True`` on a finished OUT is also an incremental update: files whose
  size or mtime changed are embedded again, deleted files are dropped, new
  files are added, and the unchanged ones are never recomputed. Outputs from
  older versions have no sizes / mtimes: their files count as unchanged.
* Nothing unusable is stored: an image whose vector the model made NaN or
  infinite, all zeros, or with a norm outside ``search.NORM_RANGE`` is
  skipped and listed like a bad file; a resumed output or checkpoint row that
  is unusable (a damaged file) is not carried over: its image is embedded
  again (``EmbedDirReport.repaired``); a file whose vectors fail their zip
  CRC (damaged on disk) keeps none of its rows.
* A writer killed mid-write (power loss) leaves a hidden temporary file; the
  next write of the same output removes it (:mod:`edge_embedder.files`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .containers import dequantize, l2_normalize, quantize
from .errors import ImageError, IndexFormatError, ModelOutputError, OptionsError
from .files import atomic_write
from .progress import ProgressBar
from .search import STORAGE_DTYPES, IndexMeta, embedding_space_id, read_index_file, row_problems, write_index_file

__all__ = ["EmbedDirReport", "embed_dir", "check_output", "list_image_files", "Interrupted", "default_thread_split"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`embed_dir`; the checkpoint has been written."""

    def __init__(self, report: "EmbedDirReport") -> None:
        super().__init__(f"interrupted after {report.embedded} images; checkpoint {report.checkpoint}")
        self.report = report


@dataclass
class EmbedDirReport:
    output: Path
    embedded: int = 0  # embedded in this run
    resumed: int = 0  # carried over from a checkpoint / earlier output
    changed: int = 0  # of ``embedded``: files embedded again because their size / mtime changed
    removed: int = 0  # rows of the earlier output dropped because their file is gone
    repaired: int = 0  # rows of the earlier output that were unusable (damaged file): their images embedded again
    model_errors: int = 0  # of ``skipped``: images whose vector the model made unusable (NaN, infinite, all zeros)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.embedded + self.resumed


def list_image_files(root: str | Path) -> tuple[list[str], list[tuple[str, str]]]:
    """All regular files under ``root`` (sorted) and the entries that cannot be used."""
    files: list[str] = []
    problems: list[tuple[str, str]] = []
    seen_dirs: set[tuple[int, int]] = set()
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise OptionsError(f"{root}: expected a folder")

    def onerror(exc: OSError) -> None:
        problems.append((os.fsdecode(exc.filename or root), f"cannot list folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            problems.append((dirpath, f"cannot stat folder: {exc.strerror}"))
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError as exc:
                problems.append((path, f"cannot open: {exc.strerror} (broken or looping symlink?)"))
                continue
            if not os.path.isfile(path):
                problems.append((path, "not a regular file"))
                continue
            files.append(path)
    return files, problems


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save(path: Path, paths: list[str], vecs: list[np.ndarray], dim: int, dtype: str, meta: IndexMeta,
          stats: dict[str, tuple[int, int]]) -> None:
    matrix = np.stack(vecs).astype(dtype, copy=False) if vecs else np.zeros((0, dim), dtype)
    sizes = np.array([stats.get(p, (-1, -1))[0] for p in paths], np.int64)
    mtimes = np.array([stats.get(p, (-1, -1))[1] for p in paths], np.int64)
    meta = dataclasses.replace(meta, build_id=uuid.uuid4().hex)  # a new file: any stored HNSW graph is stale
    write_index_file(path, paths, matrix, meta, sizes=sizes, mtimes_ns=mtimes)


def _load(path: Path) -> tuple[Any, Optional[str]]:
    """An earlier output or checkpoint, read into memory (it is about to be replaced), and why it is damaged.

    A file whose vectors or paths fail their zip CRC (damaged on disk) is read
    without that check, so that its model and head can still be compared, but
    none of its rows is carried over: the second value says why (None: intact).
    """
    try:
        return read_index_file(path, mmap=False), None
    except IndexFormatError as exc:
        try:
            stored = read_index_file(path, mmap=True)  # the big members unchecked: only a damaged CRC fails above
        except IndexFormatError:
            raise exc from None
        return stored, str(exc).split(": ", 1)[-1]


def _unusable_rows(old: Any) -> set[int]:
    """Rows of an earlier output or checkpoint that must not be carried over (:func:`~edge_embedder.search.row_problems`)."""
    bad: set[int] = set()
    m = old.matrix
    step = 4096
    for a in range(0, m.shape[0], step):
        rows = np.asarray(m[a : a + step], np.float32)
        _, problems = row_problems(rows, normalized=bool(old.meta.normalized) and m.dtype != np.int8,
                                   quantized=m.dtype == np.int8)
        bad.update(a + i for i in problems)
    return bad


_START_OVER = "or pass --overwrite to start over"


def _check_resumable(source: Path, old: Any, meta: IndexMeta, storage: str) -> None:
    """An output is resumed only by a run that makes the same kind of vectors (OptionsError naming the difference)."""
    if old.meta.model_sha256 != meta.model_sha256:
        old_sha = old.meta.model_sha256 or "unknown"
        raise OptionsError(
            f"{source} was made with another model (sha256 {old_sha[:12]}..., this model "
            f"{(meta.model_sha256 or '')[:12]}...): resume with that model, {_START_OVER}"
        )
    if old.meta.embedding_space is not None and old.meta.embedding_space != meta.embedding_space:
        raise OptionsError(
            f"{source} holds embedding space {old.meta.embedding_space!r}, this run makes "
            f"{meta.embedding_space!r} (another head?): resume with the same head, {_START_OVER}"
        )
    if old.meta.head_name is not None and old.meta.head_name != meta.head_name:
        raise OptionsError(f"{source} holds head {old.meta.head_name!r}, this run {meta.head_name!r}: "
                           f"resume with the same head, {_START_OVER}")
    if old.matrix.dtype.name != storage:
        raise OptionsError(f"{source} stores {old.matrix.dtype.name} vectors, this run {storage}: "
                           f"resume with the same storage type, {_START_OVER}")
    if old.meta.normalized is not None and old.meta.normalized != meta.normalized:
        kinds = {True: "L2-normalised", False: "raw (not normalised)"}
        raise OptionsError(
            f"{source} holds {kinds[old.meta.normalized]} vectors, this run stores {kinds[bool(meta.normalized)]} "
            "ones: a resumed output must not mix the two (`index` always normalises; `embed-dir` does with "
            f"--l2-normalize); resume it the way it was made, {_START_OVER}"
        )
    old_decode = old.meta.decode or "full"  # outputs from before shrink-on-load decoded fully
    if old_decode != meta.decode:
        raise OptionsError(
            f"{source} was decoded {old_decode!r}, this run decodes {meta.decode!r}: a resumed output must not mix "
            f"two decodes; resume {'with --full-decode' if old_decode == 'full' else 'without --full-decode'}, "
            f"{_START_OVER}"
        )
    if (old.meta.geometry or None) != (meta.geometry or None):
        raise OptionsError(
            f"{source} was embedded with {old.meta.geometry or 'whole images'}, this run with "
            f"{meta.geometry or 'whole images'}: resume with the same --roi / --rotation, {_START_OVER}"
        )


def check_output(output: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Check an embed-dir output before any work: name, folder, and what is already there.

    A finished output and the checkpoint of an interrupted run (``OUT.partial.npz``) are both
    kept unless ``resume`` (continue / update them) or ``overwrite`` (start over) says otherwise.

    Raises:
      OptionsError: not a .npz / .parquet name, no such folder, or an output / checkpoint is there.
      MissingDependencyError: a .parquet output without pyarrow (the ``parquet`` extra).
    """
    from .extras import require

    out = Path(output)
    if out.suffix not in (".npz", ".parquet"):
        raise OptionsError(f"output: expected a .npz or .parquet file name, got {out.name!r}")
    if not out.parent.is_dir():
        raise OptionsError(f"output: {out.parent} is not an existing folder (create it first)")
    if out.suffix == ".parquet":
        require("parquet", "Parquet output")
    if resume or overwrite:
        return
    partial = out.with_name(out.name + ".partial.npz")
    if partial.exists():
        raise OptionsError(f"{partial} is the checkpoint of an interrupted run: pass --resume to continue it "
                           "or --overwrite to start over")
    if out.exists():
        raise OptionsError(f"{out} exists: pass --resume to update it or --overwrite to replace it")


def _geometry_tag(options: Any) -> Optional[str]:
    """``roi=l,t,r,b;rotation=deg`` for ImageProcessingOptions that change the pixels; None for whole images."""
    if options is None:
        return None
    parts = []
    roi = options.region_of_interest
    if roi is not None and (roi.left, roi.top, roi.right, roi.bottom) != (0.0, 0.0, 1.0, 1.0):
        parts.append(f"roi={roi.left:g},{roi.top:g},{roi.right:g},{roi.bottom:g}")
    if options.rotation_degrees % 360:
        parts.append(f"rotation={options.rotation_degrees % 360}")
    return ";".join(parts) or None


def default_thread_split(cores: Optional[int] = None) -> tuple[int, int]:
    """(interpreter threads, decode workers) for a folder job on ``cores`` cores (default: this machine's).

    Measured on 2 cores (benchmarks/results/shrink_decode.md): 1 interpreter
    thread with 2 decode workers beat 2 + 2 on 12 MP JPEGs: photo folders are
    decode-bound, and decoding (Pillow releases the GIL) runs beside inference. Beyond 2 cores: half of
    them for the interpreter (at most 4), every core a decode worker.
    """
    if cores is None:
        from .core.base_options import usable_cores

        cores = usable_cores()
    cores = max(1, int(cores))
    return (1 if cores <= 2 else min(4, cores // 2)), cores


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (int(st.st_size), int(st.st_mtime_ns))


def _to_storage(v: np.ndarray, storage: str) -> np.ndarray:
    """One embedding as stored: float32 as returned; float16 / int8 L2-normalised first."""
    if v.dtype == np.int8:  # the embedder quantizes itself
        if storage == "int8":
            return v
        v = dequantize(v, 1.0 / 128, 0)
    v = v.astype(np.float32, copy=False)
    if storage == "float32":
        return v
    v = l2_normalize(v)
    return v.astype(np.float16) if storage == "float16" else quantize(v)


def embed_dir(
    embedder: Any,
    root: str | Path,
    output: str | Path,
    *,
    model_path: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    checkpoint_every: int = 256,
    head: int | str = 0,
    progress: bool = True,
    storage: str = "float32",
    shrink_on_load: bool = True,
    decode_workers: Optional[int] = None,
    image_processing_options: Any = None,
) -> EmbedDirReport:
    """Embed every image under ``root`` into ``output`` (see the module docstring).

    ``shrink_on_load`` (default on): JPEG files are decoded at the smallest DCT
    scale the model's recipe allows (recipes that cannot, the MediaPipe one,
    decode fully; the output records which decode was used). ``decode_workers``:
    decoding threads (default: :func:`default_thread_split`).
    ``image_processing_options``: a region of interest / rotation applied to
    every image (recorded in the output; a resumed output keeps its own).

    Raises:
      OptionsError: bad folder / output / storage, or a checkpoint or output
        from another model, head or storage type.
      IndexFormatError: the output or checkpoint to resume is truncated or corrupt.
      Interrupted: on Ctrl-C, after writing the checkpoint.
    """
    out = Path(output)
    check_output(out, resume=resume, overwrite=overwrite)
    partial = out.with_name(out.name + ".partial.npz")
    report_path = out.with_name(out.name + ".skipped.tsv")
    head_spec = embedder.model_spec.head(head)
    head_index, dim = head_spec.index, head_spec.size
    if storage not in STORAGE_DTYPES:
        raise OptionsError(f"storage: expected one of {', '.join(STORAGE_DTYPES)}, got {storage!r}")
    meta = _index_meta(embedder, head_spec, model_path, storage, shrink_on_load, image_processing_options)

    files, problems = list_image_files(root)
    stats = {f: _stat(f) for f in files}
    source = (partial if partial.exists() else out if out.exists() else None) if resume else None
    paths, vecs, previously, removed, repaired = _carry_over(source, meta, storage, stats)
    report = EmbedDirReport(output=out, resumed=len(paths), removed=removed, repaired=repaired)
    report.skipped.extend(problems)
    done = set(paths)
    todo = [f for f in files if f not in done]

    bar = ProgressBar(len(todo), "embed-dir", "img", enabled=progress)
    started = last_ckpt = time.monotonic()
    try:
        workers = decode_workers if decode_workers is not None else default_thread_split()[1]
        for item in embedder.iter_embed(todo, image_processing_options, shrink_on_load=shrink_on_load,
                                        decode_workers=workers):
            if item.error is not None:
                reason = item.error.reason if isinstance(item.error, (ImageError, ModelOutputError)) else str(item.error)
                report.skipped.append((item.source, reason))
                report.model_errors += isinstance(item.error, ModelOutputError)
            else:
                path = todo[item.index]
                vec = _to_storage(item.result.embeddings[head_index].embedding, storage)
                _, problem = row_problems(vec.astype(np.float32)[None], quantized=vec.dtype == np.int8)
                if problem:
                    report.skipped.append((item.source, f"the model's vector is {problem[0]}"))
                    report.model_errors += 1
                    bar.update(1)
                    continue
                paths.append(path)
                vecs.append(vec)
                report.embedded += 1
                report.changed += path in previously
            bar.update(1)
            if report.embedded and (report.embedded % checkpoint_every == 0 or time.monotonic() - last_ckpt > 60):
                _save(partial, paths, vecs, dim, storage, meta, stats)
                last_ckpt = time.monotonic()
    except KeyboardInterrupt:
        bar.close()
        _save(partial, paths, vecs, dim, storage, meta, stats)
        report.checkpoint = partial
        report.seconds = time.monotonic() - started
        raise Interrupted(report) from None
    bar.close()
    _save(out, paths, vecs, dim, storage, meta, stats)
    _write_skipped(report_path, report.skipped)
    if partial.exists():
        partial.unlink()
    report.seconds = time.monotonic() - started
    return report


def _index_meta(embedder: Any, head_spec: Any, model_path: str | Path, storage: str, shrink_on_load: bool,
                image_processing_options: Any) -> IndexMeta:
    """What an ``embed_dir`` output records about how its vectors were made (checked again on resume)."""
    sha = _sha256(model_path)
    options = getattr(embedder, "options", None)
    return IndexMeta(
        model_sha256=sha, head_name=head_spec.name or str(head_spec.index), head_index=head_spec.index,
        embedding_space=embedding_space_id(sha, embedder.model_spec.metadata, head_spec.index),
        normalized=storage != "float32" or bool(getattr(options, "l2_normalize", False)),
        model_path=os.path.abspath(os.fspath(model_path)),
        decode=embedder.decode_tag(shrink_on_load),
        geometry=_geometry_tag(image_processing_options),
    )


def _carry_over(source: Optional[Path], meta: IndexMeta, storage: str, stats: dict[str, tuple[int, int]],
                ) -> tuple[list[str], list[np.ndarray], set[str], int, int]:
    """The rows of a checkpoint or output being resumed that are still good.

    Returns (paths, vectors, every path it held, rows whose file is gone, damaged rows dropped). A row is
    kept when its file still exists with the recorded size and mtime and its vector is usable; a damaged
    file keeps nothing (its images are embedded again).
    """
    paths: list[str] = []
    vecs: list[np.ndarray] = []
    previously: set[str] = set()
    removed = repaired = 0
    if source is None:
        return paths, vecs, previously, removed, repaired
    old, damaged = _load(source)
    _check_resumable(source, old, meta, storage)
    if damaged:
        bad_rows = set(range(len(old.paths)))
        warnings.warn(f"{source} is damaged ({damaged}): none of its {len(bad_rows)} rows is kept, their "
                      "images are embedded again", stacklevel=3)
    else:
        bad_rows = _unusable_rows(old)
    for i, p in enumerate(old.paths):
        p = str(p)
        previously.add(p)
        if p not in stats:
            removed += 1  # deleted since
            continue
        if i in bad_rows:
            repaired += 1  # a damaged row: never carried over, its image is embedded again
            continue
        # Older outputs record no size / mtime: their files count as unchanged.
        known = None if old.sizes is None else (int(old.sizes[i]), int(old.mtimes_ns[i]))
        if known is not None and known != stats[p]:
            continue  # changed since: embedded again below
        paths.append(p)
        vecs.append(np.asarray(old.matrix[i]))
    return paths, vecs, previously, removed, repaired


def _write_skipped(report_path: Path, skipped: list[tuple[str, str]]) -> None:
    """``OUTPUT.skipped.tsv``: one line per skipped file (removed when nothing was skipped)."""
    if skipped:
        lines = "".join(f"{p}\t{r}\n" for p, r in skipped)
        atomic_write(report_path, ("path\treason\n" + lines).encode("utf-8", "surrogateescape"))
    elif report_path.exists():
        report_path.unlink()  # from an earlier run: nothing is skipped any more


