"""``edge-embedder embed-text``: embed texts with a text model (a CLIP text tower), print or save the vectors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..argtypes import positive_int
from ..exit_codes import ExitCode
from .common import CliError, check_text_args, make_text_embedder, write_output


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed-text", help="embed texts with a text model (CLIP text tower) and print / save the vectors",
                       description="Embed texts with a text-embedding model converted by edge-embedder convert "
                       "--tower text (its tokenizer is inside the file). Needs pip install 'edge-embedder[text]'.")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--model", "-m", required=True, help="text model file (.tflite or .onnx)")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads (default: cores, max 4)")
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help="scalar-quantize each embedding to int8")
    p.add_argument("--output", choices=("json", "npy"), default="json", help="json (default, to stdout or -o) or npy (needs -o)")
    p.add_argument("--head", type=int, default=0, help="head index written by --output npy (default 0)")
    p.add_argument("-o", "--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..files import atomic_write

    if args.output == "npy" and not args.out:
        raise CliError("--output npy needs -o FILE.npy", ExitCode.USAGE)
    check_text_args(args.texts, "TEXT")
    results: list[dict[str, Any]] = []
    rows: list[Any] = []
    with make_text_embedder(args.model, args.threads, l2=args.l2_normalize, quantize=args.quantize) as embedder:
        if not 0 <= args.head < len(embedder.model_spec.outputs):
            raise CliError(f"--head: expected 0..{len(embedder.model_spec.outputs) - 1} (number of heads), got {args.head}",
                           ExitCode.USAGE)
        length = embedder.model_spec.sequence_length
        for i, res in enumerate(embedder.embed_batch(args.texts)):
            if res.truncated:
                print(f"edge-embedder: note: text {i + 1} was truncated to the model's {length} tokens", file=sys.stderr)
            rows.append(res.embeddings[args.head].embedding)
            results.append({
                "text": args.texts[i],
                "truncated": res.truncated,
                "token_count": res.token_count,
                "embeddings": [
                    {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                    for e in res.embeddings
                ],
            })
    if args.output == "npy":
        atomic_write(args.out, lambda f: np.save(f, np.stack(rows)))
    else:
        write_output(json.dumps(results if len(results) > 1 else results[0]), args.out)
    return ExitCode.OK
