"""Embed a whole folder of photos: survives bad files and interruptions.

* Files are found recursively, in sorted order; symlinked folders are followed
  once (loops are cut), broken or looping symlinks are reported.
* Every regular file is tried: unreadable, truncated, zero-byte, non-image and
  decompression-bomb files are skipped and listed with the reason in
  ``OUT.skipped.tsv``; every good image is embedded.
* Output is ``.npz`` (``paths``: str array, ``embeddings``: float32 matrix,
  ``model_sha256``, ``head_name``) or ``.parquet`` when pyarrow is installed.
  It is written to a temporary file and renamed, so it is never half-written.
* A checkpoint ``OUT.partial.npz`` is written the same way every
  ``checkpoint_every`` images and on Ctrl-C; ``resume=True`` continues from it
  (or from a finished OUT) without recomputing finished images, and refuses a
  checkpoint made with another model.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import ImageError, OptionsError
from .files import atomic_write
from .progress import ProgressBar

__all__ = ["EmbedDirReport", "embed_dir", "list_image_files", "Interrupted"]


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


def _save(path: Path, paths: list[str], vecs: list[np.ndarray], dim: int, sha: str, head: str) -> None:
    matrix = np.stack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "path": pa.array([p.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for p in paths]),
                "path_bytes": pa.array([os.fsencode(p) for p in paths], type=pa.binary()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim),
            }
        )
        table = table.replace_schema_metadata({"model_sha256": sha, "head_name": head})
        atomic_write(path, lambda f: pq.write_table(table, f))
        return
    atomic_write(
        path,
        lambda f: np.savez(f, paths=np.array(paths, dtype=str), embeddings=matrix,
                           model_sha256=np.array(sha), head_name=np.array(head)),
    )


def _load(path: Path) -> tuple[list[str], np.ndarray, str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
        paths = [os.fsdecode(b) for b in t.column("path_bytes").to_pylist()]
        emb = np.array(t.column("embedding").to_pylist(), np.float32)
        return paths, emb, meta.get("model_sha256", "")
    with np.load(path, allow_pickle=False) as z:
        return [str(p) for p in z["paths"]], z["embeddings"], str(z["model_sha256"])


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
) -> EmbedDirReport:
    """Embed every image under ``root`` into ``output`` (see the module docstring).

    Raises:
      OptionsError: bad folder / output, or a checkpoint from another model.
      Interrupted: on Ctrl-C, after writing the checkpoint.
    """
    out = Path(output)
    if out.suffix not in (".npz", ".parquet"):
        raise OptionsError(f"output: expected a .npz or .parquet file name, got {out.name!r}")
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise OptionsError("Parquet output needs pyarrow: pip install pyarrow (or write .npz)") from None
    partial = out.with_name(out.name + ".partial.npz")
    report_path = out.with_name(out.name + ".skipped.tsv")
    if out.exists() and not (resume or overwrite):
        raise OptionsError(f"{out} exists: pass --resume to continue it or --overwrite to replace it")
    if not out.parent.is_dir():
        raise OptionsError(f"output: {out.parent} is not an existing folder (create it first)")
    head_spec = embedder.model_spec.head(head)
    head = head_spec.index
    sha = _sha256(model_path)
    dim = head_spec.size
    head_name = head_spec.name or str(head)

    paths: list[str] = []
    vecs: list[np.ndarray] = []
    if resume:
        source = partial if partial.exists() else out if out.exists() else None
        if source is not None:
            old_paths, old_emb, old_sha = _load(source)
            if old_sha != sha:
                raise OptionsError(
                    f"{source} was made with another model (sha256 {old_sha[:12]}..., this model {sha[:12]}...); "
                    "rerun without --resume"
                )
            paths, vecs = list(old_paths), list(old_emb)
    report = EmbedDirReport(output=out, resumed=len(paths))
    files, problems = list_image_files(root)
    report.skipped.extend(problems)
    done = set(paths)
    todo = [f for f in files if f not in done]

    bar = ProgressBar(len(todo), "embed-dir", "img", enabled=progress)
    started = last_ckpt = time.monotonic()
    try:
        for item in embedder.iter_embed(todo):
            if item.error is not None:
                reason = item.error.reason if isinstance(item.error, ImageError) else str(item.error)
                report.skipped.append((item.source, reason))
            else:
                paths.append(todo[item.index])
                vecs.append(item.result.embeddings[head].embedding.astype(np.float32, copy=False))
                report.embedded += 1
            bar.update(1)
            if report.embedded and (report.embedded % checkpoint_every == 0 or time.monotonic() - last_ckpt > 60):
                _save(partial, paths, vecs, dim, sha, head_name)
                last_ckpt = time.monotonic()
    except KeyboardInterrupt:
        bar.close()
        _save(partial, paths, vecs, dim, sha, head_name)
        report.checkpoint = partial
        report.seconds = time.monotonic() - started
        raise Interrupted(report) from None
    bar.close()
    _save(out, paths, vecs, dim, sha, head_name)
    if report.skipped:
        lines = "".join(f"{p}\t{r}\n" for p, r in report.skipped)
        atomic_write(report_path, ("path\treason\n" + lines).encode("utf-8", "surrogateescape"))
    elif report_path.exists():
        report_path.unlink()  # from an earlier run: nothing is skipped any more
    if partial.exists():
        partial.unlink()
    report.seconds = time.monotonic() - started
    return report


