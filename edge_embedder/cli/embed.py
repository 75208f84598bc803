"""``edge-embedder embed``: embed images, print or save the vectors.

Output contract, the same whatever the number of images:

* ``--output json`` (default): a JSON list with one record per input, in input
  order: ``{"image", "embeddings": [{"head_index", "head_name", "embedding"}]}``
  or, for an image that could not be used, ``{"image", "error": {"type", "reason"}}``.
* ``--output npy -o X.npy``: a 2-D array, one row per embedded image (the
  ``--head``), and ``X.npy.json`` beside it: the ``images`` of the rows in row
  order, the ``skipped`` inputs with their reasons, the head and the model.
* ``--output npz -o X.npz``: the same in one file (``embeddings``, ``images``,
  ``skipped_images``, ``skipped_reasons``, ``head_name``, ``model``).

Exit code 1 when some inputs were skipped (the others are written), 4 when none could be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import CliError, add_geometry_args, add_model_args, check_output_folder, make_embedder, processing_options

_QUANTIZE_HELP = ("scalar-quantize each embedding to int8 (clamp(round(v*128), -128, 127), as MediaPipe); "
                  "use it with --l2-normalize: raw values beyond +-127/128 saturate at the int8 limits")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed", help="embed images and print / save the vectors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_args(p)
    add_geometry_args(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help=_QUANTIZE_HELP)
    p.add_argument("--output", choices=("json", "npy", "npz"), default="json",
                   help="json (default: a list, one record per image, to stdout or -o), npy (-o X.npy, with the "
                        "image list in X.npy.json) or npz (-o X.npz: vectors and image list in one file)")
    p.add_argument("--head", default="0", metavar="INDEX|NAME",
                   help="the output head written by --output npy / npz: its index or name (default 0)")
    p.add_argument("-o", "--out", help="write to this file (atomically) instead of stdout")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="pixel budget of image files (default 67108864, 2**26); larger files are skipped")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import ImageError, ModelOutputError
    from ..files import atomic_write

    if args.output in ("npy", "npz") and not args.out:
        raise CliError(f"--output {args.output} needs -o FILE.{args.output}", ExitCode.USAGE)
    if args.out:
        check_output_folder(args.out)
    if args.quantize and not args.l2_normalize:
        print("edge-embedder: warning: --quantize without --l2-normalize: values beyond +-127/128 saturate "
              "at the int8 limits (MediaPipe does the same); add --l2-normalize", file=sys.stderr)
    ipo = processing_options(args)
    records: list[dict[str, Any]] = []
    rows: list[Any] = []
    embedded: list[str] = []
    skipped: list[tuple[str, str]] = []
    model_errors = 0
    extra = {} if args.max_pixels is None else {"max_image_pixels": args.max_pixels}
    with make_embedder(args, l2=args.l2_normalize, quantize=args.quantize, **extra) as embedder:
        head = embedder.model_spec.head(args.head)
        for path in args.images:
            try:
                res = embedder.embed(path, ipo)
            except (ImageError, ModelOutputError) as exc:
                model_errors += isinstance(exc, ModelOutputError)
                skipped.append((path, exc.reason))
                records.append({"image": path, "error": {"type": type(exc).__name__, "reason": exc.reason}})
                print(f"edge-embedder: skipped {path}: {exc.reason}", file=sys.stderr)
                continue
            rows.append(res.embeddings[head.index].embedding)
            embedded.append(path)
            records.append({
                "image": path,
                "embeddings": [
                    {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                    for e in res.embeddings
                ],
            })
        model = str(embedder.options.base_options.model_asset_path)
    if not embedded:
        if model_errors == len(skipped):
            raise CliError(f"the model returned an unusable vector for every image ({skipped[0][1]})", ExitCode.MODEL)
        raise CliError(f"no image could be embedded ({len(skipped)} skipped)", ExitCode.INPUT)
    if args.output == "npy":
        atomic_write(args.out, lambda f: np.save(f, np.stack(rows)))
        side = {"images": embedded, "skipped": [{"image": p, "reason": r} for p, r in skipped],
                "head_index": head.index, "head_name": head.name, "model": model}
        atomic_write(args.out + ".json", (json.dumps(side, indent=1) + "\n").encode())
    elif args.output == "npz":
        atomic_write(args.out, lambda f: np.savez(
            f, embeddings=np.stack(rows), images=np.array(embedded, dtype=str),
            skipped_images=np.array([p for p, _ in skipped], dtype=str),
            skipped_reasons=np.array([r for _, r in skipped], dtype=str),
            head_name=np.array(head.name or str(head.index)), model=np.array(model)))
    else:
        text = json.dumps(records)
        if args.out:
            atomic_write(args.out, text.encode() + b"\n")
        else:
            print(text)
    return ExitCode.PARTIAL if skipped else ExitCode.OK
