"""Throughput of ``embed-dir`` vs calling ``embed()`` in a loop, on a folder of real photos.

Builds (once, in a cache folder) ``--count`` JPEG photos of real camera sizes
from scikit-image's photographs (crops, flips and rescales of chelsea, coffee,
astronaut, rocket, ... at 1024x768 to 2048x1536), then measures, for 1 and 2
interpreter threads, in one run:

* ``embed() loop``: ``for path in files: embedder.embed(path)``;
* ``embed_dir``: :func:`edge_embedder.folder.embed_dir` (decoding on background
  threads, overlapped with inference; writes the .npz);
* ``2 threads sharing one embedder``: the lock-serialised shared embedder.

    python benchmarks/bench_embed_dir.py [--count 120] [--model M]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.folder import embed_dir, list_image_files
from edge_embedder.resources import default_model_path, sample_images

SIZES = [(1024, 768), (1600, 1200), (2048, 1536), (1280, 960)]


def build_folder(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) >= count:
        return folder
    sources = [np.asarray(PILImage.open(p).convert("RGB")) for p in sample_images().values()]
    rng = np.random.default_rng(0)
    for i in range(count):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = src[y : y + ch, x : x + cw]
        if i % 2:
            crop = crop[:, ::-1]
        im = PILImage.fromarray(np.ascontiguousarray(crop)).resize(SIZES[i % len(SIZES)], PILImage.Resampling.BICUBIC)
        im.save(folder / f"photo_{i:04d}.jpg", quality=90)
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--model", default=None)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_bench_photos"))
    args = ap.parse_args(argv)
    model = Path(args.model) if args.model else default_model_path("fp32")
    folder = build_folder(Path(args.cache), args.count)
    files, _ = list_image_files(folder)
    files = files[: args.count]
    print(f"{len(files)} JPEG photos (1024x768 to 2048x1536) in {folder}; model {model.name}\n")
    print("| threads | embed() loop img/s | embed_dir img/s | embed_dir / loop | 2 callers sharing one embedder img/s |")
    print("|---|---|---|---|---|")
    for threads in (1, 2):
        opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=threads))
        with ImageEmbedder.create_from_options(opts) as e:
            for p in files[:3]:
                e.embed(p)  # warm-up
            t0 = time.perf_counter()
            for p in files:
                e.embed(p)
            loop = len(files) / (time.perf_counter() - t0)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                r = embed_dir(e, folder, Path(tmp) / "out.npz", model_path=model, progress=False)
                dir_rate = r.embedded / (time.perf_counter() - t0)
            halves = [files[0::2], files[1::2]]
            t0 = time.perf_counter()
            workers = [threading.Thread(target=lambda fs: [e.embed(p) for p in fs], args=(h,)) for h in halves]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            shared = len(files) / (time.perf_counter() - t0)
        print(f"| {threads} | {loop:.1f} | {dir_rate:.1f} | {dir_rate / loop:.2f}x | {shared:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
