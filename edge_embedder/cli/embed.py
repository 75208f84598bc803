"""``edge-embedder embed``: embed images, print or save the vectors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import CliError, add_geometry_args, add_model_args, make_embedder, processing_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed", help="embed images and print / save the vectors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_args(p)
    add_geometry_args(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help="scalar-quantize each embedding to int8")
    p.add_argument("--output", choices=("json", "npy"), default="json", help="json (default, to stdout or -o) or npy (needs -o)")
    p.add_argument("--head", type=int, default=0, help="head index written by --output npy (default 0)")
    p.add_argument("-o", "--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import ImageError
    from ..files import atomic_write

    if args.output == "npy" and not args.out:
        raise CliError("--output npy needs -o FILE.npy", ExitCode.USAGE)
    ipo = processing_options(args)
    results: list[dict[str, Any]] = []
    rows: list[Any] = []
    failed: list[tuple[str, str]] = []
    with make_embedder(args, l2=args.l2_normalize, quantize=args.quantize) as embedder:
        if args.head >= len(embedder.model_spec.outputs):
            raise CliError(f"--head: expected < {len(embedder.model_spec.outputs)} (number of heads), got {args.head}",
                           ExitCode.USAGE)
        for path in args.images:
            try:
                res = embedder.embed(path, ipo)
            except ImageError as exc:
                failed.append((path, str(exc)))
                print(f"edge-embedder: skipped {exc}", file=sys.stderr)
                continue
            rows.append(res.embeddings[args.head].embedding)
            results.append({
                "image": path,
                "embeddings": [
                    {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                    for e in res.embeddings
                ],
            })
    if not results:
        raise CliError(f"no image could be embedded ({len(failed)} failed)", ExitCode.INPUT)
    if args.output == "npy":
        atomic_write(args.out, lambda f: np.save(f, np.stack(rows)))
    else:
        text = json.dumps(results if len(results) > 1 or failed else results[0], indent=None)
        if args.out:
            atomic_write(args.out, text.encode() + b"\n")
        else:
            print(text)
    return ExitCode.PARTIAL if failed else ExitCode.OK
