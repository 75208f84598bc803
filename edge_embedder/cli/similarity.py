"""``edge-embedder similarity``: cosine similarity of two images."""

from __future__ import annotations

import argparse
from typing import Any

from ..exit_codes import ExitCode
from .common import add_geometry_args, add_model_args, make_embedder, processing_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("similarity", help="cosine similarity of two images")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    add_model_args(p)
    add_geometry_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ipo = processing_options(args)
    with make_embedder(args) as embedder:
        a = embedder.embed(args.a, ipo).embeddings[0]
        b = embedder.embed(args.b, ipo).embeddings[0]
        print(f"{embedder.cosine_similarity(a, b):.6f}")
    return ExitCode.OK
