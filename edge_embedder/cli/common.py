"""What the subcommands share: one flag vocabulary, the per-input report, CliError.

Every command spells the same thing the same way (docs/cli.md has the table):

* a model: ``--model/-m MODEL`` (a file or a shipped model's name) and ``--threads N``;
* images: ``--roi L,T,R,B``, ``--rotation DEG`` and ``--max-pixels N`` on every command that reads images;
* the output: ``--format FMT`` (the old spelling ``--output FMT`` still works) and ``-o/--out FILE``;
* a result count: ``--top-k/-k K``; a model output: ``--head INDEX|NAME``.

A command that takes several inputs reports each one in input order, the ones it
could not use as ``{"image"|"text": ..., "error": {"type", "reason"}}`` records
(:class:`InputReport`), and exits 1 when some were skipped, 4 when none could be used.

Only argparse is imported at module import; the runtime is imported inside the
functions that need it, so ``edge-embedder --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from ..argtypes import model_file, positive_int, roi, rotation
from ..exit_codes import ExitCode

__all__ = [
    "CliError",
    "InputReport",
    "add_model_args",
    "add_image_args",
    "add_output_args",
    "add_top_k",
    "add_head_arg",
    "add_folder_args",
    "make_embedder",
    "make_text_embedder",
    "image_options",
    "processing_options",
    "check_output_folder",
    "embed_folder",
    "folder_threads",
    "write_output",
    "write_vectors",
    "ROW_KEYS",
    "add_threads_arg",
    "check_folder_output",
]

#: What the rows of an array output are, by input kind: the key of their list in .npz / .npy.json outputs.
ROW_KEYS = {"image": "paths", "text": "texts"}


class CliError(Exception):
    """A one-line error and its exit code; ``main`` prints it and returns the code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = int(code)


# -- arguments ------------------------------------------------------------------------------------


def add_model_args(p: argparse.ArgumentParser, default: str = "efficientnet-lite0 (the shipped embedder, fp32)") -> None:
    p.add_argument("--model", "-m", type=model_file, metavar="MODEL",
                   help=f"model file (.tflite or .onnx) or shipped model name (edge-embedder models); default: {default}")
    add_threads_arg(p)


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="interpreter threads (default: the cores, at most 4)")


def add_image_args(p: argparse.ArgumentParser) -> None:
    """The image options every command that reads images takes."""
    p.add_argument("--roi", type=roi, default=None, metavar="L,T,R,B",
                   help="region of interest, normalized to [0, 1], e.g. 0.1,0.1,0.9,0.9")
    p.add_argument("--rotation", type=rotation, default=0, metavar="DEG",
                   help="rotate the (cropped) image clockwise by a multiple of 90 degrees")
    p.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                   help="pixel budget of image files (default 67108864 = 2**26); larger files are skipped")


def add_output_args(p: argparse.ArgumentParser, formats: Sequence[str], *, file_help: str,
                    format_help: str = "") -> None:
    """``--format FMT`` (default: the first of ``formats``; ``--output FMT`` is its old spelling) and ``-o/--out FILE``."""
    p.add_argument("--format", dest="format", choices=formats, default=formats[0],
                   help=format_help or f"{' | '.join(formats)} (default {formats[0]})")
    p.add_argument("--output", dest="format", choices=formats, help=argparse.SUPPRESS)
    p.add_argument("-o", "--out", metavar="FILE", help=file_help)


def add_top_k(p: argparse.ArgumentParser, default: Optional[int], help: str) -> None:
    p.add_argument("--top-k", "-k", dest="top_k", type=positive_int, default=default, metavar="K", help=help)


def add_head_arg(p: argparse.ArgumentParser, help: str, default: Optional[str] = "0") -> None:
    p.add_argument("--head", default=default, metavar="INDEX|NAME", help=help)


def add_folder_args(p: argparse.ArgumentParser, what: str = "output") -> None:
    """The arguments the folder commands share (``embed-dir``, ``index``): resume, head, progress, decoding."""
    p.add_argument("--resume", action="store_true",
                   help=f"continue an interrupted run, or update a finished {what}: embed new and changed files, "
                        "drop deleted ones, never recompute the others")
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace an existing {what} (or discard the checkpoint of an interrupted run)")
    add_head_arg(p, "which output head to store: index or name (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--full-decode", action="store_true",
                   help="decode every JPEG at full resolution (default: shrink-on-load, at the smallest DCT scale "
                        "the model's recipe allows; the MediaPipe recipe always decodes fully)")
    p.add_argument("--decode-workers", type=positive_int, default=None, metavar="N",
                   help="decoding threads (default: the cores; with --threads unset, 1 interpreter thread on 2 cores)")


