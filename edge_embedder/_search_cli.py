"""``edge-embedder search`` and ``edge-embedder index``.

``index DIR -o INDEX`` is ``embed-dir`` with L2-normalised vectors, a storage
type and, for large collections, the HNSW graph: its output is the same file
format, because an ``embed-dir`` output already is an index (its arrays are
stored uncompressed and memory-mapped in place by :class:`EmbeddingIndex`).

Exit codes: 0 ok; 1 finished but some images were skipped (``index``);
2 usage error (bad arguments, unreadable or corrupt index, bad vector file,
missing extra); 3 model error (missing / corrupt model, or a model / head
whose embedding space is not the index's); 4 the query image cannot be
decoded; 130 interrupted. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_MODEL, EXIT_IMAGE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

__all__ = ["add_search_parsers", "cmd_search", "cmd_index"]


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _head(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def add_search_parsers(subparsers: Any) -> None:
    """Add ``search`` and ``index`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "search", help="top-k images of an index by cosine, for a query image, text or vector",
        description="Search an index (an embed-dir or index output: .npz, .parquet) by cosine similarity.",
    )
    p.add_argument("index", metavar="INDEX", help="index file (.npz / .parquet from embed-dir or index)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--image", metavar="IMAGE", help="query image, embedded with the index's model")
    q.add_argument("--text", metavar="TEXT", help="query text (needs a text embedder of the index's space)")
    q.add_argument("--vector", metavar="FILE", help="query vector: .npy, or a JSON list of numbers")
    p.add_argument("-k", type=_positive_int, default=10, help="number of results (default 10)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (rank, score, path) or json")
    p.add_argument("--model", "-m", help="model for --image (default: the model recorded in the index, "
                                         "else the shipped EfficientNet-Lite0 fp32)")
    p.add_argument("--threads", type=_positive_int, default=None, help="interpreter threads")
    p.add_argument("--head", type=_head, default=None, help="model head for --image (default: the index's)")
    p.add_argument("--space", help="embedding-space id of --vector; refused when it is not the index's")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--exact", action="store_true", help="exact search even when an HNSW graph is stored")
    mode.add_argument("--approximate", action="store_true",
                      help="approximate search (the stored graph, or one built now; needs the [search] extra)")
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser(
        "index", help="embed-dir with L2-normalised vectors, a storage type and an HNSW graph when large",
        description="Embed every image under DIR into an index (embed-dir's format; --resume updates it "
                    "incrementally: new, changed and deleted files).",
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-o", "--out", required=True, help="index file: OUT.npz (memory-mapped) or OUT.parquet")
    p.add_argument("--model", "-m", help="model file (default: the shipped EfficientNet-Lite0 fp32)")
    p.add_argument("--threads", type=_positive_int, default=None, help="interpreter threads")
    p.add_argument("--dtype", choices=("float32", "float16", "int8"), default="float32",
                   help="storage of the normalised vectors (int8: MediaPipe's scalar quantization)")
    p.add_argument("--approximate", choices=("auto", "always", "never"), default="auto",
                   help="build the HNSW graph: auto = above the measured size threshold (needs the [search] extra)")
    p.add_argument("--resume", action="store_true",
                   help="update an existing index: embed new and changed files, drop deleted ones")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.add_argument("--head", type=_head, default=0, help="which output head to store (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)


def _err(message: str) -> None:
    print(f"edge-embedder: {message}", file=sys.stderr)


def _run(body: Any, args: argparse.Namespace) -> int:
    from .errors import (EdgeEmbedderError, EmbeddingSpaceMismatchError, ImageError, IndexFormatError,
                         MissingExtraError, ModelError)

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = body(args)
        return code
    except _Fail as exc:
        _err(f"error: {exc}")
        return exc.code
    except EmbeddingSpaceMismatchError as exc:
        _err(f"model error: {exc}")
        return EXIT_MODEL
    except ModelError as exc:
        _err(f"model error: {exc}")
        return EXIT_MODEL
    except ImageError as exc:
        _err(f"image error: {exc}")
        return EXIT_IMAGE
    except (IndexFormatError, MissingExtraError, EdgeEmbedderError) as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    finally:
        for w in caught:
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                _err(f"note: {w.message}")


# -- search ------------------------------------------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    """``edge-embedder search``; returns the exit code."""
    return _run(_search, args)


def _search(args: argparse.Namespace) -> int:
    from .search import EmbeddingIndex

    index = EmbeddingIndex.load(args.index, approximate="always" if args.approximate else "auto")
    exact = True if args.exact else (False if args.approximate else None)
    if args.text is not None:
        raise _Fail(
            "--text needs a text embedder (a CLIP-style text tower sharing the index's embedding space); "
            "this version of edge_embedder ships none yet: query with --image or --vector",
            EXIT_USAGE,
        )
    if args.vector is not None:
        vec = _read_vector(args.vector, args.head or 0)
        hits = index.search(vec, args.k, space=args.space, exact=exact)
    else:
        head = args.head if args.head is not None else (index._meta.head_index or 0)
        with _embedder(args, index) as embedder:
            index.check_embedder(embedder, head)
            hits = index.search_image(embedder, args.image, args.k, head=head, exact=exact)
    if args.output == "json":
        print(json.dumps([h.to_json() for h in hits]))
    else:
        from .search import display_path

        print("rank\tscore\tpath")
        for h in hits:
            print(f"{h.rank}\t{h.score:.6f}\t{display_path(h.path)}")
    return EXIT_OK


def _embedder(args: argparse.Namespace, index: Any) -> Any:
    from .embedder import ImageEmbedder
    from .options import BaseOptions, ImageEmbedderOptions
    from .resources import default_model_path

    model = args.model
    if model is None:
        recorded = index.model_path
        model = recorded if recorded and os.path.isfile(recorded) else str(default_model_path("fp32"))
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=args.threads))
    return ImageEmbedder.create_from_options(opts)


def _read_vector(path: str, head: int) -> Any:
    import numpy as np

    p = Path(path)
    try:
        if p.suffix == ".npy":
            v = np.load(p, allow_pickle=False)
        else:
            data = json.loads(p.read_text())
            if isinstance(data, dict) and "embeddings" in data:  # the JSON of `edge-embedder embed`
                data = data["embeddings"][head]["embedding"]
            v = np.asarray(data, dtype=np.float64)
    except FileNotFoundError:
        raise _Fail(f"--vector {path}: no such file", EXIT_USAGE) from None
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise _Fail(f"--vector {path}: expected a .npy vector or a JSON list of numbers ({exc})", EXIT_USAGE) from None
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1:
        raise _Fail(f"--vector {path}: expected one vector, got shape {v.shape}", EXIT_USAGE)
    return v


# -- index -------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    """``edge-embedder index``; returns the exit code."""
    return _run(_index, args)


def _index(args: argparse.Namespace) -> int:
    from .embedder import ImageEmbedder
    from .folder import Interrupted, embed_dir
    from .options import BaseOptions, ImageEmbedderOptions
    from .resources import default_model_path
    from .search import APPROXIMATE_MIN_ELEMENTS, build_index_sidecar

    model = args.model or str(default_model_path("fp32"))
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=args.threads),
                                l2_normalize=True)
    with ImageEmbedder.create_from_options(opts) as embedder:
        try:
            report = embed_dir(
                embedder, args.folder, args.out, model_path=model, resume=args.resume, overwrite=args.overwrite,
                head=args.head, progress=not args.no_progress, storage=args.dtype,
            )
        except Interrupted as exc:
            r = exc.report
            _err(f"interrupted: {r.total} images embedded, checkpoint {r.checkpoint}; rerun with --resume to continue")
            return EXIT_INTERRUPTED
        dim = embedder.model_spec.outputs[args.head].size
    sidecar = Path(str(report.output) + ".usearch")
    big = report.total * dim >= APPROXIMATE_MIN_ELEMENTS
    graph = ""
    if args.approximate == "always" or (args.approximate == "auto" and big):
        try:
            build_index_sidecar(report.output)
            graph = f"; HNSW graph {sidecar.name}"
        except Exception as exc:
            from .errors import MissingExtraError

            if isinstance(exc, MissingExtraError) and args.approximate == "auto":
                _err(f"note: {report.total} vectors: exact search only ({exc})")
            else:
                raise
    else:
        for stale in (sidecar, Path(str(sidecar) + ".json")):
            if stale.exists():
                stale.unlink()
    rate = report.embedded / report.seconds if report.seconds > 0 else 0.0
    print(
        f"indexed {report.total} images into {report.output} ({args.dtype}{graph}): {report.embedded} embedded "
        f"({report.changed} changed), {report.resumed} unchanged, {report.removed} removed, in "
        f"{report.seconds:.1f} s ({rate:.1f} img/s); skipped {len(report.skipped)}"
        + (f", listed in {report.output.name}.skipped.tsv" if report.skipped else ""),
        file=sys.stderr,
    )
    return EXIT_PARTIAL if report.skipped else EXIT_OK
