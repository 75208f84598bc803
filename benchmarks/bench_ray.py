"""Throughput of ``embed-dir`` vs Ray Data (1 and 2 actors) on the same folder of real photos.

Builds (once, in a cache folder) ``--count`` JPEG photos of 1024x768 to
2048x1536 from scikit-image's photographs (decoding included) and the shipped fp32 model. In one
run, on a local Ray cluster (``ray.init(num_cpus=2)``, started before the
clock):

* ``embed_dir`` with 1 and 2 interpreter threads (writes the ``.npz``);
* Ray: ``read`` paths -> ``map_batches(EmbedImages, compute=ActorPoolStrategy(size=N))`` with one
  interpreter thread per actor -> :func:`write_index_parquet`, for N = 1, 2.
  The time includes starting the actors and loading the model in each
  (about a second), as a real job pays it.

Every configuration's vectors are compared with ``embed_dir``'s (minimum cosine).

    python benchmarks/bench_ray.py [--count 120] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.folder import embed_dir, list_image_files
from edge_embedder.resources import default_model_path, sample_images
from edge_embedder.search import EmbeddingIndex

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


def vectors(path: Path) -> dict[str, np.ndarray]:
    index = EmbeddingIndex.load(path)
    return {p: index.vector(i) for i, p in enumerate(index.paths)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration; the median is reported")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_bench_photos"))
    args = ap.parse_args(argv)
    import ray

    from edge_embedder.integrations.ray import EmbedImages, init_local, write_index_parquet

    model = default_model_path("fp32")
    folder = build_folder(Path(args.cache), args.count)
    files, _ = list_image_files(folder)
    files = files[: args.count]
    sub = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    for f in files:  # exactly --count files in a folder of their own
        os.symlink(f, sub / os.path.basename(f))
    files, _ = list_image_files(sub)
    init_local(num_cpus=2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    load0 = os.getloadavg()
    print(f"{len(files)} JPEG photos (1024x768 to 2048x1536); model {model.name}; "
          f"median of {args.repeats} runs; CPU {os.cpu_count()} cores\n")
    rows = []
    ref = None
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=threads),
                                        l2_normalize=True)
            times = []
            for r in range(args.repeats):
                out = Path(tmp) / f"dir{threads}_{r}.npz"
                t0 = time.perf_counter()
                with ImageEmbedder.create_from_options(opts) as e:
                    embed_dir(e, sub, out, model_path=model, progress=False)
                times.append(time.perf_counter() - t0)
            got = vectors(out)
            ref = ref or got
            rows.append((f"embed-dir, {threads} interpreter thread{'s' if threads > 1 else ''}", times, got))
        for actors in (1, 2):
            times = []
            for r in range(args.repeats):
                out = Path(tmp) / f"ray{actors}_{r}.parquet"
                t0 = time.perf_counter()
                ds = ray.data.from_items([{"path": f} for f in files])
                mapped = ds.map_batches(EmbedImages, fn_constructor_kwargs={"model": str(model), "num_threads": 1},
                                        compute=ray.data.ActorPoolStrategy(size=actors), batch_size=8, num_cpus=1)
                write_index_parquet(mapped, out, model=str(model))
                times.append(time.perf_counter() - t0)
            rows.append((f"Ray Data, {actors} actor{'s' if actors > 1 else ''} x 1 thread", times, vectors(out)))
    load1 = os.getloadavg()
    print("| pipeline | median s | img/s | x embed-dir (1 thread) | min cosine vs embed-dir |")
    print("|---|---|---|---|---|")
    base = None
    for name, times, got in rows:
        med = float(np.median(times))
        rate = len(files) / med
        base = base or rate
        cos = min(float(np.dot(got[p], ref[p])) for p in ref) if set(got) == set(ref) else float("nan")
        print(f"| {name} | {med:.2f} | {rate:.1f} | {rate / base:.2f}x | {cos:.6f} |")
    print(f"\nLoad average (1 min) at start {load0[0]:.1f}, at end {load1[0]:.1f}.")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