# -- what the arguments make ----------------------------------------------------------------------


def image_options(args: argparse.Namespace) -> dict[str, Any]:
    """The image options of a vision task's options (``max_image_pixels`` from ``--max-pixels``)."""
    return {} if getattr(args, "max_pixels", None) is None else {"max_image_pixels": args.max_pixels}


def processing_options(args: argparse.Namespace) -> Optional[Any]:
    """ImageProcessingOptions from ``--roi`` / ``--rotation``, or None when neither is given."""
    from ..vision import ImageProcessingOptions

    if args.roi is None and not args.rotation:
        return None
    return ImageProcessingOptions(region_of_interest=args.roi, rotation_degrees=args.rotation)


def make_embedder(args: argparse.Namespace, *, l2: bool = False, quantize: bool = False, **options: Any) -> Any:
    """An ImageEmbedder on ``args.model`` (default: the shipped fp32 model) with ``args.threads`` and the image options.

    ``options`` are further ``ImageEmbedderOptions`` fields.
    """
    from ..core.base_options import BaseOptions
    from ..resources import default_model_path
    from ..vision import ImageEmbedder, ImageEmbedderOptions

    model = args.model or default_model_path("fp32")
    opts = ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=model, num_threads=args.threads),
        l2_normalize=l2,
        quantize=quantize,
        **{**image_options(args), **options},
    )
    return ImageEmbedder.create_from_options(opts)


def make_text_embedder(model: str, threads: Optional[int], *, l2: bool = False, quantize: bool = False) -> Any:
    """A TextEmbedder on ``model`` with ``threads`` (MissingDependencyError without the text extra)."""
    from ..core.base_options import BaseOptions
    from ..text import TextEmbedder, TextEmbedderOptions

    opts = TextEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=threads),
                               l2_normalize=l2, quantize=quantize)
    return TextEmbedder.create_from_options(opts)


def write_output(text: str, out: Optional[str]) -> None:
    """``text`` to the file ``out`` (atomically) or to stdout."""
    from ..files import atomic_write

    if out:
        atomic_write(out, text.encode("utf-8") + b"\n")
    else:
        print(text)


def check_output_folder(out: str) -> None:
    """A usage error when the output file's folder does not exist (it is not created silently)."""
    parent = Path(out).parent
    if not parent.is_dir():
        raise CliError(f"-o {out}: the folder {parent} does not exist (create it first)", ExitCode.USAGE)
    if os.path.isdir(out):
        raise CliError(f"-o {out}: is a folder, expected a file name", ExitCode.USAGE)


def write_vectors(fmt: str, out: str, rows: Sequence[Any], report: "InputReport", *, head: Any, model: str) -> None:
    """An array output (``npy`` / ``npz``) that says what its rows are.

    ``npz``: ``embeddings`` (one row per used input), ``paths`` or ``texts`` (the rows' inputs, in row
    order), ``skipped_paths`` / ``skipped_texts`` and ``skipped_reasons``, ``head_index``, ``head_name``,
    ``model``. ``npy``: the matrix, and the same record in ``OUT.json`` beside it (``"rows": "paths"``, the
    ``paths``, ``skipped`` as ``[{"path", "reason"}]``; texts alike).
    """
    import json

    import numpy as np

    from ..files import atomic_write

    key = ROW_KEYS[report.kind]
    used = [r[report.kind] for r in report.records if "error" not in r]
    matrix = np.stack(rows)
    if fmt == "npy":
        atomic_write(out, lambda f: np.save(f, matrix))
        side = {"rows": key, key: used, "skipped": [{key[:-1]: s, "reason": r} for s, r in report.skipped],
                "head_index": head.index, "head_name": head.name, "model": model}
        atomic_write(out + ".json", (json.dumps(side, indent=1, ensure_ascii=False) + "\n").encode())
    else:
        arrays: dict[str, Any] = {
            "embeddings": matrix, key: np.array(used, dtype=str),
            f"skipped_{key}": np.array([s for s, _ in report.skipped], dtype=str),
            "skipped_reasons": np.array([r for _, r in report.skipped], dtype=str),
            "head_index": np.array(head.index), "head_name": np.array(head.name or str(head.index)),
            "model": np.array(model),
        }
        atomic_write(out, lambda f: np.savez(f, **arrays))


