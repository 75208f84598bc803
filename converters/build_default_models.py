"""Build the shipped default models with the same :func:`convert` as user models.

    python -m edge_embedder.convert.build_default_models [--out models/] [--verify]

Writes, through ``convert("efficientnet-lite0", None, ...)`` (the converters'
one pipeline: metadata builder, calibration, contract check and parity report):

* ``efficientnet_lite0_fp32.tflite``: float32 NHWC input ``[1, 224, 224, 3]``
  normalized ``(x - 127) / 128``; float32 output ``[1, 1280]``.
* ``efficientnet_lite0_int8.tflite``: full-integer int8, uint8 input
  ``[1, 224, 224, 3]`` = raw RGB pixels (the input quantization, scale 1/128 and
  zero point 127, *is* the normalization), float32 output ``[1, 1280]``;
  calibrated on the converters' default set (30 views of scikit-image photos
  that are not parity photos: ``edge_embedder.convert.photos``).

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

#: (file name, --quantize) of every shipped model, in build order.
MODELS = (
    ("efficientnet_lite0_fp32.tflite", "none"),
    ("efficientnet_lite0_int8.tflite", "int8"),
)
FP32_NAME, INT8_NAME = MODELS[0][0], MODELS[1][0]


def build(out_dir: str | Path = "models", reports: str | Path | None = None) -> dict[str, Path]:
    """Convert every shipped model into ``out_dir``; return their paths."""
    from .architectures import get_config
    from .pipeline import convert

    out_dir = Path(out_dir)
    report_dir = Path(reports) if reports else Path(tempfile.mkdtemp(prefix="edge_embedder_default_models_"))
    loaded = get_config("efficientnet-lite0").load(None)
    cache: dict = {}
    paths = {}
    for name, quant in MODELS:
        result = convert("efficientnet-lite0", None, output=out_dir / name, quantize=quant, loaded=loaded,
                         reference_cache=cache, report_path=report_dir / f"{name}.parity.json")
        data = result.path.read_bytes()
        paths[name] = result.path
        print(f"wrote {result.path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}); "
              f"min parity cosine {result.report['min_cosine']:.6f}; report {result.report_path}", file=sys.stderr)
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
    report["median_invoke_ms_2_threads"] = {n: _Runner(out_dir / n).median_invoke_ms() for n, _ in MODELS}
    report["files"] = {}
    for name, _ in MODELS:
        data = (out_dir / name).read_bytes()
        report["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **io_details(data)}
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
