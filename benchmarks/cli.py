"""``edge-embedder bench``: latency, memory and accuracy of model variants, beside the alternatives.

Only the parser is built at module import (``edge_embedder.cli`` imports this
module); the harness, the runtimes, torch and matplotlib are imported when the
command runs, and each measurement runs in its own worker process.

Exit codes (:mod:`edge_embedder.exit_codes`): 0 every model measured; 1 some
model failed (its row says why); 2 usage error; 130 interrupted (what was
measured so far is still printed and written).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from edge_embedder.argtypes import int_list, model_file, non_negative_int, positive_int
from edge_embedder.errors import MissingDependencyError
from edge_embedder.exit_codes import ExitCode

__all__ = ["add_bench_parser", "cmd_bench", "main"]

_EPILOG = """\
examples:
  edge-embedder bench efficientnet-lite0 efficientnet-lite0-int8 --reference efficientnet-lite0 \\
      --compare mediapipe,transformers --threads 1,2 -o report.md -o report.json --plot report.png
  edge-embedder bench --standard          # the standard runs of docs/benchmarks.md (builds ViT / CLIP under /tmp)

--compare NAME needs its package: mediapipe (the mediapipe extra), transformers (the convert extra),
onnxruntime (the onnx extra); --plot needs matplotlib (the bench extra). They are checked before
anything is measured. --compare all runs the comparisons whose packages are installed.

