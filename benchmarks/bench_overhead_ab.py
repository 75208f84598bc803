"""``embed()`` over bare ``invoke()``, A/B between two checkouts of edge_embedder, one harness for both.

``bench_embed_overhead.py`` changed with the code it measures (its rows, their
order, and so the cache state each row starts from), so its tables before and
after a change are not comparable. This script runs the *same* measurement on
each checkout given (each in its own subprocess, with ``PYTHONPATH`` set to
it), using only API both have (``ImageEmbedder.create_from_options``,
``embed``, ``backend.invoke_only``), alternating the checkouts ``--rounds``
times:

* ``steady``: ``--runs`` consecutive calls of one kind (bare invoke, embed()
  of a 640x480 photo, embed() of a 1920x1080 photo), wall-clock median, with
  ``--threads`` interpreter threads;
* ``cpu``: the same with 1 interpreter thread, as CPU time of the calling
  thread (``time.thread_time_ns``: what the call itself costs, whatever other
  processes do), so the difference embed() - invoke is the Python and
  preprocessing overhead;
* for a checkout whose embedder records ``last_timings``, the preprocess /
  inference / postprocess parts of the steady embed() calls.

    git worktree add BEFORE_DIR b1665c8     # the checkout to compare with
    python benchmarks/bench_overhead_ab.py before=BEFORE_DIR after=. [--rounds 3] [--runs 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, statistics, sys, time
import numpy as np
import cv2
from PIL import Image as PILImage
from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.resources import default_model_path, sample_images

threads, runs = int(sys.argv[1]), int(sys.argv[2])
src = np.asarray(PILImage.open(sample_images()["astronaut"]).convert("RGB"))
photos = {f"{w}x{h}": np.ascontiguousarray(cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC))
          for w, h in ((640, 480), (1920, 1080))}
out = {}
for mode, n_threads, clock in (("steady", threads, time.perf_counter_ns), ("cpu", 1, time.thread_time_ns)):
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=default_model_path("fp32"),
                                                         num_threads=n_threads))
    e = ImageEmbedder.create_from_options(opts)
    e.embed(photos["640x480"])
    cases = {"invoke": e.backend.invoke_only}
    for name, img in photos.items():
        cases[f"embed {name}"] = (lambda im: lambda: e.embed(im))(img)
    for name, fn in cases.items():
        for _ in range(20):
            fn()
        vals, parts = [], []
        for _ in range(runs):
            t0 = clock()
            fn()
            vals.append((clock() - t0) / 1e6)
            t = getattr(e, "last_timings", None)
            if name != "invoke" and t is not None:
                parts.append((t.preprocess_ms, t.inference_ms, t.postprocess_ms))
        out[f"{mode} {name}"] = statistics.median(vals)
        if parts and mode == "steady":  # the embedder's own record of where the call went (wall ms)
            for i, part in enumerate(("preprocess", "inference", "postprocess")):
                out[f"{mode} {name}: {part} part"] = statistics.median(p[i] for p in parts)
    e.close()
print(json.dumps(out))
"""


def run(checkout: Path, threads: int, runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(checkout)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(runs)], cwd=checkout, env=env,
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{checkout}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    named = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in args.checkouts]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in named}
    for _ in range(args.rounds):
        for name, path in named:
            results[name].append(run(path, args.threads, args.runs))
    keys = list(dict.fromkeys(k for rs in results.values() for r in rs for k in r))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in keys if k in rs[0]} for name, rs in results.items()}
    names = [n for n, _ in named]
    print(f"fp32 shipped model; steady: {args.threads} threads, wall ms; cpu: 1 thread, CPU ms of the calling "
          f"thread; median of {args.runs} calls, median over {args.rounds} alternating rounds\n")
    print("| measure | " + " | ".join(f"{n} ms | {n} x invoke" for n in names) + " |")
    print("|---|" + "---|---|" * len(names))
    for k in keys:
        mode = k.split()[0]
        cells = []
        for n in names:
            v = med[n].get(k)
            cells += ["", ""] if v is None else [f"{v:.3f}", f"{v / med[n][f'{mode} invoke']:.3f}"]
        print(f"| {k} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
