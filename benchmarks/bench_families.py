"""DINOv2-S/14 and SigLIP-B/16 (both towers) in every format and quantization vs eager PyTorch, 1 and 2 threads.

    python benchmarks/bench_families.py [--work /tmp/ee_families] [--threads 1,2] [--runs 15] [--warmup 3]
                                        [--reuse] [--out benchmarks/results/families.md]

The same harness as the other families (``bench_image_towers.py`` for image
towers, ``bench_text.py``'s interleaved rounds for text): random-weight
checkpoints with the real shapes (``convert_full_size.make_checkpoint``:
DINOv2-S/14 at facebook/dinov2-small's shapes, SigLIP-B/16 at
google/siglip-base-patch16-224's) are converted through
``edge_embedder.convert.convert`` to TFLite and ONNX in every quantization;
the parity floor is reported, not enforced (every file is kept, its minimum
cosine to the float32 transformers reference shown against the floor).

Rows, interleaved in one process (every round calls every variant once, each
timed call right after an untimed one of the same variant), at each of
``--threads``:

* image towers: ``ImageEmbedder.embed`` of one decoded photo (451x300,
  preprocessing included) per file, and eager PyTorch with its image
  processor (``Dinov2Model(...).pooler_output``,
  ``SiglipModel.get_image_features``); GFLOP/s from the graph's MACs and their
  share of the measured GEMM peak (``bench_image_towers.py``'s columns);
* SigLIP text tower: ``TextEmbedder.embed`` of ten everyday captions in
  turn (tokenize + invoke at the full 64 positions, as SigLIP runs) per file,
  and eager ``SiglipTokenizer(text, padding="max_length")`` +
  ``SiglipModel.get_text_features``.

``cpu p50`` is the calling thread's CPU time at 1 thread (every runtime
computes on the calling thread then, so other processes on a shared machine
inflate wall time, not CPU time). The results file names the command, the
CPU and its SIMD flags (``lscpu``), the load average before and after, and
the run's own duration.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

from edge_embedder.bench.bench_image_towers import bench_arch, convert_all
from edge_embedder.bench.bench_text import CAPTIONS, _cpu, _fmt, _p, _rounds
from edge_embedder.bench.convert_full_size import TITLES

IMAGE_ARCHS = ("dinov2", "siglip")
TEXT_TITLE = "SigLIP-B/16 text (64 positions)"


def convert_text(work: Path, reuse: bool) -> dict[tuple[str, str], dict[str, Any]]:
    """{(fmt, quant): {"path", "report", "floor"}}: the SigLIP-B/16 text tower in every format and quantization."""
    return convert_all("siglip", work, reuse, task="text-embedding", stem="siglip_text")


def bench_text(files: dict, ckpt: Path, threads: list[int], runs: int, warmup: int) -> list[dict[str, Any]]:
    import torch
    from transformers import AutoTokenizer, SiglipModel

    from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    model = SiglipModel.from_pretrained(str(ckpt)).eval()
    eager_name = "transformers eager (SiglipTokenizer, padding max_length + get_text_features)"
    variants: dict[str, Callable[[int], Any]] = {}
    extra: dict[str, Callable[[], float]] = {}
    meta: dict[str, tuple[int, Any]] = {}
    embedders = []
    for t in threads:
        for (fmt, quant), info in files.items():
            e = TextEmbedder.create_from_options(TextEmbedderOptions(
                base_options=BaseOptions(model_asset_path=str(info["path"]), num_threads=t)))
            embedders.append(e)
            name = f"edge_embedder {fmt} {quant} @{t}"
            variants[name] = lambda r, e=e: e.embed(CAPTIONS[r % len(CAPTIONS)])
            extra[name] = lambda e=e: e.last_timings.preprocess_ms
            meta[name] = (t, info)

        def eager(r: int, t: int = t) -> Any:
            torch.set_num_threads(t)
            with torch.no_grad():
                ids = tok([CAPTIONS[r % len(CAPTIONS)]], padding="max_length", max_length=64, truncation=True,
                          return_tensors="pt")["input_ids"]
                return model.get_text_features(input_ids=ids)

        variants[f"{eager_name} @{t}"], meta[f"{eager_name} @{t}"] = eager, (t, None)
    times, extras = _rounds(variants, runs, warmup, extra)
    rows = []
    for name, ts in times.items():
        t, info = meta[name]
        eager_ts = times[f"{eager_name} @{t}"]
        cpu = extras[f"{name} #cpu"]
        rows.append({
            "variant": name.rsplit(" @", 1)[0], "threads": t, "p50": _p(ts, 50), "p90": _p(ts, 90),
            "cpu_p50": _p(cpu, 50) if t == 1 else None,
            "tokenize_p50": _p(extras[name], 50) if name in extras else None,
            "eager_over": statistics.median(eager_ts) / _p(ts, 50),
            "eager_over_cpu": (statistics.median(extras[f"{eager_name} @{t} #cpu"]) / _p(cpu, 50)) if t == 1 else None,
            "size_mib": info["path"].stat().st_size / 2**20 if info else None,
            "min_cosine": info["report"]["min_cosine"] if info else None,
            "floor": info["floor"] if info else None,
        })
    for e in embedders:
        e.close()
    return rows


def render(image_rows: list[dict], text_rows: list[dict], peaks: dict[int, dict], args: argparse.Namespace,
           load_before: float, seconds: float) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cmd = (f"python benchmarks/bench_families.py --threads {','.join(map(str, args.threads))} --runs {args.runs} "
           f"--warmup {args.warmup}")
    lines = [
        "# DINOv2-S/14 and SigLIP-B/16 vs eager PyTorch: every format and quantization, 1 and 2 threads",
        "",
        f"`{cmd}` on {_cpu()}; {time.strftime('%Y-%m-%d')}; load average (1 min) {load_before:.2f} before, "
        f"{load:.2f} after; the run took {seconds / 60:.0f} min (conversions included). Random weights with the "
        "real shapes (latency does not depend on weight values; cosines on random weights only show that a recipe "
        "is sane). Rows interleaved in one process; p50 / p90 of "
        f"{args.runs} timed calls after {args.warmup} warm-up rounds. `cpu p50`: CPU time of the calling thread "
        "(1 thread only). `eager / ours`: eager PyTorch's p50 over the row's (`cpu` in the text table: the same from "
        "thread CPU times). `min cosine`: the file run through the runtime vs the float32 transformers reference "
        "(5 photos / 10 captions), with the recipe's parity floor.",
        "",
        "Measured GEMM peaks: " + "; ".join(
            f"{t} thread(s): " + ", ".join(f"{dt} {v['gflops']:.0f} GFLOP/s ({v['how']})" for dt, v in p.items() if v)
            for t, p in peaks.items()),
        "",
        "## Image towers (one 451x300 photo, `ImageEmbedder.embed`, preprocessing included)",
        "",
        "| architecture | variant | threads | p50 ms | p90 ms | cpu p50 ms | eager / ours | GFLOP/s | % peak | "
        "size MiB | min cosine | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in image_rows:
        floor = "" if r["floor"] is None else f"{r['floor']} ({'pass' if r['min_cosine'] >= r['floor'] else 'FAIL'})"
        share = None if r["peak_share"] is None else 100 * r["peak_share"]
        lines.append(f"| {TITLES[r['arch']]} | {r['variant']} | {r['threads']} | {r['p50']:.1f} | {r['p90']:.1f} | "
                     f"{_fmt(r['cpu_p50'], '.1f')} | {r['eager_over']:.2f} | {_fmt(r['gflops'], '.0f')} | "
                     f"{_fmt(share, '.0f')}{'' if share is None else ' (' + str(r['compute']) + ')'} | "
                     f"{_fmt(r['size_mib'], '.1f')} | {_fmt(r['min_cosine'], '.5f')} | {floor} |")
    lines += [
        "",
        "## SigLIP-B/16 text tower (ten 5-20-word captions in turn, `TextEmbedder.embed` at 64 positions)",
        "",
        "| model | variant | threads | p50 ms | p90 ms | cpu p50 ms | tokenize p50 ms | eager / ours | eager / ours (cpu) | "
        "size MiB | min cosine | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in text_rows:
        floor = "" if r["floor"] is None else f"{r['floor']} ({'pass' if r['min_cosine'] >= r['floor'] else 'FAIL'})"
        lines.append(f"| {TEXT_TITLE} | {r['variant']} | {r['threads']} | {r['p50']:.1f} | {r['p90']:.1f} | "
                     f"{_fmt(r['cpu_p50'], '.1f')} | {_fmt(r['tokenize_p50'], '.3f')} | {r['eager_over']:.2f} | "
                     f"{_fmt(r['eager_over_cpu'], '.2f')} | {_fmt(r['size_mib'], '.1f')} | "
                     f"{_fmt(r['min_cosine'], '.5f')} | {floor} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edge_embedder.argtypes import int_list

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/ee_families", help="checkpoints and converted files (~2.5 GB)")
    ap.add_argument("--threads", type=int_list, default=[1, 2])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="keep files converted by an earlier run")
    ap.add_argument("--out", default=None, help="write the markdown here (default: print)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from edge_embedder.bench.peak import measure_peaks

    image_files = {arch: convert_all(arch, work, args.reuse) for arch in IMAGE_ARCHS}
    text_files = convert_text(work, args.reuse)
    peaks = {t: measure_peaks(t) for t in args.threads}
    image_rows: list[dict] = []
    for arch, files in image_files.items():
        print(f"measuring {arch} ...", file=sys.stderr, flush=True)
        image_rows += bench_arch(arch, files, work, args.threads, args.runs, args.warmup, peaks)
        gc.collect()
    print("measuring siglip text ...", file=sys.stderr, flush=True)
    text_rows = bench_text(text_files, work / "siglip-ckpt", args.threads, args.runs, args.warmup)
    # The peak again at the end, the higher one kept (a contended first measurement must not make the
    # models look closer to the peak than they are); shares recomputed from the kept peak.
    for t in args.threads:
        for dt, v in measure_peaks(t).items():
            old = peaks[t].get(dt)
            if v is not None and (old is None or v["gflops"] > old["gflops"]):
                peaks[t][dt] = v
    for r in image_rows:
        if r["gflops"] is not None and peaks[r["threads"]].get(r["compute"]):
            r["peak_share"] = r["gflops"] / peaks[r["threads"]][r["compute"]]["gflops"]
    md = render(image_rows, text_rows, peaks, args, load_before, time.perf_counter() - t0)
    if args.out:
        from edge_embedder.files import atomic_write

        atomic_write(args.out, md.encode("utf-8"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
