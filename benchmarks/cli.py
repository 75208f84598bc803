"""``edge-embedder bench``: latency, memory and accuracy of model variants, beside the alternatives.

Only argparse is imported at module import (``edge_embedder/cli.py`` imports
this module to build its parser); numpy, the runtimes, torch and matplotlib
are imported when the command runs, and each measurement runs in its own
worker process.

Exit codes: 0 every model measured; 1 some model failed (its row says why);
2 usage error; 130 interrupted (what was measured so far is still printed
and written).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

__all__ = ["add_bench_parser", "cmd_bench", "main"]

_EPILOG = """\
examples:
  edge-embedder bench models/efficientnet_lite0_fp32.tflite models/efficientnet_lite0_int8.tflite \\
      --reference models/efficientnet_lite0_fp32.tflite --compare mediapipe,transformers \\
      --threads 1,2 --output report.md --output report.json --plot report.png
  edge-embedder bench --standard          # the README's standard runs (builds ViT / CLIP under /tmp)

exit codes: 0 ok, 1 some model failed (reported as a failed row), 2 usage, 130 interrupted
"""


def _int_at_least(minimum: int):
    # Not imported from edge_embedder.cli: importing the edge_embedder package loads numpy,
    # and this module must stay argparse-only at import time.
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _threads(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        out.append(_positive_int(part.strip()))
    return out


def _compare(text: str) -> list[str]:
    known = ("mediapipe", "transformers", "onnxruntime")
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names == ["none"]:
        return []
    if names == ["all"]:
        return list(known)
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(known)} (or all, none), got {n!r}")
    return names


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="benchmark model variants: latency, cold start, memory, accuracy, beside MediaPipe / transformers / ONNX Runtime",
        description="Benchmark .tflite / .onnx image-embedding models on this machine: latency p50/p90/p99/mean "
                    "(preprocessing and inference), throughput, cold start and peak RSS of a fresh process, "
                    "file size, achieved GFLOP/s against the measured matmul peak, and accuracy against a "
                    "reference model; alternatives measured in the same run and reported as ratios.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help=".tflite or .onnx model files")
    p.add_argument("--threads", type=_threads, default=None, metavar="N[,N...]",
                   help="interpreter / intra-op threads, one or a comma list (default 2; --standard: 1,2)")
    p.add_argument("--runs", type=_positive_int, default=None, metavar="N",
                   help="counted runs per row (default 50; --standard: 30)")
    p.add_argument("--warmup", type=_non_negative_int, default=None, metavar="N",
                   help="uncounted warm-up runs per row (default 5; --standard: 3)")
    p.add_argument("--images", metavar="DIR",
                   help="folder of photos (unreadable files are skipped and counted); default: the bundled "
                        "photos and scikit-image's, 5 views each")
    p.add_argument("--latency-images", type=_positive_int, default=8, metavar="N",
                   help="the timed loop cycles through the first N images (default 8)")
    p.add_argument("--accuracy-images", type=_positive_int, default=None, metavar="N",
                   help="accuracy over the first N images (default: all)")
    p.add_argument("--reference", metavar="MODEL",
                   help="accuracy of each model against this one's embeddings (mean / min cosine, recall@1)")
    p.add_argument("--compare", type=_compare, default=[], metavar="LIST",
                   help="alternatives to measure in the same run: mediapipe (same .tflite), transformers "
                        "(PyTorch eager on the source checkpoint), onnxruntime (bare session on .onnx models); "
                        "'all' or 'none' (default none)")
    p.add_argument("--source-checkpoint", metavar="DIR",
                   help="source Hugging Face checkpoint for --compare transformers (default: from the model "
                        "metadata; 'efficientnet-lite0' for the shipped model's PyTorch source)")
    p.add_argument("--output", "-o", action="append", default=[], metavar="FILE",
                   help="write the report: .md, .json or .csv by suffix; repeatable or comma-separated")
    p.add_argument("--plot", metavar="PNG", help="latency-vs-accuracy plot (needs matplotlib: pip install 'edge-embedder[bench]')")
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement (no %% of peak)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--work-dir", metavar="DIR", help="keep the workers' jobs, logs and vectors here (default: a temp dir)")
    p.add_argument("--standard", action="store_true",
                   help="run the documented standard runs (see benchmarks/standard_runs.py); other options are "
                        "passed on: --threads, --runs, --warmup, --output, --plot")
    p.set_defaults(func=cmd_bench)
    return p


def _outputs(values: Sequence[str]) -> list[str]:
    out = []
    for v in values:
        out += [x for x in v.split(",") if x]
    return out


class _Progress:
    """tqdm when installed (and wanted), else a line per row on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.enabled = enabled
        self.last_desc = None
        self.tqdm = None
        if enabled:
            try:
                from tqdm import tqdm

                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None

    def total(self, n: int) -> None:
        if self.enabled and self.tqdm is not None:
            self.bar = self.tqdm(total=n, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(self, desc: str, n: int, _unused: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            if desc != self.last_desc:
                self.bar.set_description(desc[:60], refresh=False)
            self.bar.update(n)
        elif desc != self.last_desc:
            print(f"bench: {desc}", file=sys.stderr, flush=True)
        self.last_desc = desc

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_bench(args: argparse.Namespace) -> int:
    outputs = _outputs(args.output)
    for o in outputs:
        if not o.lower().endswith((".md", ".json", ".csv")):
            return _usage(f"--output {o}: expected a .md, .json or .csv file name")
    if args.standard:
        from . import standard_runs

        return standard_runs.run_standard(threads=args.threads or [1, 2], runs=args.runs or 30,
                                          warmup=3 if args.warmup is None else args.warmup,
                                          outputs=outputs, plot=args.plot, progress=not args.no_progress)
    if not args.models:
        return _usage("give at least one MODEL (or --standard)")
    from .harness import BenchConfig, run_bench

    cfg = BenchConfig(
        models=list(args.models), threads=list(dict.fromkeys(args.threads or [2])), runs=args.runs or 50,
        warmup=5 if args.warmup is None else args.warmup,
        images=args.images, reference=args.reference, compare=args.compare,
        source_checkpoint=args.source_checkpoint, latency_images=args.latency_images,
        accuracy_images=args.accuracy_images, measure_peak=not args.no_peak, work_dir=args.work_dir,
    )
    progress = _Progress(not args.no_progress)
    try:
        report = run_bench(cfg, progress=progress.update, progress_total=progress.total)
    except KeyboardInterrupt:  # before any row was measured
        progress.close()
        print("edge-embedder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        progress.close()
        return _usage(" ".join(str(exc).split()))
    finally:
        progress.close()
    return finish(report, outputs, args.plot)


def finish(report, outputs: list[str], plot: Optional[str]) -> int:
    """Print the Markdown report, write the files and the plot; the exit code."""
    from .report import to_markdown, write_outputs, write_plot

    data = report.to_json()
    print(to_markdown(data))
    write_outputs(data, outputs)
    if plot:
        why = write_plot(data, plot)
        if why:
            print(f"edge-embedder: plot not written: {why}", file=sys.stderr)
    if report.interrupted:
        print("edge-embedder: interrupted; the report above has what was measured so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = report.failed_models
    if failed:
        print(f"edge-embedder: {len(failed)} model row(s) failed: "
              + "; ".join(f"{r['model']}: {r['error']}" for r in failed[:3]), file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _usage(msg: str) -> int:
    print(f"edge-embedder: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m benchmarks.cli MODEL ...`` (same as ``edge-embedder bench``)."""
    parser = argparse.ArgumentParser(prog="edge-embedder")
    sub = parser.add_subparsers(dest="command")
    add_bench_parser(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
