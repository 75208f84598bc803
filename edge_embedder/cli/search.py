"""``edge-embedder search``: top-k images of an index by cosine, for a query image, text or vector.

An index is an ``embed-dir`` / ``index`` output (``.npz``, memory-mapped in
place, or ``.parquet``). Exit codes: 0 ok; 2 usage (bad arguments, bad vector
file); 3 the model or head belongs to another embedding space than the
index; 4 the index or the query image cannot be used (truncated, corrupt,
not an index; undecodable image); 5 a missing extra (``search`` for the
approximate graph). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode
from .common import (
    CliError,
    add_head_arg,
    add_image_args,
    add_output_args,
    add_threads_arg,
    add_top_k,
    image_options,
    processing_options,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "search", help="top-k images of an index by cosine, for a query image, text or vector",
        description="Search an index (an embed-dir or index output: .npz, .parquet) by cosine similarity.",
    )
    p.add_argument("index", metavar="INDEX", help="index file (.npz / .parquet from embed-dir or index)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--image", metavar="IMAGE", help="query image, embedded with the index's model")
    q.add_argument("--text", metavar="TEXT", help="query text, embedded with --text-model (the text tower of the "
                   "checkpoint whose image tower built the index)")
    q.add_argument("--vector", metavar="FILE", help="query vector: .npy, or a JSON list of numbers")
    add_top_k(p, 10, "number of results (default 10)")
    add_output_args(p, ("text", "json"), file_help="write to this file (atomically) instead of stdout",
                    format_help="text (default: rank, score, path; tab-separated) or json (a list of hits)")
    p.add_argument("--model", "-m", type=model_file, metavar="MODEL",
                   help="model for --image (default: the model recorded in the index, else efficientnet-lite0)")
    p.add_argument("--text-model", type=model_file, metavar="MODEL", help="text model for --text (.tflite / .onnx CLIP "
                   "text tower of the index's embedding space; needs the [text] extra)")
    add_threads_arg(p)
    add_image_args(p)
    add_head_arg(p, "model head for --image (default: the index's)", default=None)
    p.add_argument("--space", help="embedding-space id of --vector; refused when it is not the index's")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--exact", action="store_true", help="exact search even when an HNSW graph is stored")
    mode.add_argument("--approximate", action="store_true",
                      help="approximate search (the stored graph, or one built now; needs the [search] extra)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search import EmbeddingIndex, display_path

    if args.text is not None and not args.text_model:
        raise CliError("--text needs --text-model (the text tower of the checkpoint whose image tower built the "
                       "index)", ExitCode.USAGE)
    if args.text_model and args.text is None:
        raise CliError("--text-model is for --text queries", ExitCode.USAGE)
    if args.out:
        from .common import check_output_folder

        check_output_folder(args.out)
    if args.approximate:
        from ..extras import require

        require("search", "--approximate")
    index = EmbeddingIndex.load(args.index, approximate="always" if args.approximate else "auto")
    exact = True if args.exact else (False if args.approximate else None)
    if args.text is not None:
        from .common import make_text_embedder

        with make_text_embedder(args.text_model, args.threads) as text_embedder:
            hits = index.search_text(text_embedder, args.text, args.top_k, exact=exact)
    elif args.vector is not None:
        vec = _read_vector(args.vector)
        hits = index.search(vec, args.top_k, space=args.space, exact=exact)
    else:
        with _embedder(args, index) as embedder:
            head = embedder.model_spec.head(args.head if args.head is not None else (index.head_index or 0)).index
            index.check_embedder(embedder, head)
            hits = index.search_image(embedder, args.image, args.top_k, head=head, exact=exact,
                                      image_processing_options=processing_options(args))
    from .common import write_output

    if args.format == "json":
        write_output(json.dumps([h.to_json() for h in hits]), args.out)
    else:
        write_output("\n".join(["rank\tscore\tpath", *(f"{h.rank}\t{h.score:.6f}\t{display_path(h.path)}" for h in hits)]),
                     args.out)
    return ExitCode.OK


def _embedder(args: argparse.Namespace, index: Any) -> Any:
    from ..core.base_options import BaseOptions
    from ..resources import default_model_path
    from ..vision import ImageEmbedder, ImageEmbedderOptions

    model = args.model
    if model is None:
        recorded = index.model_path
        model = recorded if recorded and os.path.isfile(recorded) else str(default_model_path("fp32"))
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=args.threads),
                                **image_options(args))
    return ImageEmbedder.create_from_options(opts)


def _read_vector(path: str) -> Any:
    """A query vector from a .npy file, a JSON list, or the JSON ``edge-embedder embed`` prints."""
    import numpy as np

    p = Path(path)
    try:
        if p.suffix == ".npy":
            v = np.load(p, allow_pickle=False)
        else:
            data = json.loads(p.read_text())
            if isinstance(data, list) and data and isinstance(data[0], dict):  # `edge-embedder embed` records
                data = data[0]
            if isinstance(data, dict) and "embeddings" in data:
                data = data["embeddings"][0]["embedding"]
            v = np.asarray(data, dtype=np.float64)
    except FileNotFoundError:
        raise CliError(f"--vector {path}: no such file", ExitCode.USAGE) from None
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise CliError(f"--vector {path}: expected a .npy vector or a JSON list of numbers ({exc})", ExitCode.USAGE) from None
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1:
        raise CliError(f"--vector {path}: expected one vector, got shape {v.shape}", ExitCode.USAGE)
    return v
