"""How long does ``embed_async()`` take to return, while the worker is busy with inference?

LIVE_STREAM mode promises that ``embed_async`` only enqueues (a copy of a
numpy frame) and never waits for inference. The tests check that it returns
while the worker is held inside a callback (``tests/test_running_modes.py``);
this script measures how fast it returns, which a test must not assert (the
suite also runs under emulation, hundreds of times slower). It submits
``--frames`` 640x480 numpy frames at ``--fps``, with the worker running the
model the whole time, and reports the median, p90, p99 and maximum return time
of ``embed_async`` next to the median inference time of the same frames
(``last_timings``, recorded in the callback), and how many frames were
processed and dropped.

    python benchmarks/bench_live_stream.py [--model M] [--threads 2] [--frames 300] [--fps 60] [-o OUT.md]
    python -m edge_embedder.bench.bench_live_stream ...   (the same, installed)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edge_embedder.bench.bench_embed_overhead import sized_photo

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions, RunningMode
from edge_embedder.resources import default_model_path


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    simd = [f for f in ("neon", "asimd", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{model} ({os.cpu_count()} CPUs; lscpu flags include {' '.join(simd) or 'none of the SIMD flags looked for'})"


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="embedder file (default: the shipped EfficientNet-Lite0 fp32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--fps", type=float, default=60.0, help="submission rate (faster than inference: frames drop)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("-o", "--out", type=Path, help="write the table as Markdown")
    args = ap.parse_args(argv)
    model = Path(args.model) if args.model else default_model_path("fp32")
    frame = sized_photo("chelsea", 640, 480)
    inference_ms: list[float] = []

    def on_result(result, image, timestamp_ms) -> None:
        inference_ms.append(live.last_timings.inference_ms)

    live = ImageEmbedder.create_from_options(ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=model, num_threads=args.threads),
        running_mode=RunningMode.LIVE_STREAM, result_callback=on_result))
    load_before = _load()
    period = 1.0 / args.fps
    returns_ms: list[float] = []
    try:
        for i in range(args.warmup + args.frames):
            t0 = time.perf_counter_ns()
            live.embed_async(frame, i * 10)
            dt = (time.perf_counter_ns() - t0) / 1e6
            if i >= args.warmup:
                returns_ms.append(dt)
            time.sleep(max(0.0, period - dt / 1000))
    finally:
        live.close()
    stats = live.live_stream_stats
    q = statistics.quantiles(returns_ms, n=100)
    rows = [
        ("embed_async() return", statistics.median(returns_ms), q[89], q[98], max(returns_ms)),
    ]
    inf = sorted(inference_ms)
    lines = [
        "# embed_async() return time in LIVE_STREAM mode",
        "",
        f"Command: `python benchmarks/bench_live_stream.py --threads {args.threads} --frames {args.frames} "
        f"--fps {args.fps:g}" + (f" -o {args.out}" if args.out else "") + "`",
        "",
        f"Model: {model.name}, {args.threads} threads, 640x480 numpy RGB frames at {args.fps:g} fps "
        f"({args.frames} measured after {args.warmup} warm-up). Machine: {_cpu()}; load average {load_before} "
        f"before, {_load()} after. Python {platform.python_version()}.",
        "",
        "| what | median ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *(f"| {name} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.3f} |" for name, a, b, c, d in rows),
        f"| inference of a frame (worker, `last_timings`) | {statistics.median(inf):.3f} | | | |",
        "",
        f"Frames: {stats.submitted} submitted, {stats.processed} processed, {stats.dropped} dropped "
        f"(the older waiting frame is dropped when a newer one arrives), {stats.failed} failed.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
