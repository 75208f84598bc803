"""``edge-embedder index DIR -o INDEX``: embed-dir that builds a search index in one go.

It is ``embed-dir`` with L2-normalised vectors, a storage type and, for large
collections, the HNSW graph: the output is the same file format, because an
``embed-dir`` output already is an index (its arrays are stored uncompressed
and memory-mapped in place by ``EmbeddingIndex``). ``--resume`` updates it
incrementally (new, changed and deleted files). Exit codes as ``embed-dir``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..exit_codes import ExitCode
from .common import add_folder_args, add_image_args, add_model_args, check_folder_output, embed_folder


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "index", help="embed-dir with L2-normalised vectors, a storage type and an HNSW graph when large",
        description="Embed every image under DIR into an index (embed-dir's format; --resume updates it "
                    "incrementally: new, changed and deleted files).",
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-o", "--out", required=True, help="index file: OUT.npz (memory-mapped) or OUT.parquet")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--dtype", choices=("float32", "float16", "int8"), default="float32",
                   help="storage of the normalised vectors (int8: MediaPipe's scalar quantization)")
    p.add_argument("--approximate", choices=("auto", "always", "never"), default="auto",
                   help="build the HNSW graph: auto = above the measured size threshold (needs the [search] extra)")
    add_folder_args(p, "index")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import MissingDependencyError
    from ..search import APPROXIMATE_MIN_ELEMENTS, build_index_sidecar

    check_folder_output(args, "index")
    if args.approximate == "always":
        from ..extras import require

        require("search", "index --approximate always (the HNSW graph)")
    report, dim = embed_folder(args, l2=True, storage=args.dtype)
    if report is None:
        return ExitCode.INTERRUPTED
    sidecar = Path(str(report.output) + ".usearch")
    big = report.total * dim >= APPROXIMATE_MIN_ELEMENTS
    graph = ""
    if args.approximate == "always" or (args.approximate == "auto" and big):
        try:
            build_index_sidecar(report.output)
            graph = f"; HNSW graph {sidecar.name}"
        except MissingDependencyError as exc:
            if args.approximate != "auto":
                raise
            print(f"edge-embedder: note: {report.total} vectors: exact search only ({exc})", file=sys.stderr)
    else:
        for stale in (sidecar, Path(str(sidecar) + ".json")):
            if stale.exists():
                stale.unlink()
    rate = report.embedded / report.seconds if report.seconds > 0 else 0.0
    print(
        f"indexed {report.total} images into {report.output} ({args.dtype}{graph}): {report.embedded} embedded "
        f"({report.changed} changed), {report.resumed} unchanged, {report.removed} removed, in "
        f"{report.seconds:.1f} s ({rate:.1f} img/s); skipped {len(report.skipped)}"
        + (f", listed in {report.output.name}.skipped.tsv" if report.skipped else "")
        + (f"; {report.repaired} damaged rows of the earlier index embedded again" if report.repaired else ""),
        file=sys.stderr,
    )
    return ExitCode.PARTIAL if report.skipped else ExitCode.OK