exit codes: 0 ok, 1 some model failed (reported as a failed row), 2 usage, 5 a missing extra,
130 interrupted
"""


#: --compare name -> the extra that provides it (checked before the benchmark starts).
COMPARE_EXTRAS = {"mediapipe": "mediapipe", "transformers": "convert", "onnxruntime": "onnx"}


class _AllBackends(list):
    """``--compare all``: every comparison whose package is installed (the report names the others)."""


def _compare(text: str) -> list[str]:
    known = tuple(COMPARE_EXTRAS)
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names == ["none"]:
        return []
    if names == ["all"]:
        return _AllBackends(known)
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(known)} (or all, none), got {n!r}")
    return names


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="benchmark model variants: latency, cold start, memory, accuracy, beside MediaPipe / transformers / ONNX Runtime",
        description="Benchmark .tflite / .onnx image-embedding and image-classification models on this machine "
                    "(a model with labels is run as a classifier: classify() beside MediaPipe's ImageClassifier and "
                    "pipeline('image-classification')): latency p50/p90/p99/mean "
                    "(preprocessing, inference, postprocessing), throughput, cold start and peak RSS of a fresh process, "
                    "file size, achieved GFLOP/s against the measured matmul peak, and accuracy against a "
                    "reference model; alternatives measured in the same run and reported as ratios.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", metavar="MODEL", type=model_file,
                   help=".tflite or .onnx model files, or shipped model names (edge-embedder models)")
    p.add_argument("--threads", type=int_list, default=None, metavar="N[,N...]",
                   help="interpreter / intra-op threads, one or a comma list (default 2; --standard: 1,2)")
    p.add_argument("--runs", type=positive_int, default=None, metavar="N",
                   help="counted runs per row (default 50; --standard: 30)")
    p.add_argument("--warmup", type=non_negative_int, default=None, metavar="N",
                   help="uncounted warm-up runs per row (default 5; --standard: 3)")
    p.add_argument("--images", metavar="DIR",
                   help="folder of photos (unreadable files are skipped and counted); default: the bundled "
                        "photos and scikit-image's, 5 views each")
    p.add_argument("--latency-images", type=positive_int, default=8, metavar="N",
                   help="the timed loop cycles through the first N images (default 8)")
    p.add_argument("--accuracy-images", type=positive_int, default=None, metavar="N",
                   help="accuracy over the first N images (default: all)")
    p.add_argument("--reference", metavar="MODEL", type=model_file,
                   help="accuracy of each model against this one's embeddings (mean / min cosine, recall@1)")
    p.add_argument("--compare", type=_compare, default=[], metavar="LIST",
                   help="alternatives to measure in the same run: mediapipe (same .tflite), transformers "
                        "(PyTorch eager on the source checkpoint), onnxruntime (bare session on .onnx models); "
                        "'all' or 'none' (default none)")
    p.add_argument("--source-checkpoint", metavar="DIR",
                   help="source Hugging Face checkpoint for --compare transformers (default: from the model "
                        "metadata; 'efficientnet-lite0' for the shipped model's PyTorch source)")
    p.add_argument("-o", "--out", dest="output", action="append", default=[], metavar="FILE",
                   help="write the report: .md, .json or .csv by suffix; repeatable or comma-separated")
    p.add_argument("--output", dest="output", action="append", help=argparse.SUPPRESS)  # the old spelling of -o
    p.add_argument("--plot", metavar="PNG", help="latency-vs-accuracy plot (needs matplotlib: pip install 'edge-embedder[bench]')")
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement (no %% of peak)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--work-dir", metavar="DIR", help="keep the workers' jobs, logs and vectors here (default: a temp dir)")
    p.add_argument("--standard", action="store_true",
                   help="run the documented standard runs (see benchmarks/standard_runs.py); other options are "
                        "passed on: --threads, --runs, --warmup, -o, --plot")
    p.set_defaults(func=cmd_bench)
    return p


def _outputs(values: Sequence[str]) -> list[str]:
    out = []
    for v in values:
        out += [x for x in v.split(",") if x]
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    outputs = _outputs(args.output)
    for o in outputs + ([args.plot] if args.plot else []):
        if o != args.plot and not o.lower().endswith((".md", ".json", ".csv")):
            return _usage(f"-o {o}: expected a .md, .json or .csv file name")
        if not os.path.isdir(os.path.dirname(os.path.abspath(o))):
            return _usage(f"{o}: the folder {os.path.dirname(o) or '.'} does not exist (create it first)")
    try:
        _require_extras(args)
    except MissingDependencyError as exc:
        print(f"edge-embedder: missing dependency: {exc}", file=sys.stderr)
        return ExitCode.MISSING_DEPENDENCY
    if args.standard:
        from . import standard_runs

        return standard_runs.run_standard(threads=args.threads or [1, 2], runs=args.runs or 30,
                                          warmup=3 if args.warmup is None else args.warmup,
                                          outputs=outputs, plot=args.plot, progress=not args.no_progress)
    if not args.models:
        return _usage("give at least one MODEL (or --standard)")
    from .harness import BenchConfig, run_bench
    from .progress import Progress
    from .report import finish

    cfg = BenchConfig(
        models=list(args.models), threads=list(dict.fromkeys(args.threads or [2])), runs=args.runs or 50,
        warmup=5 if args.warmup is None else args.warmup,
        images=args.images, reference=args.reference, compare=args.compare,
        source_checkpoint=args.source_checkpoint, latency_images=args.latency_images,
        accuracy_images=args.accuracy_images, measure_peak=not args.no_peak, work_dir=args.work_dir,
    )
    progress = Progress(not args.no_progress)
    try:
        report = run_bench(cfg, progress=progress.update, progress_total=progress.total)
    except KeyboardInterrupt:  # before any row was measured
        progress.close()
        print("edge-embedder: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except (ValueError, OSError) as exc:
        progress.close()
        return _usage(" ".join(str(exc).split()))
    finally:
        progress.close()
    return finish(report, outputs, args.plot)


def _require_extras(args: argparse.Namespace) -> None:
    """Every package the run will need, before it measures anything (MissingDependencyError names the extra)."""
    from edge_embedder.extras import require

    if args.plot:
        require("bench", "--plot")
    if not isinstance(args.compare, _AllBackends):
        for name in args.compare:
            modules = {"transformers": ("torch", "transformers")}.get(name)
            require(COMPARE_EXTRAS[name], f"--compare {name}", modules)


def _usage(msg: str) -> int:
    print(f"edge-embedder: error: {msg}", file=sys.stderr)
    return ExitCode.USAGE


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m edge_embedder.bench.cli MODEL ...`` (same as ``edge-embedder bench``)."""
    parser = argparse.ArgumentParser(prog="edge-embedder")
    sub = parser.add_subparsers(dest="command")
    add_bench_parser(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
