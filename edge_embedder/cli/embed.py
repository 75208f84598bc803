"""``edge-embedder embed``: embed images, print or save the vectors.

Output contract, the same whatever the number of images:

* ``--format json`` (default): a JSON list with one record per input, in input
  order: ``{"image", "embeddings": [{"head_index", "head_name", "embedding"}]}``
  or, for an image that could not be used, ``{"image", "error": {"type", "reason"}}``.
* ``--format npy -o X.npy``: a 2-D array, one row per embedded image (the
  ``--head``), and ``X.npy.json`` beside it: ``"rows": "paths"``, the ``paths``
  of the rows in row order, the ``skipped`` inputs (``{"path", "reason"}``), the head and the model.
* ``--format npz -o X.npz``: the same in one file (``embeddings``, ``paths``,
  ``skipped_paths``, ``skipped_reasons``, ``head_index``, ``head_name``, ``model``).

Exit code 1 when some inputs were skipped (the others are written), 4 when none could be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import (
    CliError,
    InputReport,
    add_head_arg,
    add_image_args,
    add_model_args,
    add_output_args,
    check_output_folder,
    make_embedder,
    processing_options,
    write_output,
    write_vectors,
)

_QUANTIZE_HELP = ("scalar-quantize each embedding to int8 (clamp(round(v*128), -128, 127), as MediaPipe); "
                  "use it with --l2-normalize: raw values beyond +-127/128 saturate at the int8 limits")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed", help="embed images and print / save the vectors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help=_QUANTIZE_HELP)
    add_output_args(p, ("json", "npy", "npz"), file_help="write to this file (atomically) instead of stdout; "
                    "needed by npy / npz",
                    format_help="json (default: a list, one record per image), npy (-o X.npy, the rows' paths in "
                    "X.npy.json) or npz (-o X.npz: vectors and paths in one file)")
    add_head_arg(p, "the output head written by --format npy / npz: its index or name (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ImageError, ModelOutputError

    if args.format in ("npy", "npz") and not args.out:
        raise CliError(f"--format {args.format} needs -o FILE.{args.format}", ExitCode.USAGE)
    if args.out:
        check_output_folder(args.out)
    if args.quantize and not args.l2_normalize:
        print("edge-embedder: warning: --quantize without --l2-normalize: values beyond +-127/128 saturate "
              "at the int8 limits (MediaPipe does the same); add --l2-normalize", file=sys.stderr)
    ipo = processing_options(args)
    report = InputReport("image")
    rows: list[Any] = []
    with make_embedder(args, l2=args.l2_normalize, quantize=args.quantize) as embedder:
        head = embedder.model_spec.head(args.head)
        for path in args.images:
            try:
                res = embedder.embed(path, ipo)
            except (ImageError, ModelOutputError) as exc:
                report.skip(path, exc)
                continue
            rows.append(res.embeddings[head.index].embedding)
            report.add(path, embeddings=[
                {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                for e in res.embeddings
            ])
        model = str(embedder.options.base_options.model_asset_path)
    code = report.exit_code("embedded")
    if args.format == "json":
        write_output(json.dumps(report.records), args.out)
    else:
        write_vectors(args.format, args.out, rows, report, head=head, model=model)
    return code
