"""What the subcommands share: argument types, the model / geometry arguments, CliError.

Only argparse is imported at module import; the runtime is imported inside the
functions that need it, so ``edge-embedder --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Optional

from ..argtypes import positive_int, roi, rotation
from ..exit_codes import ExitCode

__all__ = [
    "CliError",
    "add_model_args",
    "add_geometry_args",
    "make_embedder",
    "check_output_folder",
    "add_folder_args",
    "embed_folder",
    "folder_threads",
    "make_text_embedder",
    "processing_options",
    "write_output",
    "check_text_args",
]


class CliError(Exception):
    """A one-line error and its exit code; ``main`` prints it and returns the code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = int(code)


def check_text_args(values: Any, what: str) -> None:
    """A one-line usage error (exit 2) for a text argument that is not valid UTF-8 (Python hands it over as surrogates)."""
    from ..errors import TextInputError
    from ..text.tokenizer import check_text

    for i, v in enumerate([values] if isinstance(values, str) else values):
        try:
            check_text(v, what if isinstance(values, str) else f"{what} {i + 1}")
        except TextInputError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None


def add_model_args(p: argparse.ArgumentParser, default: str = "the shipped EfficientNet-Lite0 fp32") -> None:
    p.add_argument("--model", "-m", help=f"model file (.tflite or .onnx); default: {default}")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads (default: cores, max 4)")


def add_geometry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--roi", type=roi, default=None, metavar="L,T,R,B",
                   help="region of interest, normalized to [0, 1], e.g. 0.1,0.1,0.9,0.9")
    p.add_argument("--rotation", type=rotation, default=0, metavar="DEG",
                   help="rotate the (cropped) image clockwise by a multiple of 90 degrees")


def make_embedder(args: argparse.Namespace, *, l2: bool = False, quantize: bool = False, **options: Any) -> Any:
    """An ImageEmbedder on ``args.model`` (default: the shipped fp32 model) with ``args.threads``.

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
        **options,
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


def processing_options(args: argparse.Namespace) -> Optional[Any]:
    """ImageProcessingOptions from ``--roi`` / ``--rotation``, or None when neither is given."""
    from ..vision import ImageProcessingOptions

    if args.roi is None and not args.rotation:
        return None
    return ImageProcessingOptions(region_of_interest=args.roi, rotation_degrees=args.rotation)


def check_output_folder(out: str) -> None:
    """A usage error when the output file's folder does not exist (it is not created silently)."""
    parent = Path(out).parent
    if not parent.is_dir():
        raise CliError(f"-o {out}: the folder {parent} does not exist (create it first)", ExitCode.USAGE)
    if os.path.isdir(out):
        raise CliError(f"-o {out}: is a folder, expected a file name", ExitCode.USAGE)


def add_folder_args(p: argparse.ArgumentParser, what: str = "output") -> None:
    """The arguments the folder commands share (``embed-dir``, ``index``): resume, head, progress, decoding."""
    p.add_argument("--resume", action="store_true",
                   help=f"continue an interrupted run, or update a finished {what}: embed new and changed files, "
                        "drop deleted ones, never recompute the others")
    p.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")
    p.add_argument("--head", default="0", metavar="INDEX|NAME", help="which output head to store: index or name (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--full-decode", action="store_true",
                   help="decode every JPEG at full resolution (default: shrink-on-load, at the smallest DCT scale "
                        "the model's recipe allows; the MediaPipe recipe always decodes fully)")
    p.add_argument("--decode-workers", type=positive_int, default=None, metavar="N",
                   help="decoding threads (default: the cores; with --threads unset, 1 interpreter thread on 2 cores)")


def embed_folder(args: argparse.Namespace, *, l2: bool, storage: str = "float32") -> tuple[Optional[Any], int]:
    """Run ``embed_dir`` for a folder command: (its report, the stored head's size), or (None, 0) when interrupted.

    An interrupt prints where the checkpoint is; the caller returns ``ExitCode.INTERRUPTED``.
    """
    import sys

    from ..folder import Interrupted, embed_dir
    from ..resources import default_model_path

    check_output_folder(args.out)
    args.model = args.model or str(default_model_path("fp32"))
    workers = folder_threads(args)
    with make_embedder(args, l2=l2) as embedder:
        try:
            report = embed_dir(
                embedder, args.folder, args.out, model_path=args.model, resume=args.resume, overwrite=args.overwrite,
                head=args.head, progress=not args.no_progress, storage=storage,
                shrink_on_load=not args.full_decode, decode_workers=workers,
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


def folder_threads(args: argparse.Namespace) -> int:
    """Fill in the folder commands' thread split (``args.threads`` when unset); the decode workers."""
    from ..folder import default_thread_split

    threads, workers = default_thread_split()
    if args.threads is None:
        args.threads = threads
    return int(args.decode_workers or workers)

