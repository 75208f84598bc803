"""Query latency, resident memory, recall and build time of :class:`EmbeddingIndex`.

For each size (default 10k, 100k, 1M) of synthetic 512-d vectors, in one run:

* writes the index as float32, float16 and int8 ``.npz`` files (L2-normalised;
  int8 by MediaPipe's scalar quantization) and times it ("build");
* builds the HNSW graph (usearch, float16 vectors, 2 threads) and times it;
* in a fresh subprocess per configuration: opens the index (memory-mapped),
  runs one warm-up query, then ``--queries`` single-vector top-10 queries,
  timed one by one with ``perf_counter_ns``; reports the median and p90, and
  the resident memory the index added (VmRSS after the queries minus VmRSS
  before opening it, so the interpreter and numpy are not counted) as a
  ratio to the bytes of vectors that configuration searches;
* recall@10 of each configuration against exact float32 top-10.

Exact float32 is also timed at ``--threshold-sizes`` to place the size at
which exact search passes 10 ms (``APPROXIMATE_MIN_ELEMENTS``).

The data: real embeddings are neither uniform nor isotropic, and uniform
random 512-d vectors are the known worst case of every graph index (no
neighbourhood structure). The generator draws clusters (``N / 100`` centres)
from an anisotropic Gaussian whose standard deviations fall as
``1 / sqrt(i)`` (a power-law spectrum, effective dimension ~30), rotated by a
random orthogonal matrix; each vector is its centre plus noise of the same
spectrum, normalised. Queries are fresh draws from the same clusters. The
report states the median nearest-neighbour cosine so the difficulty is
visible; ``--uniform`` runs isotropic Gaussian data instead.

    python benchmarks/bench_search.py [--sizes 10000,100000,1000000] [--queries 200]
        [--workdir /tmp/edge_embedder_bench_search] [-o benchmarks/results/search.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge_embedder.search import (
    APPROXIMATE_MIN_ELEMENTS,
    EmbeddingIndex,
    IndexMeta,
    build_index_sidecar,
    to_storage,
    write_index_file,
)

K = 10
EF_VALUES = (64, 128, 256)


# -- data ---------------------------------------------------------------------------


def generate(n: int, q: int, dim: int, seed: int, uniform: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` index vectors and ``q`` query vectors, float32, L2-normalised."""
    rng = np.random.default_rng(seed)
    if uniform:
        x = rng.standard_normal((n + q, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x[:n], x[n:]
    std = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    rot = rot.astype(np.float32)
    k = max(10, n // 100)
    centres = (rng.standard_normal((k, dim), dtype=np.float32) * std) @ rot
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        step = 65536
        for a in range(0, m, step):
            b = min(m, a + step)
            noise = (rng.standard_normal((b - a, dim), dtype=np.float32) * std) @ rot
            noise /= np.linalg.norm(noise, axis=1, keepdims=True)
            v = centres[rng.integers(0, k, b - a)] + 0.8 * noise
            out[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    return draw(n), draw(q)


def rss_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssAnon:", "RssFile:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])
    return out


# -- worker (one configuration, fresh process) -----------------------------------------


def worker(args: argparse.Namespace) -> int:
    import usearch.index  # noqa: F401  (imported before the baseline, as in a server that uses it)

    queries = np.load(args.queries)
    before = rss_kib()
    t0 = time.perf_counter()
    index = EmbeddingIndex.load(args.index, approximate="always" if args.mode == "approx" else "never")
    open_ms = (time.perf_counter() - t0) * 1e3
    results = {}
    efs = EF_VALUES if args.mode == "approx" else (None,)
    for ef in efs:
        if ef is not None:
            index.expansion_search = ef
        index.search(queries[0], K)  # warm-up: pages in the vectors (exact) / the graph
        index.search(queries[1], K)
        times, ids = [], []
        for q in queries:
            t = time.perf_counter_ns()
            hits = index.search(q, K)
            times.append(time.perf_counter_ns() - t)
            ids.append([h.index for h in hits] + [-1] * (K - len(hits)))
        ms = np.array(times) / 1e6
        results[str(ef)] = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "ids": ids}
    after = rss_kib()
    print(json.dumps({"open_ms": open_ms, "before": before, "after": after, "results": results}))
    return 0


def run_worker(index: Path, queries: Path, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--index", str(index), "--queries", str(queries), "--mode", mode]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def recall(ids: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b.tolist())) / K for a, b in zip(ids, truth)]))


# -- main ---------------------------------------------------------------------------


def cpu_summary() -> str:
    model = flags = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                                              "avx512_fp16", "avx_vnni", "asimd", "sve") if f in have)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, flags: {flags}"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--threshold-sizes", default="200000,400000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", default="200", help="number of queries")
    ap.add_argument("--uniform", action="store_true", help="isotropic Gaussian data (the worst case)")
    ap.add_argument("--workdir", default="/tmp/edge_embedder_bench_search")
    ap.add_argument("-o", "--out", default=None, help="also write the report (markdown) and OUT.json here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    return ap


def _row(n: int, storage: str, search: str, stored_bytes: int, build_s: float, r: dict, res: dict, truth) -> dict:
    grown_kb = r["after"]["VmRSS"] - r["before"]["VmRSS"]
    return {"n": n, "storage": storage, "search": search, "stored_mb": stored_bytes / 1e6, "build_s": build_s,
            "open_ms": r["open_ms"], "median_ms": res["median_ms"], "p90_ms": res["p90_ms"],
            "resident_mb": grown_kb / 1024, "ratio": grown_kb * 1024 / stored_bytes, "recall": recall(res["ids"], truth)}


def _write_storages(work: Path, n: int, x: np.ndarray) -> dict[str, tuple[Path, float, int]]:
    """The same vectors as float32, float16 and int8 index files: storage -> (path, build s, bytes)."""
    files = {}
    for storage in ("float32", "float16", "int8"):
        path = work / f"n{n}_{storage}.npz"
        t0 = time.perf_counter()
        matrix = to_storage(x, storage)
        write_index_file(path, [f"img{i:07d}" for i in range(n)], matrix,
                         IndexMeta(embedding_space="bench", normalized=True, build_id=f"{n}-{storage}"))
        files[storage] = (path, time.perf_counter() - t0, matrix.nbytes)
        del matrix
    return files


def _measure_size(args: argparse.Namespace, work: Path, n: int, emit) -> float:
    """Exact search in each storage and HNSW on the float32 file for ``n`` vectors; the median NN cosine."""
    x, q = generate(n, args.queries, args.dim, seed=n, uniform=args.uniform)
    qfile = work / f"q{n}.npy"
    np.save(qfile, q)
    files = _write_storages(work, n, x)
    del x
    truth, nn_cos = None, 0.0
    for storage, (path, build_s, nbytes) in files.items():
        r = run_worker(path, qfile, "exact")
        res = r["results"]["None"]
        if storage == "float32":
            truth = np.array(res["ids"])
            idx = EmbeddingIndex.load(path, approximate="never")
            nn_cos = float(np.median([idx.search(v, 1)[0].score for v in q[:50]]))
            del idx
        emit(_row(n, storage, "exact", nbytes, build_s, r, res, truth))
    path = files["float32"][0]
    t0 = time.perf_counter()
    sidecar = build_index_sidecar(path, threads=2)
    ann_s = time.perf_counter() - t0
    r = run_worker(path, qfile, "approx")
    for ef, res in r["results"].items():
        emit(_row(n, "float32 + f16 graph", f"HNSW ef={ef}", sidecar.stat().st_size, ann_s, r, res, truth))
    if n >= 1_000_000:  # keep the disk use bounded
        for path, _, _ in files.values():
            for f in (path, Path(str(path) + ".usearch"), Path(str(path) + ".usearch.json")):
                if f.exists():
                    f.unlink()
    return nn_cos


def _threshold_rows(args: argparse.Namespace, work: Path, sizes: list[int]) -> list[dict]:
    """Exact float32 latency at the sizes around the approximate-search threshold."""
    out = []
    for n in sorted(set(sizes) | {int(s) for s in args.threshold_sizes.split(",") if s}):
        path = work / f"thr{n}.npz"
        x, q = generate(n, args.queries, args.dim, seed=n, uniform=args.uniform)
        write_index_file(path, [f"img{i:07d}" for i in range(n)], to_storage(x, "float32"), IndexMeta(normalized=True))
        del x
        qfile = work / f"thr_q{n}.npy"
        np.save(qfile, q)
        res = run_worker(path, qfile, "exact")["results"]["None"]
        out.append({"n": n, "median_ms": res["median_ms"], "p90_ms": res["p90_ms"]})
        print(f"| {n:,} | {n * args.dim:,} | {res['median_ms']:.3f} | {res['p90_ms']:.3f} |", flush=True)
        path.unlink()
    return out


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return worker(args)  # --queries is a path in worker mode
    args.queries = int(args.queries)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    import usearch

    load0 = os.getloadavg()
    lines = [f"CPU: {cpu_summary()}; numpy {np.__version__}, usearch {usearch.__version__}; "
             f"{'uniform' if args.uniform else 'clustered power-law'} {args.dim}-d data; "
             f"{args.queries} single-vector top-{K} queries per row; one run.", ""]
    lines += ["| vectors | storage | search | stored MB | build s | open ms | median ms | p90 ms | "
              "resident MB | resident / stored | recall@10 vs exact f32 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    raw: dict = {"cpu": cpu_summary(), "rows": [], "threshold": []}
    print("\n".join(lines), flush=True)

    def emit(row: dict) -> None:
        raw["rows"].append(row)
        line = (f"| {row['n']:,} | {row['storage']} | {row['search']} | {row['stored_mb']:.0f} | {row['build_s']:.1f} | "
                f"{row['open_ms']:.1f} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} | {row['resident_mb']:.0f} | "
                f"{row['ratio']:.2f} | {row['recall']:.4f} |")
        lines.append(line)
        print(line, flush=True)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    nn_cos = {n: _measure_size(args, work, n, emit) for n in sizes}
    lines += ["", "Median nearest-neighbour cosine of the queries: "
              + ", ".join(f"{n:,}: {c:.3f}" for n, c in nn_cos.items()) + ".", "",
              f"Exact float32 latency for the approximate-search threshold (APPROXIMATE_MIN_ELEMENTS = "
              f"{APPROXIMATE_MIN_ELEMENTS:,} elements):", "",
              "| vectors | elements (N x D) | exact f32 median ms | p90 ms |", "|---|---|---|---|"]
    raw["threshold"] = _threshold_rows(args, work, sizes)
    lines += [f"| {t['n']:,} | {t['n'] * args.dim:,} | {t['median_ms']:.3f} | {t['p90_ms']:.3f} |" for t in raw["threshold"]]
    load1 = os.getloadavg()
    lines += ["", f"Load average (1 / 5 / 15 min) at start {load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f}, "
              f"at end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}."]
    raw["loadavg"] = {"start": load0, "end": load1}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(f"`{' '.join(['python', 'benchmarks/bench_search.py'] + (argv or sys.argv[1:]))}`\n\n"
                                  + "\n".join(lines) + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(
            {**raw, "nn_cos": nn_cos, "python": platform.python_version()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
