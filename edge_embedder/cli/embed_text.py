"""``edge-embedder embed-text``: embed texts with a text model (a CLIP text tower), print or save the vectors.

Output contract, the same whatever the number of texts:

* ``--format json`` (default): a JSON list, one record per text in input order:
  ``{"text", "truncated", "token_count", "embeddings": [{"head_index", "head_name", "embedding"}]}``,
  or ``{"text", "error": {"type", "reason"}}`` for a text that could not be embedded.
* ``--format npy -o X.npy`` / ``--format npz -o X.npz``: one row per embedded text (the ``--head``),
  with the ``texts`` of the rows (``X.npy.json`` beside a .npy), as ``embed`` does for images.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode
from .common import (
    CliError,
    InputReport,
    add_head_arg,
    add_output_args,
    add_threads_arg,
    check_output_folder,
    make_text_embedder,
    write_output,
    write_vectors,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("embed-text", help="embed texts with a text model (CLIP text tower) and print / save the vectors",
                       description="Embed texts with a text-embedding model converted by edge-embedder convert "
                       "--tower text (its tokenizer is inside the file). Needs pip install 'edge-embedder[text]'.")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--model", "-m", required=True, type=model_file, metavar="MODEL", help="text model file (.tflite or .onnx)")
    add_threads_arg(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help="scalar-quantize each embedding to int8")
    add_output_args(p, ("json", "npy", "npz"), file_help="write to this file (atomically) instead of stdout; "
                    "needed by npy / npz")
    add_head_arg(p, "the output head written by --format npy / npz: its index or name (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import TextInputError

    if args.format in ("npy", "npz") and not args.out:
        raise CliError(f"--format {args.format} needs -o FILE.{args.format}", ExitCode.USAGE)
    if args.out:
        check_output_folder(args.out)
    report = InputReport("text")
    rows: list[Any] = []
    with make_text_embedder(args.model, args.threads, l2=args.l2_normalize, quantize=args.quantize) as embedder:
        head = embedder.model_spec.head(args.head)
        length = embedder.model_spec.sequence_length
        try:
            results: list[Any] = list(embedder.embed_batch(args.texts))
        except TextInputError:  # one text the tokenizer refuses: the others are still embedded, one by one
            results = []
            for text in args.texts:
                try:
                    results.append(embedder.embed(text))
                except TextInputError as exc:
                    results.append(exc)
        for i, (text, res) in enumerate(zip(args.texts, results)):
            if isinstance(res, TextInputError):
                report.skip(f"text {i + 1}", res)
                report.records[-1]["text"] = text.encode("utf-8", "replace").decode("utf-8")
                continue
            if res.truncated:
                print(f"edge-embedder: note: text {i + 1} was truncated to the model's {length} tokens", file=sys.stderr)
            rows.append(res.embeddings[head.index].embedding)
            report.add(text, truncated=res.truncated, token_count=res.token_count, embeddings=[
                {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                for e in res.embeddings
            ])
        model = str(embedder.options.base_options.model_asset_path)
    code = report.exit_code("embedded")
    if args.format == "json":
        write_output(json.dumps(report.records, ensure_ascii=False), args.out)
    else:
        write_vectors(args.format, args.out, rows, report, head=head, model=model)
    return code
