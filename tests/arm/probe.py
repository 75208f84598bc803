"""What the aarch64 check computes, the same way on x86 and under emulation: ``python probe.py WORKLOAD OUT.json``.

It runs in a virtual environment where the package was installed the way a
user installs it (``tests/arm/check.py`` makes them), from a folder outside
any checkout, and uses only the public API: the shipped embedders and
classifiers on the sample photos, the models exported on x86 by the project's
converters (tiny ViT, the tiny CLIP pair, EfficientNet-Lite0 in ONNX), zero-shot
scores, and searches over index files built on x86. Every item is computed on
its own: an item that raises is recorded with its error type and message, and
the others still run. Threads are pinned to one so that both machines run the
same kernels the same way.

No torch, no network. Timings are not recorded: under emulation they say
nothing about a board.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

#: Captions for the text tower: ordinary, one word, punctuation, unicode, empty, and one longer than 77 tokens.
CAPTIONS = ["a photo of a cat", "coffee", "a rocket, launching!", "caf\u00e9 \u732b \U0001F680", "",
            "a photo of a cat " * 30]
LABELS = ["cat", "dog", "coffee", "rocket", "astronaut", "car"]
TEXT_QUERIES = ["a photo of a cat", "a cup of coffee", "a rocket"]
SEARCH_K = 5

RESULTS: dict[str, Any] = {}


def item(key: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Record what ``fn`` returns under ``key``, or the error it raised."""

    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        try:
            RESULTS[key] = {"value": fn()}
        except Exception as exc:  # recorded, compared by the host: the item fails there, the rest still runs
            RESULTS[key] = {"error": type(exc).__name__, "message": str(exc)[:500],
                            "traceback": traceback.format_exc(limit=4)[-1500:]}
        return fn

    return wrap


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("edge-embedder", "numpy", "opencv-python-headless", "pillow", "ai-edge-litert", "tflite-runtime",
                 "onnxruntime", "tokenizers", "usearch", "flatbuffers"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _hwcap() -> int | None:
    """AT_HWCAP from ``/proc/self/auxv`` (on aarch64: the CPU features the emulator or board gives programs)."""
    try:
        raw = Path("/proc/self/auxv").read_bytes()
    except OSError:
        return None
    import struct

    for i in range(0, len(raw) - 15, 16):
        key, val = struct.unpack_from("<QQ", raw, i)
        if key == 16:  # AT_HWCAP
            return int(val)
        if key == 0:
            break
    return None


def main(argv: list[str]) -> int:
    workload, out = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    import numpy as np

    import edge_embedder
    from edge_embedder import (
        BaseOptions,
        ImageClassifier,
        ImageClassifierOptions,
        ImageEmbedder,
        ImageEmbedderOptions,
        ImageProcessingOptions,
        RectF,
    )
    from edge_embedder.resources import default_classifier_path, default_model_path, sample_images
    from edge_embedder.search import EmbeddingIndex

    os.chdir(workload)  # index files store paths relative to the folder they were built in
    photos = sample_images()
    models = workload / "models"
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    env = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": _versions(),
        "edge_embedder_file": str(Path(edge_embedder.__file__).parent.parent.name),
        "hwcap": _hwcap(),
        "qemu_cpu": os.environ.get("QEMU_CPU"),
        "cpu_part": next((line.split(":")[1].strip() for line in cpuinfo.splitlines() if line.startswith("CPU part")), None),
    }

    def embedder(path: Path) -> Any:
        return ImageEmbedder.create_from_options(ImageEmbedderOptions(
            base_options=BaseOptions(model_asset_path=str(path), num_threads=1)))

    def vectors(path: Path, runs: dict[str, Any] | None = None) -> dict[str, Any]:
        with embedder(path) as e:
            out = {"runtime": e.backend.runtime, "sha256": e.model_sha256, "vectors": {}}
            for name, src in (runs or {n: (p, None) for n, p in photos.items()}).items():
                image, opts = src
                out["vectors"][name] = e.embed(image, opts).embeddings[0].embedding.astype(float).tolist()
            return out

    def top5(path: Path) -> dict[str, Any]:
        opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path), num_threads=1), max_results=5)
        with ImageClassifier.create_from_options(opts) as c:
            out = {"runtime": c.backend.runtime, "top5": {}}
            for name, p in photos.items():
                cats = c.classify(p).classifications[0].categories
                out["top5"][name] = [[int(k.index), k.category_name, float(k.score)] for k in cats]
            return out

    item("efficientnet_lite0_fp32")(lambda: vectors(default_model_path("fp32")))
    item("efficientnet_lite0_int8")(lambda: vectors(default_model_path("int8")))
    item("efficientnet_lite0_int8_roi_rotation")(lambda: vectors(default_model_path("int8"), {
        "chelsea_roi_rot90": (photos["chelsea"], ImageProcessingOptions(RectF(0.2, 0.1, 0.8, 0.9), 90)),
        "coffee_rot270": (photos["coffee"], ImageProcessingOptions(rotation_degrees=270)),
    }))
    item("classifier_fp32")(lambda: top5(default_classifier_path("fp32")))
    item("classifier_int8")(lambda: top5(default_classifier_path("int8")))
    item("efficientnet_lite0_onnx")(lambda: vectors(models / "efficientnet_lite0.onnx"))
    item("tiny_vit_fp32")(lambda: vectors(models / "tiny-vit.tflite"))
    item("tiny_vit_dynamic_int8")(lambda: vectors(models / "tiny-vit-dint8.tflite"))
    item("tiny_vit_onnx_dynamic_int8")(lambda: vectors(models / "tiny-vit-int8.onnx"))
    item("tiny_clip_image")(lambda: vectors(models / "tiny-clip-image.tflite"))

    @item("tiny_clip_text")
    def _text() -> dict[str, Any]:
        from edge_embedder import TextEmbedder, TextEmbedderOptions

        opts = TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(models / "tiny-clip-text.tflite"),
                                                            num_threads=1))
        with TextEmbedder.create_from_options(opts) as t:
            out: dict[str, Any] = {"runtime": t.backend.runtime, "vectors": {}, "ids": {}}
            for i, text in enumerate(CAPTIONS):
                out["vectors"][f"caption{i}"] = t.embed(text).embeddings[0].embedding.astype(float).tolist()
                out["ids"][f"caption{i}"] = t.tokenizer.encode(text).ids.tolist()
            return out

    @item("tiny_clip_zero_shot")
    def _zero_shot() -> dict[str, Any]:
        from edge_embedder import ZeroShotImageClassifier, ZeroShotImageClassifierOptions
        from edge_embedder.zero_shot import SIMPLE_IMAGENET_TEMPLATES

        opts = ZeroShotImageClassifierOptions(
            image_base_options=BaseOptions(model_asset_path=str(models / "tiny-clip-image.tflite"), num_threads=1),
            text_base_options=BaseOptions(model_asset_path=str(models / "tiny-clip-text.tflite"), num_threads=1))
        with ZeroShotImageClassifier.create_from_options(opts) as zs:
            out = {}
            for name, p in photos.items():
                out[name] = [[r["label"], float(r["score"])] for r in zs.classify(p, LABELS)]
            out["rocket_templates"] = [[r["label"], float(r["score"])] for r in
                                       zs.classify(photos["rocket"], LABELS, templates=SIMPLE_IMAGENET_TEMPLATES)]
            return {"ranked": out}

    def hits(results: Any) -> list[list[Any]]:
        return [[h.path, float(h.score)] for h in results]

    @item("search_float32")
    def _search_float32() -> dict[str, Any]:
        index = EmbeddingIndex.load(workload / "indexes" / "photos.npz")
        with embedder(default_model_path("fp32")) as e:
            out = {"image": {}, "repr": repr(index)}
            for name, p in photos.items():
                out["image"][name] = hits(index.search_image(e, p, k=SEARCH_K))
            return {"hits": out["image"], "repr": out["repr"]}

    @item("search_int8_hnsw")
    def _search_int8() -> dict[str, Any]:
        index = EmbeddingIndex.load(workload / "indexes" / "photos-int8.npz", approximate="always")
        queries = np.load(workload / "indexes" / "queries.npy")  # x86's fp32 vectors: only the search differs
        found = {f"q{i}": hits(index.search(q, k=SEARCH_K)) for i, q in enumerate(queries)}
        return {"hits": found, "repr": repr(index)}

    @item("search_clip_text")
    def _search_text() -> dict[str, Any]:
        from edge_embedder import TextEmbedder

        index = EmbeddingIndex.load(workload / "indexes" / "clip.npz")
        with TextEmbedder.create_from_model_path(models / "tiny-clip-text.tflite") as t:
            return {"hits": {q: hits(index.search_text(t, q, k=SEARCH_K)) for q in TEXT_QUERIES}, "repr": repr(index)}

    out.write_text(json.dumps({"env": env, "results": RESULTS}))
    failed = [k for k, v in RESULTS.items() if "error" in v]
    print(f"probe: {len(RESULTS) - len(failed)} items computed, {len(failed)} raised: {', '.join(failed) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
