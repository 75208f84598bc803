"""``edge-embedder embed-dir``: every image under a folder into .npz / .parquet, resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import add_folder_args, add_image_args, add_model_args, check_folder_output, embed_folder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed-dir", help="embed every image under a folder into .npz / .parquet (resumable)")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-o", "--out", required=True, help="output file: OUT.npz, or OUT.parquet when pyarrow is installed")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    add_folder_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_folder_output(args, "embed-dir")
    report, _ = embed_folder(args, l2=args.l2_normalize)
    if report is None:
        return ExitCode.INTERRUPTED
    rate = report.embedded / report.seconds if report.seconds > 0 else 0.0
    print(f"embedded {report.embedded} images ({report.resumed} resumed) into {report.output} "
          f"in {report.seconds:.1f} s ({rate:.1f} img/s); skipped {len(report.skipped)}"
          + (f", listed in {report.output.name}.skipped.tsv" if report.skipped else "")
          + (f"; {report.repaired} damaged rows of the earlier output embedded again" if report.repaired else ""),
          file=sys.stderr)
    return ExitCode.PARTIAL if report.skipped else ExitCode.OK
