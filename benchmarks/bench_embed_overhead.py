"""What does ``embed()`` cost over a bare ``invoke()``? And over MediaPipe?

Reports, in one run on the same model file and thread count, the median of
``--runs`` calls (after ``--warmup``) of:

* bare ``invoke()`` of the LiteRT interpreter (input already filled),
* ``ImageEmbedder.embed()`` on a 640x480 and a 1920x1080 photo (numpy RGB),
  and its preprocessing part (ROI/rotation/resize/normalize into the input
  buffer) from the embedder's own per-call record, ``last_timings``,
* MediaPipe's ``ImageEmbedder.embed()`` on the same photos, when installed,

and the ratios to bare invoke. The measurements are interleaved round by round
so that drift on a shared machine hits every row alike.

    python benchmarks/bench_embed_overhead.py [--model M] [--threads 2] [--runs 200]
    python -m edge_embedder.bench.bench_embed_overhead ...   (the same, installed)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from edge_embedder import BaseOptions, Image, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.resources import default_model_path, model_path, sample_images


def sized_photo(name: str, w: int, h: int) -> np.ndarray:
    """A bundled photo resized (bicubic) to ``w`` x ``h``: a camera frame of that size."""
    src = Image.create_from_file(sample_images()[name]).numpy_view()
    return np.ascontiguousarray(cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model file (default: shipped EfficientNet-Lite0 fp32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    model = model_path(args.model) if args.model else default_model_path("fp32")

    photos = {f"{w}x{h}": sized_photo("astronaut", w, h) for w, h in ((640, 480), (1920, 1080))}
    ours = ImageEmbedder.create_from_options(
        ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=args.threads)))
    backend = ours.backend

    cases = {"bare invoke()": backend.invoke_only}
    for name, img in photos.items():
        cases[f"embed() {name}"] = (lambda im: lambda: ours.embed(im))(img)

    mp_note = ""
    mpe = None
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions as MPBase
        from mediapipe.tasks.python import vision

        mpe = vision.ImageEmbedder.create_from_options(
            vision.ImageEmbedderOptions(base_options=MPBase(model_asset_path=str(model))))
        for name, img in photos.items():
            mimg = mp.Image(image_format=mp.ImageFormat.SRGB, data=img)
            cases[f"MediaPipe embed() {name}"] = (lambda m: lambda: mpe.embed(m))(mimg)
        mp_note = f"MediaPipe {mp.__version__} (its own default threading)"
    except ImportError:
        mp_note = "MediaPipe not installed: its rows are missing"

    for fn in cases.values():
        for _ in range(args.warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for name in photos:
        samples[f"preprocess part of embed() {name}"] = []
    for _ in range(args.runs):
        for name, fn in cases.items():
            t0 = time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - t0) / 1e6)
            if name.startswith("embed() "):
                samples[f"preprocess part of {name}"].append(ours.last_timings.preprocess_ms)

    base = statistics.median(samples["bare invoke()"])
    print(f"model: {model.name}, {args.threads} threads, {args.runs} runs after {args.warmup} warm-up; {mp_note}\n")
    print("| step | median ms | p90 ms | x bare invoke |")
    print("|---|---|---|---|")
    for name, vals in samples.items():
        med = statistics.median(vals)
        p90 = sorted(vals)[int(0.9 * (len(vals) - 1))]
        print(f"| {name} | {med:.3f} | {p90:.3f} | {med / base:.2f} |")
    ours.close()
    if mpe is not None:
        mpe.close()  # before interpreter shutdown: MediaPipe's __del__ then fails noisily
    return 0


if __name__ == "__main__":
    sys.exit(main())
