"""Build the shipped default models with the same :func:`convert` as user models.

    python -m edge_embedder.convert.build_default_models [--out models/] [--verify]

Writes, through ``convert("efficientnet-lite0", None, ...)`` (the converters'
one pipeline: metadata builder, calibration, contract check and parity report):

Embedders (``--task image-embedding``):

* ``efficientnet_lite0_fp32.tflite``: float32 NHWC input ``[1, 224, 224, 3]``
  normalized ``(x - 127) / 128``; float32 output ``[1, 1280]``.
* ``efficientnet_lite0_int8.tflite``: full-integer int8, uint8 input
  ``[1, 224, 224, 3]`` = raw RGB pixels (the input quantization, scale 1/128 and
  zero point 127, *is* the normalization), float32 output ``[1, 1280]``;
  calibrated on the converters' default set (30 views of scikit-image photos
  that are not parity photos: ``edge_embedder.convert.photos``).

Classifiers (``--task image-classification``: the same network with its
ImageNet head and a softmax in the graph; the 1000 ImageNet-1k names of
``models/labels/imagenet_labels.txt`` packed in the file as ``labels.txt``):

* ``efficientnet_lite0_classifier_fp32.tflite``: float32 input as above;
  float32 output ``[1, 1000]`` of probabilities.
* ``efficientnet_lite0_classifier_int8.tflite``: int8 with uint8 raw-pixel
  input as above; the head's linear layer (int8 weights) and the softmax
  compute in float, float32 output ``[1, 1000]``.

The parity reports go to ``--reports`` (default: a temporary folder; they
hold timings, so they are not committed). ``--verify`` also prints the checks
recorded in ``models/README.md`` (ImageNet classifier sanity check, cosine
similarities, invoke latency) as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import efficientnet_lite0 as enl
from .litert_export import io_details
from .photos import PARITY_PHOTOS, photo

#: (file name, --quantize, --task) of every shipped model, in build order.
MODELS = (
    ("efficientnet_lite0_fp32.tflite", "none", "image-embedding"),
    ("efficientnet_lite0_int8.tflite", "int8", "image-embedding"),
    ("efficientnet_lite0_classifier_fp32.tflite", "none", "image-classification"),
    ("efficientnet_lite0_classifier_int8.tflite", "int8", "image-classification"),
)
FP32_NAME, INT8_NAME = MODELS[0][0], MODELS[1][0]
CLASSIFIER_FP32_NAME, CLASSIFIER_INT8_NAME = MODELS[2][0], MODELS[3][0]


def build(out_dir: str | Path = "models", reports: str | Path | None = None) -> dict[str, Path]:
    """Convert every shipped model into ``out_dir``; return their paths."""
    from .architectures import get_config
    from .pipeline import convert

    out_dir = Path(out_dir)
    report_dir = Path(reports) if reports else Path(tempfile.mkdtemp(prefix="edge_embedder_default_models_"))
    loaded: dict = {}
    caches: dict = {}
    paths = {}
    for name, quant, task in MODELS:
        if task not in loaded:
            loaded[task] = get_config("efficientnet-lite0", task).load(None)
        result = convert("efficientnet-lite0", None, output=out_dir / name, task=task, quantize=quant,
                         loaded=loaded[task], reference_cache=caches.setdefault(task, {}),
                         report_path=report_dir / f"{name}.parity.json")
        data = result.path.read_bytes()
        paths[name] = result.path
        summary = (f"min parity cosine {result.report['min_cosine']:.6f}" if task == "image-embedding" else
                   f"parity top-1 agreement {result.report['top1_agreement']:.2f}, max |score diff| "
                   f"{result.report['max_abs_score_diff']:.2g}")
        print(f"wrote {result.path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}); "
              f"{summary}; report {result.report_path}", file=sys.stderr)
    return paths


# --------------------------------------------------------------------------- #
# Verification (numbers recorded in models/README.md)
# --------------------------------------------------------------------------- #


class _Runner:
    def __init__(self, path: Path, num_threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=num_threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def median_invoke_ms(self, runs: int = 100, warmup: int = 20) -> float:
        self.it.set_tensor(self.inp["index"], np.zeros(self.inp["shape"], self.inp["dtype"]))
        for _ in range(warmup):
            self.it.invoke()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.it.invoke()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3


def verify(out_dir: str | Path = "models") -> dict:
    """Sanity checks of the built files through the runtime (``ImageEmbedder``) and PyTorch."""
    import torch

    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
    from edge_embedder.containers import cosine_similarity
    from edge_embedder.metadata import NormalizationOptions
    from edge_embedder.vision import DEFAULT_RECIPE, Preprocessor

    out_dir = Path(out_dir)
    photos = {n: photo(n) for n in PARITY_PHOTOS}
    classifier = enl.load_classifier()
    embedder = enl.build_embedder(classifier)
    pre = Preprocessor(enl.INPUT_SIZE, enl.INPUT_SIZE, DEFAULT_RECIPE,
                       NormalizationOptions((enl.NORM_MEAN,), (enl.NORM_STD,)))

    def opts(name: str) -> ImageEmbedderOptions:
        return ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=out_dir / name, num_threads=2))

    report: dict = {"top1": {}, "cos_fp32_vs_torch": {}, "cos_int8_vs_fp32": {}}
    feats = {}
    with ImageEmbedder.create_from_options(opts(FP32_NAME)) as fp32, \
            ImageEmbedder.create_from_options(opts(INT8_NAME)) as int8:
        for n, img in photos.items():
            x = np.zeros((1, enl.INPUT_SIZE, enl.INPUT_SIZE, 3), np.float32)
            pre.write(img, None, x)  # the runtime's own (MediaPipe-exact) resize
            with torch.no_grad():
                t_feat = embedder(torch.from_numpy(x)).numpy().reshape(-1)
                report["top1"][n] = int(classifier._fc(torch.from_numpy(t_feat[None])).argmax())
            feats[n] = fp32.embed(img).embeddings[0].embedding
            report["cos_fp32_vs_torch"][n] = cosine_similarity(feats[n], t_feat)
            report["cos_int8_vs_fp32"][n] = cosine_similarity(int8.embed(img).embeddings[0].embedding, feats[n])
        mirror = fp32.embed(np.ascontiguousarray(photos["chelsea"][:, ::-1])).embeddings[0].embedding
    report["top1_ok"] = report["top1"]["chelsea"] == 285 and report["top1"]["coffee"] == 967
    report["cos_fp32_chelsea_vs_mirror"] = cosine_similarity(feats["chelsea"], mirror)
    names = list(photos)
    report["cos_fp32_unrelated"] = {
        f"{a}/{b}": cosine_similarity(feats[a], feats[b]) for i, a in enumerate(names) for b in names[i + 1 :]
    }
    report["classifier"] = verify_classifiers(out_dir)
    report["median_invoke_ms_2_threads"] = {n: _Runner(out_dir / n).median_invoke_ms() for n, _, _ in MODELS}
    report["files"] = {}
    for name, _, _ in MODELS:
        data = (out_dir / name).read_bytes()
        report["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **io_details(data)}
    return report


def agreement_images() -> dict[str, np.ndarray]:
    """The int8-vs-fp32 classifier set: every bundled photo in 12 views (48 images).

    Views: full, mirror, upside-down, centre 75 % and 50 % crops, the four 60 %
    corner crops, the mirrored centre 75 % crop, and the full photo turned by 90
    and 270 degrees. None of them is in the int8 calibration set.
    """
    from edge_embedder import Image
    from edge_embedder.resources import sample_images

    out = {}
    for name, path in sample_images().items():
        img = np.asarray(Image.create_from_file(path).numpy_view())
        h, w = img.shape[:2]

        def crop(frac: float, y: float, x: float, img: np.ndarray = img, h: int = h, w: int = w) -> np.ndarray:
            ch, cw = int(round(h * frac)), int(round(w * frac))
            y0, x0 = int(round((h - ch) * y)), int(round((w - cw) * x))
            return img[y0 : y0 + ch, x0 : x0 + cw]

        c75 = crop(0.75, 0.5, 0.5)
        views = {"full": img, "mirror": img[:, ::-1], "flip": img[::-1], "centre75": c75, "centre50": crop(0.5, .5, .5),
                 "tl60": crop(0.6, 0, 0), "tr60": crop(0.6, 0, 1), "bl60": crop(0.6, 1, 0), "br60": crop(0.6, 1, 1),
                 "centre75_mirror": c75[:, ::-1], "rot90": np.rot90(img, -1), "rot270": np.rot90(img, 1)}
        for view, arr in views.items():
            out[f"{name}_{view}"] = np.ascontiguousarray(arr)
    return out


def classifier_agreement(fp32_path: str | Path, int8_path: str | Path, num_threads: int = 2) -> dict:
    """int8 vs fp32 classifier over :func:`agreement_images`: top-1 agreement and score differences."""
    from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions

    def opts(p: str | Path) -> ImageClassifierOptions:
        return ImageClassifierOptions(base_options=BaseOptions(model_asset_path=p, num_threads=num_threads))

    def dense(res) -> np.ndarray:
        cats = res.classifications[0].categories
        v = np.zeros(len(cats), np.float64)
        for c in cats:
            v[c.index] = c.score
        return v

    rows = []
    with ImageClassifier.create_from_options(opts(fp32_path)) as fp32, \
            ImageClassifier.create_from_options(opts(int8_path)) as int8:
        for name, img in agreement_images().items():
            a, b = dense(fp32.classify(img)), dense(int8.classify(img))
            rows.append({"image": name, "fp32_top1": int(a.argmax()), "int8_top1": int(b.argmax()),
                         "fp32_top1_score": float(a.max()), "int8_score_of_fp32_top1": float(b[a.argmax()]),
                         "mean_abs_diff": float(np.abs(a - b).mean()), "max_abs_diff": float(np.abs(a - b).max()),
                         "top5_same": list(np.argsort(-a, kind="stable")[:5]) == list(np.argsort(-b, kind="stable")[:5])})
    return {
        "images": len(rows),
        "top1_agreement": float(np.mean([r["fp32_top1"] == r["int8_top1"] for r in rows])),
        "top5_same_order": float(np.mean([r["top5_same"] for r in rows])),
        "mean_abs_score_diff": float(np.mean([r["mean_abs_diff"] for r in rows])),
        "max_abs_score_diff": float(np.max([r["max_abs_diff"] for r in rows])),
        "mean_abs_top1_score_diff": float(np.mean([abs(r["fp32_top1_score"] - r["int8_score_of_fp32_top1"])
                                                   for r in rows])),
        "disagreements": [r for r in rows if r["fp32_top1"] != r["int8_top1"]],
        "rows": rows,
    }


def verify_classifiers(out_dir: str | Path = "models") -> dict:
    """Top-5 of the shipped classifiers on the bundled photos, and their int8-vs-fp32 agreement."""
    from edge_embedder import ImageClassifier
    from edge_embedder.resources import sample_images

    out_dir = Path(out_dir)
    report: dict = {"top5": {}}
    for name in (CLASSIFIER_FP32_NAME, CLASSIFIER_INT8_NAME):
        with ImageClassifier.create_from_model_path(out_dir / name) as clf:
            report["top5"][name] = {
                photo_name: [(c.index, c.category_name, round(c.score, 4))
                             for c in clf.classify(path).classifications[0].categories[:5]]
                for photo_name, path in sample_images().items()}
    report["int8_vs_fp32"] = classifier_agreement(out_dir / CLASSIFIER_FP32_NAME, out_dir / CLASSIFIER_INT8_NAME)
    report["int8_vs_fp32"].pop("rows")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="models", help="output directory (default: models/)")
    ap.add_argument("--reports", default=None, help="folder for the parity reports (default: a temporary folder)")
    ap.add_argument("--verify", action="store_true", help="print verification numbers as JSON")
    ap.add_argument("--verify-only", action="store_true", help="verify existing files, no rebuild")
    args = ap.parse_args(argv)
    if not args.verify_only:
        build(args.out, args.reports)
    if args.verify or args.verify_only:
        print(json.dumps(verify(args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
