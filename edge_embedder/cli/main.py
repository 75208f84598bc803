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
from typing import Callable, Optional, Sequence

from ..exit_codes import ExitCode
from . import classify, demo, embed, embed_dir, embed_text, index, inspect_cmd, search, shipped, similarity, zero_shot_cmd
from .common import CliError

__all__ = ["build_parser", "main"]

_EPILOG = ("exit codes: 0 ok, 1 partial (some inputs skipped, contract or parity failed), 2 usage, "
           "3 model error, 4 no usable input, 5 missing optional dependency, 130 interrupted, "
           "141 output pipe closed")


def build_parser() -> argparse.ArgumentParser:
    from ..bench.cli import add_bench_parser
    from ..convert.cli import add_convert_parser

    parser = argparse.ArgumentParser(
        prog="edge-embedder",
        description="On-device image and text embeddings, classification and search with TFLite / ONNX models.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show debug messages, the interpreter's own start-up lines and Python warnings in full")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (demo, embed, embed_dir, embed_text, index, search, similarity, classify, zero_shot_cmd, inspect_cmd):
        module.add_parser(sub)
    shipped.add_parsers(sub)
    add_convert_parser(sub)
    add_bench_parser(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def _setup_output(verbose: bool) -> Callable[[], None]:
    """Warnings as one line (``edge-embedder: warning: ...``); debug logging with --verbose.

    Returns the function that undoes it (``main`` may run inside a bigger program, e.g. a test).
    """
    import logging
    import warnings

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edge-embedder: %(levelname)s: %(message)s"))
    logger = logging.getLogger("edge_embedder")
    old_level, old_showwarning = logger.level, warnings.showwarning
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        def one_line(message, category, filename, lineno, file=None, line=None):
            print(f"edge-embedder: warning: {message}", file=sys.stderr)

        warnings.showwarning = one_line

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        warnings.showwarning = old_showwarning

    return restore


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    restore = _setup_output(args.verbose)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`edge-embedder inspect M | head -1`): stop quietly, as Unix tools do.
        import os

        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return ExitCode.BROKEN_PIPE
    finally:
        restore()


def _run(args: argparse.Namespace) -> int:
    from ..errors import (
        EdgeEmbedderError,
        EmbeddingSpaceMismatchError,
        ImageError,
        IndexFormatError,
        MissingDependencyError,
        ModelError,
    )

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
    except EmbeddingSpaceMismatchError as exc:  # a model (or head) of another space than the index / the other model
        print(f"edge-embedder: model error: {exc}", file=sys.stderr)
        return ExitCode.MODEL
    except IndexFormatError as exc:
        print(f"edge-embedder: input error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    except ImageError as exc:
        print(f"edge-embedder: image error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    except EdgeEmbedderError as exc:  # OptionsError and the rest: a usage problem
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("edge-embedder: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
