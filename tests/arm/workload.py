"""The x86 half of the aarch64 check's inputs: models exported by the project's converters, and index files.

Runs in the development environment (the ``convert`` extra: torch,
transformers, litert-torch), with the commands the README gives, from the
folder the files go to:

* a tiny random ViT (the README's "Converting" step) to ``.tflite`` float32 and
  dynamic-range int8, and to ``.onnx`` dynamic-range int8;
* the tiny random CLIP pair (the README's "Text towers" step, the commands of
  ``tests/text_models.py``): image and text towers in ``.tflite``;
* the shipped EfficientNet-Lite0 exported to ``.onnx`` (the README's ONNX step);
* a folder of photos (the sample photos, flipped, cropped, turned, gray, halved)
  and three index files built from it with ``edge-embedder index`` (float32
  exact; int8 with its HNSW graph; the CLIP image tower's), plus the float32
  query vectors for the int8 index: these files are copied to the ARM side as
  a user copies an index between machines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageOps

TINY_VIT = """
from transformers import ViTConfig, ViTImageProcessor, ViTModel
ViTModel(ViTConfig(image_size=64, patch_size=16, hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=128)).save_pretrained('tiny-vit')
ViTImageProcessor(size={'height': 64, 'width': 64}).save_pretrained('tiny-vit')
"""

CLI = [sys.executable, "-m", "edge_embedder.cli"]

#: (arguments of ``edge-embedder``), run in ``models/``; the README's commands.
CONVERSIONS = [
    ["convert", "--arch", "vit", "--model", "tiny-vit", "-o", "tiny-vit.tflite"],
    ["convert", "--arch", "vit", "--model", "tiny-vit", "--quantize", "dynamic-int8", "-o", "tiny-vit-dint8.tflite"],
    ["convert", "--arch", "vit", "--model", "tiny-vit", "--format", "onnx", "--quantize", "dynamic-int8",
     "-o", "tiny-vit-int8.onnx"],
    ["convert", "--arch", "clip", "--tower", "image", "--model", "tiny-clip", "-o", "tiny-clip-image.tflite"],
    ["convert", "--arch", "clip", "--tower", "text", "--model", "tiny-clip", "-o", "tiny-clip-text.tflite"],
    ["convert", "--arch", "efficientnet-lite0", "--format", "onnx", "-o", "efficientnet_lite0.onnx"],
]

VARIANTS = {
    "": lambda im: im,
    "_flip": ImageOps.mirror,
    "_crop": lambda im: im.crop((im.width // 5, im.height // 5, im.width * 4 // 5, im.height * 4 // 5)),
    "_rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "_gray": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "_half": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
}


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}   (in {cwd.name}/)\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"workload step failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def build(out: Path, log: Path) -> Path:
    """Write the workload folder ``out`` (models/, photos/, indexes/); returns it."""
    import numpy as np

    from edge_embedder import ImageEmbedder
    from edge_embedder.resources import default_model_path, sample_images

    models, photos, indexes = out / "models", out / "photos", out / "indexes"
    for d in (models, photos, indexes):
        d.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-c", TINY_VIT], models, log)
    _run([sys.executable, "-m", "edge_embedder.convert.tiny_clip", "tiny-clip"], models, log)
    for args in CONVERSIONS:
        _run(CLI + args, models, log)

    for name, path in sample_images().items():
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            for suffix, fn in VARIANTS.items():
                fn(rgb).save(photos / f"{name}{suffix}.png")
    fp32 = str(default_model_path("fp32"))
    _run(CLI + ["index", "photos", "-o", "indexes/photos.npz", "--model", fp32, "--approximate", "never",
                "--no-progress"], out, log)
    _run(CLI + ["index", "photos", "-o", "indexes/photos-int8.npz", "--model", fp32, "--dtype", "int8",
                "--approximate", "always", "--no-progress"], out, log)
    _run(CLI + ["index", "photos", "-o", "indexes/clip.npz", "--model", "models/tiny-clip-image.tflite",
                "--approximate", "never", "--no-progress"], out, log)
    with ImageEmbedder.create_from_model_path(fp32) as e:
        queries = [e.embed(p).embeddings[0].embedding for p in sorted(photos.glob("*.png"))]
    np.save(indexes / "queries.npy", np.stack(queries).astype(np.float32))
    for checkpoint in ("tiny-vit", "tiny-clip"):  # only the exported files travel
        subprocess.run(["rm", "-rf", str(models / checkpoint)], check=True)
    return out
