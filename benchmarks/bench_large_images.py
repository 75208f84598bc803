"""Peak memory of embedding one very large photo: what a 1-2 GB board has to survive.

Builds (once, in ``--cache``) photo-like PNG and JPEG files of 12, 64 and 100
megapixels (scikit-image's astronaut, upscaled, 4:3), then embeds each in a
fresh process with the shipped fp32 model (``ImageEmbedder.embed(path)``, the
path a user's code takes) and reports that process' peak resident memory
(``VmHWM``), the wall time, and whether it succeeded or raised (with the
error's first line). Nothing else runs in the measured process.

    python benchmarks/bench_large_images.py [--sizes 12,64,100] [--cache DIR] [--pythonpath DIR]
    python benchmarks/bench_large_images.py --option max_image_pixels=200000000 ...

``--pythonpath`` runs the measured process against another checkout (to
compare revisions in one run). ``--option k=v`` passes an ``ImageEmbedderOptions``
field (the revision under test must know it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
opts = json.loads(sys.argv[3])
t0 = time.perf_counter()
status, error = "ok", None
try:
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
    o = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=sys.argv[2], num_threads=2), **opts)
    with ImageEmbedder.create_from_options(o) as e:
        e.embed(sys.argv[1])
except Exception as exc:
    status, error = type(exc).__name__, (str(exc).splitlines() or [""])[0][:160]
wall = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"status": status, "error": error, "peak_rss_mb": hwm / 1024, "seconds": wall}))
"""


def make_photo(path: Path, megapixels: int) -> Path:
    if path.is_file():
        return path
    import cv2
    import numpy as np
    import skimage.data
    from PIL import Image

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(megapixels * 1e6 / w))
    img = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()), (w, h), interpolation=cv2.INTER_LINEAR)
    tmp = path.with_suffix(".tmp" + path.suffix)
    im = Image.fromarray(img)
    if path.suffix == ".png":
        im.save(tmp, compress_level=1)
    else:
        im.save(tmp, quality=92)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="12,64,100", help="megapixels, comma-separated")
    ap.add_argument("--formats", default="png,jpg")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_large_images"))
    ap.add_argument("--model", default=None, help="model file (default: the shipped fp32 model)")
    ap.add_argument("--pythonpath", default=None, help="import edge_embedder from this folder in the measured process")
    ap.add_argument("--option", action="append", default=[], metavar="K=V",
                    help="an ImageEmbedderOptions field for the measured process (JSON value)")
    args = ap.parse_args(argv)
    from edge_embedder.resources import default_model_path

    model = args.model or str(default_model_path("fp32"))
    opts = {}
    for kv in args.option:
        k, v = kv.split("=", 1)
        opts[k] = json.loads(v)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    print(f"model {Path(model).name}; options {opts or 'defaults'}; edge_embedder from "
          f"{args.pythonpath or 'this environment'}\n")
    print("| input | file MB | result | peak RSS MB | seconds |")
    print("|---|---|---|---|---|")
    for mp in [int(s) for s in args.sizes.split(",")]:
        for fmt in args.formats.split(","):
            f = make_photo(cache / f"astronaut_{mp}mp.{fmt}", mp)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", CHILD, str(f), model, json.dumps(opts)], env=env,
                               capture_output=True, text=True, timeout=900)
            lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            if not lines:
                print(f"| {mp} MP {fmt} | {f.stat().st_size / 1e6:.1f} | crashed (exit {r.returncode}) | | "
                      f"{time.perf_counter() - t0:.1f} |")
                continue
            res = json.loads(lines[-1])
            error = (res["error"] or "").replace(str(f), f.name)  # no machine paths in the report
            result = "ok" if res["status"] == "ok" else f"{res['status']}: {error}"
            warned = " (+ warning on stderr)" if "Warning" in r.stderr else ""
            print(f"| {mp} MP {fmt} | {f.stat().st_size / 1e6:.1f} | {result}{warned} | {res['peak_rss_mb']:.0f} | "
                  f"{res['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
