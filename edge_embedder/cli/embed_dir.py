"""``edge-embedder embed-dir``: every image under a folder into .npz / .parquet, resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import add_folder_args, add_model_args, check_output_folder, folder_threads, make_embedder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed-dir", help="embed every image under a folder into .npz / .parquet (resumable)")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-o", "--out", required=True, help="output file: OUT.npz, or OUT.parquet when pyarrow is installed")
    add_model_args(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run without recomputing finished images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--head", default="0", metavar="INDEX|NAME", help="which output head to store: index or name (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_folder_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..folder import Interrupted, embed_dir
    from ..resources import default_model_path

    check_output_folder(args.out)
    model = args.model or str(default_model_path("fp32"))
    args.model = model
    workers = folder_threads(args)
    with make_embedder(args, l2=args.l2_normalize) as embedder:
        try:
            report = embed_dir(
                embedder, args.folder, args.out, model_path=model, resume=args.resume,
                overwrite=args.overwrite, head=args.head, progress=not args.no_progress,
                shrink_on_load=not args.full_decode, decode_workers=workers,
            )
        except Interrupted as exc:
            r = exc.report
            print(f"edge-embedder: interrupted: {r.total} images embedded, checkpoint {r.checkpoint}; "
                  "rerun with --resume to continue", file=sys.stderr)
            return ExitCode.INTERRUPTED
    rate = report.embedded / report.seconds if report.seconds > 0 else 0.0
    print(f"embedded {report.embedded} images ({report.resumed} resumed) into {report.output} "
          f"in {report.seconds:.1f} s ({rate:.1f} img/s); skipped {len(report.skipped)}"
          + (f", listed in {report.output.name}.skipped.tsv" if report.skipped else ""), file=sys.stderr)
    return ExitCode.PARTIAL if report.skipped else ExitCode.OK