# -- what a command did with each of its inputs ---------------------------------------------------


class InputReport:
    """One record per input, in input order: a result, or ``{kind: input, "error": {"type", "reason"}}``.

    ``kind`` is ``"image"`` or ``"text"``. Skipped inputs are also noted on stderr.
    :meth:`exit_code` is 1 (partial) when some were skipped; it raises CliError
    (exit 4) when none could be used, (exit 3) when the model made every one unusable.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.records: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []  # (input, reason)
        self.model_errors = 0  # of the skipped: inputs the model made NaN / infinite (ModelOutputError)

    def _shown(self, source: str) -> str:
        # An image path that is not UTF-8 is shown with \xNN escapes: printing it must not fail.
        from ..search import display_path

        return display_path(source) if self.kind == "image" else source

    def add(self, source: str, **result: Any) -> None:
        self.records.append({self.kind: self._shown(source), **result})

    def skip(self, source: str, exc: BaseException) -> None:
        from ..errors import ModelOutputError

        reason = str(getattr(exc, "reason", None) or exc)
        self.skipped.append((source, reason))
        self.model_errors += isinstance(exc, ModelOutputError)
        self.records.append({self.kind: self._shown(source), "error": {"type": type(exc).__name__, "reason": reason}})
        print(f"edge-embedder: skipped {self._shown(source)}: {reason}", file=sys.stderr)

    @property
    def used(self) -> int:
        return len(self.records) - len(self.skipped)

    def exit_code(self, verb: str = "used") -> int:
        if not self.used and self.skipped and self.model_errors == len(self.skipped):
            raise CliError(f"the model returned unusable values for every {self.kind} ({self.skipped[0][1]})",
                           ExitCode.MODEL)
        if not self.used:
            raise CliError(f"no {self.kind} could be {verb} ({len(self.skipped)} skipped)", ExitCode.INPUT)
        return ExitCode.PARTIAL if self.skipped else ExitCode.OK


# -- the folder commands --------------------------------------------------------------------------


def embed_folder(args: argparse.Namespace, *, l2: bool, storage: str = "float32") -> tuple[Optional[Any], int]:
    """Run ``embed_dir`` for a folder command: (its report, the stored head's size), or (None, 0) when interrupted.

    An interrupt prints where the checkpoint is; the caller returns ``ExitCode.INTERRUPTED``.
    """
    from ..folder import Interrupted, embed_dir
    from ..resources import default_model_path

    args.model = args.model or str(default_model_path("fp32"))
    workers = folder_threads(args)
    with make_embedder(args, l2=l2) as embedder:
        try:
            report = embed_dir(
                embedder, args.folder, args.out, model_path=args.model, resume=args.resume, overwrite=args.overwrite,
                head=args.head, progress=not args.no_progress, storage=storage,
                shrink_on_load=not args.full_decode, decode_workers=workers,
                image_processing_options=processing_options(args),
            )
        except Interrupted as exc:
            r = exc.report
            print(f"edge-embedder: interrupted: {r.total} images embedded, checkpoint {r.checkpoint}; "
                  "rerun with --resume to continue", file=sys.stderr)
            return None, 0
        if report.total == 0 and report.model_errors and report.model_errors == len(report.skipped):
            raise CliError(f"the model returned an unusable vector for every image ({report.model_errors}, listed in "
                           f"{report.output.name}.skipped.tsv): is the model file damaged?", ExitCode.MODEL)
        return report, embedder.model_spec.head(args.head).size


def check_folder_output(args: argparse.Namespace, what: str) -> None:
    """Before any work: the output's folder exists, its format's extra is installed, and an existing output
    or an interrupted run's checkpoint is only touched with --resume / --overwrite."""
    from ..extras import require
    from ..folder import check_output

    check_output_folder(args.out)
    if str(args.out).lower().endswith(".parquet"):
        require("parquet", f"{what} -o {Path(args.out).name} (Parquet output)")
    check_output(args.out, resume=args.resume, overwrite=args.overwrite)


def folder_threads(args: argparse.Namespace) -> int:
    """Fill in the folder commands' thread split (``args.threads`` when unset); the decode workers."""
    from ..folder import default_thread_split

    threads, workers = default_thread_split()
    if args.threads is None:
        args.threads = threads
    return int(args.decode_workers or workers)
