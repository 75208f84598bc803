"""``edge-embedder``: the parser, and the one place where errors become exit codes.

Every subcommand lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> exit code``; heavy imports happen inside ``run``. ``convert``
and ``bench`` come from the tooling (``edge_embedder.convert``,
``edge_embedder.bench``), whose parser modules import only argparse: their
``--help`` works on every install, and running them without the extra gives
one line naming it (exit code 5). Exit codes: :mod:`edge_embedder.exit_codes`.
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..exit_codes import ExitCode
from . import demo, embed, embed_dir, embed_text, inspect_cmd, similarity, zero_shot_cmd
from .common import CliError

__all__ = ["build_parser", "main"]

_EPILOG = ("exit codes: 0 ok, 1 partial (some inputs skipped, contract or parity failed), 2 usage, "
           "3 model error, 4 no usable input, 5 missing optional dependency, 130 interrupted")


def build_parser() -> argparse.ArgumentParser:
    from ..bench.cli import add_bench_parser
    from ..convert.cli import add_convert_parser

    parser = argparse.ArgumentParser(
        prog="edge-embedder",
        description="On-device image and text embeddings with TFLite / ONNX models.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (demo, embed, embed_dir, embed_text, zero_shot_cmd, similarity, inspect_cmd):
        module.add_parser(sub)
    add_convert_parser(sub)
    add_bench_parser(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..errors import EdgeEmbedderError, ImageError, MissingDependencyError, ModelError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return exc.code
    except MissingDependencyError as exc:
        print(f"edge-embedder: missing dependency: {exc}", file=sys.stderr)
        return ExitCode.MISSING_DEPENDENCY
    except ModelError as exc:
        print(f"edge-embedder: model error: {exc}", file=sys.stderr)
        return ExitCode.MODEL
    except ImageError as exc:
        print(f"edge-embedder: image error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    except EdgeEmbedderError as exc:  # OptionsError and the rest: a usage problem
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("edge-embedder: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except OSError as exc:
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
