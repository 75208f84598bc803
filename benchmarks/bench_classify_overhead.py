"""What does ``classify()`` cost over a bare ``invoke()``? And over MediaPipe's ``classify()``?

Reports, in one run on the same classifier file and thread count, the median of
``--runs`` calls (after ``--warmup``) of:

* bare ``invoke()`` of the LiteRT interpreter (input already filled),
* ``ImageClassifier.classify()`` on a 640x480 and a 1920x1080 photo (numpy
  RGB), every class returned (the default ``max_results=-1``, as MediaPipe's
  default), with its preprocessing and postprocessing parts from the
  classifier's own per-call record (``last_timings``),
* the same with ``max_results=5`` (the top 5 a user usually wants),
* MediaPipe's ``ImageClassifier.classify()`` on the same photos and file, with
  its default options (every class) and with ``max_results=5``, when installed,

and the ratios to bare invoke. The measurements are interleaved round by round
so that drift on a shared machine hits every row alike.

    python benchmarks/bench_classify_overhead.py [--model M] [--threads 2] [--runs 200]
    python -m edge_embedder.bench.bench_classify_overhead ...   (the same, installed)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from edge_embedder.bench.bench_embed_overhead import sized_photo

from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions
from edge_embedder.resources import default_classifier_path, model_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="classifier file (default: shipped EfficientNet-Lite0 fp32 classifier)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    model = model_path(args.model) if args.model else default_classifier_path("fp32")

    photos = {f"{w}x{h}": sized_photo("coffee", w, h) for w, h in ((640, 480), (1920, 1080))}
    base = BaseOptions(model_asset_path=model, num_threads=args.threads)
    ours = ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base))
    top5 = ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base, max_results=5))
    backend = ours.backend

    cases = {"bare invoke()": backend.invoke_only}
    for name, img in photos.items():
        cases[f"classify() {name}"] = (lambda im: lambda: ours.classify(im))(img)
        cases[f"classify() {name} max_results=5"] = (lambda im: lambda: top5.classify(im))(img)

    mp_note = ""
    closers = [ours.close, top5.close]
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions as MPBase
        from mediapipe.tasks.python import vision

        mpc = vision.ImageClassifier.create_from_options(
            vision.ImageClassifierOptions(base_options=MPBase(model_asset_path=str(model))))
        mpc5 = vision.ImageClassifier.create_from_options(
            vision.ImageClassifierOptions(base_options=MPBase(model_asset_path=str(model)), max_results=5))
        for name, img in photos.items():
            mimg = mp.Image(image_format=mp.ImageFormat.SRGB, data=img)
            cases[f"MediaPipe classify() {name}"] = (lambda m: lambda: mpc.classify(m))(mimg)
            cases[f"MediaPipe classify() {name} max_results=5"] = (lambda m: lambda: mpc5.classify(m))(mimg)
        closers += [mpc.close, mpc5.close]
        mp_note = f"MediaPipe {mp.__version__} (its own default threading; it has no thread option)"
    except ImportError:
        mp_note = "MediaPipe not installed: its rows are missing"

    for fn in cases.values():
        for _ in range(args.warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for name in photos:
        samples[f"preprocess part of classify() {name}"] = []
        samples[f"postprocess part of classify() {name}"] = []
    for _ in range(args.runs):
        for name, fn in cases.items():
            t0 = time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - t0) / 1e6)
            if name.startswith("classify() ") and "max_results" not in name:
                t = ours.last_timings
                size = name.split()[1]
                samples[f"preprocess part of classify() {size}"].append(t.preprocess_ms)
                samples[f"postprocess part of classify() {size}"].append(t.postprocess_ms)

    base_ms = statistics.median(samples["bare invoke()"])
    print(f"model: {model.name}, {args.threads} threads, {args.runs} runs after {args.warmup} warm-up; {mp_note}\n")
    print("| step | median ms | p90 ms | x bare invoke |")
    print("|---|---|---|---|")
    for name, vals in samples.items():
        med = statistics.median(vals)
        p90 = sorted(vals)[int(0.9 * (len(vals) - 1))]
        print(f"| {name} | {med:.3f} | {p90:.3f} | {med / base_ms:.2f} |")
    for size in photos:
        ours_ms = statistics.median(samples[f"classify() {size}"])
        key = f"MediaPipe classify() {size}"
        if key in samples:
            print(f"\nclassify() {size}: {ours_ms / base_ms:.3f}x bare invoke, "
                  f"{ours_ms / statistics.median(samples[key]):.3f}x MediaPipe's classify()")
    for close in closers:
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
