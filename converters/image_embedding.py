"""The ``image-embedding`` task: image in, one embedding head out.

Export: an NHWC input ``[1, H, W, 3]`` (TFLite: litert-torch; ONNX: torch.onnx
dynamo, dynamic batch). ``fp16`` float16 weights; ``dynamic-int8`` int8 weights,
float activations; ``int8`` full-integer with a **uint8 input of raw pixels**:
the normalization is folded into the input quantization when it is one
integer mean and one std (EfficientNet-Lite0), else moved inside the model
(input scale 1, zero point 0), calibrated on real photos. Metadata: RGB,
normalization in pixel units, the head name, the source processor's recipe.
Parity: the file through ``edge_embedder.ImageEmbedder`` (its own
preprocessing) against the reference route, per photo cosine and max abs
difference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .architectures import UNKNOWN_LICENSE
from .errors import ExportError
from .registry import ArchConfig, LoadedModel
from .tasks import (
    ConversionTask,
    compact,
    compare_vectors,
    contrastive_metadata,
    cosine_report,
    register_task,
    source_metadata,
)

__all__ = ["ImageEmbeddingTask", "parity_report", "foldable_normalization", "nhwc_input", "uint8_pixel_input",
           "calibration_pixels", "export_tflite", "export_onnx", "INPUT_NAME"]

INPUT_NAME = "image"

_QUANT_TEXT = {
    "none": "float32",
    "fp16": "float16 weights, float32 compute",
    "dynamic-int8": "dynamic-range int8 (int8 weights, activations quantized at run time)",
    "int8": "full-integer int8 (uint8 input of raw RGB pixels, normalization inside the model), calibrated on real photos",
}


def nhwc_input(module: Any) -> Any:
    import torch

    class NHWCInput(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner(image.permute(0, 3, 1, 2))

    return NHWCInput(module).eval()


def uint8_pixel_input(module: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """NHWC uint8 raw pixels -> cast, normalize inside -> ``module`` (ONNX int8 route)."""
    import torch

    class Uint8PixelInput(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 1, 1, 3), persistent=False)
            self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32).reshape(1, 1, 1, 3),
                                 persistent=False)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner((image.to(torch.float32) - self.mean) * self.inv_std)

    return Uint8PixelInput(module).eval()


def foldable_normalization(mean: Sequence[float], std: Sequence[float]) -> Optional[tuple[float, float]]:
    """``(mean, std)`` when one integer mean in 0..255 and one std hold for every channel, else None.

    Then ``(x - mean) / std`` is exactly a uint8 quantization (scale ``1/std``,
    zero point ``mean``), and a full-integer model can take raw pixels with
    nothing in the graph before its first layer.
    """
    if len(set(mean)) != 1 or len(set(std)) != 1:
        return None
    m, s = float(mean[0]), float(std[0])
    if not (m.is_integer() and 0 <= m <= 255 and s > 0):
        return None
    return m, s


def calibration_pixels(lm: LoadedModel, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each image through the runtime's own recipe: uint8 [1, H, W, 3] as the model will see it."""
    from edge_embedder.vision import Preprocessor

    pre = Preprocessor(lm.height, lm.width, lm.recipe, None)
    return [pre.to_uint8(np.ascontiguousarray(img))[None] for img in images]


def _export_tflite(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                   progress: Callable[[str], None], float_head: bool = False) -> bytes:
    import torch

    from . import litert_export as le

    sample = torch.zeros(1, lm.height, lm.width, 3, dtype=torch.float32)
    if quant == "int8":
        assert calib is not None  # convert() loads calibration images for int8
        fold = foldable_normalization(lm.mean, lm.std)
        if fold is not None:
            # One integer mean and one std: the uint8 input quantization *is* the normalization
            # (scale 1/std, zero point mean), so raw pixels go straight into the int8 graph.
            mean, std = fold
            progress("exporting float32, normalization folded into the uint8 input (litert-torch) ...")
            raw = le.export_float32(nhwc_input(lm.module), sample)
            samples = [((c.astype(np.float32) - mean) / std) for c in calib]
            input_range = le.pixel_input_range(mean, std)
            expected = (1.0 / std, int(mean))
        else:
            progress("exporting float32 with raw-pixel input, normalization inside (litert-torch) ...")
            raw = le.export_float32(le.wrap_pixel_normalization(nhwc_input(lm.module), lm.mean, lm.std), sample)
            samples = [c.astype(np.float32) for c in calib]
            input_range = (0.0, 255.0)
            expected = (1.0, 0)
        progress(f"quantizing full-integer int8, calibrating on {len(calib)} images (ai-edge-quantizer) ...")
        data = le.quantize_full_int8(raw, samples, input_range=input_range, uint8_input=True, float_head=float_head)
        scale, zp = le.uint8_input_quantization(data)
        if abs(scale - expected[0]) > 1e-6 * expected[0] or zp != expected[1]:
            raise ExportError(f"uint8 input quantization is (scale {scale}, zero point {zp}), expected {expected}")
        return data
    progress("exporting float32 (litert-torch) ...")
    data = le.export_float32(nhwc_input(lm.module), sample)
    if quant == "fp16":
        progress("quantizing: float16 weights (ai-edge-quantizer) ...")
        data = le.quantize_fp16_weights(data)
    elif quant == "dynamic-int8":
        progress("quantizing: dynamic-range int8 (ai-edge-quantizer) ...")
        data = le.quantize_dynamic_int8(data)
    return data


def _export_onnx(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                 progress: Callable[[str], None], float_head: bool = False) -> bytes:
    import torch

    from . import onnx_export as oe

    if quant == "int8":
        progress("exporting with uint8 raw-pixel input (torch.onnx, dynamo, dynamic batch) ...")
        sample = torch.zeros(2, lm.height, lm.width, 3, dtype=torch.uint8)
        data = oe.export_onnx(uint8_pixel_input(nhwc_input(lm.module), lm.mean, lm.std), sample, INPUT_NAME, cfg.head_name)
        oe.check_loads(data, np.uint8, (1, lm.height, lm.width, 3))
        progress(f"quantizing static int8 QDQ (MatMul/Gemm/Conv), calibrating on {len(calib)} images (onnxruntime) ...")
        data = oe.quantize_static_int8(data, INPUT_NAME, calib, exclude_head=float_head)
    else:
        progress("exporting float32 (torch.onnx, dynamo, dynamic batch) ...")
        sample = torch.zeros(2, lm.height, lm.width, 3, dtype=torch.float32)
        data = oe.export_onnx(nhwc_input(lm.module), sample, INPUT_NAME, cfg.head_name)
        oe.check_loads(data, np.float32, (1, lm.height, lm.width, 3))
        if quant == "fp16":
            progress("quantizing: float16 weights ...")
            data = oe.fp16_weights(data)
        elif quant == "dynamic-int8":
            progress("quantizing: dynamic int8 (onnxruntime) ...")
            data = oe.quantize_dynamic_int8(data)
    names = oe.check_loads(data, np.uint8 if quant == "int8" else np.float32, (2, lm.height, lm.width, 3))
    if names != [cfg.head_name]:
        raise ExportError(f"ONNX outputs are {names}, expected [{cfg.head_name!r}]")
    return data


def export_tflite(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                  progress: Callable[[str], None], float_head: bool = False) -> bytes:
    """``lm.module`` as a .tflite with NHWC input in quantization ``quant`` (the bytes, no metadata).

    ``float_head`` (classifiers, ``int8`` only): the head's last linear layer and
    activation compute in float (see ``litert_export.quantize_full_int8``).
    """
    return _export_tflite(cfg, lm, quant, calib, progress, float_head)


def export_onnx(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                progress: Callable[[str], None], float_head: bool = False) -> bytes:
    """``lm.module`` as an .onnx with NHWC input and a dynamic batch axis (``float_head``: see ``quantize_static_int8``)."""
    return _export_onnx(cfg, lm, quant, calib, progress, float_head)


def build_metadata(cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, license: Optional[str]) -> Any:
    from edge_embedder.metadata import RECIPE_KEY, ModelMetadata, NormalizationOptions, TensorMetadata

    ckpt = str(lm.source.get("checkpoint", "?"))
    short = Path(ckpt.rstrip("/")).name or ckpt
    uint8 = quant == "int8"
    fold = foldable_normalization(lm.mean, lm.std) if uint8 else None
    if fold is not None:
        in_desc = (f"RGB image {lm.height}x{lm.width}, uint8 raw pixels 0..255; the input quantization "
                   f"(scale 1/{fold[1]:g}, zero point {fold[0]:g}) is the normalization (x - {fold[0]:g}) / {fold[1]:g}")
    elif uint8:
        in_desc = (f"RGB image {lm.height}x{lm.width}, uint8 raw pixels 0..255 (scale 1, zero point 0); "
                   f"normalization (x - {list(np.round(lm.mean, 4))}) / {list(np.round(lm.std, 4))} is inside the model")
    else:
        in_desc = f"RGB image {lm.height}x{lm.width}, float32, (x - mean) / std on 0..255 pixels"
    return ModelMetadata(
        name=f"{cfg.title} image embedder ({short}, {quant if quant != 'none' else 'fp32'})",
        description=(
            f"{cfg.title} image embedder converted from {ckpt} by edge_embedder; {_QUANT_TEXT[quant]}. "
            f"Output {cfg.head_name!r}: {cfg.head_description}, {lm.embedding_dim}-d."
        ),
        version=str(lm.source.get("revision") or "1"),
        author=f"edge_embedder converters (source checkpoint: {ckpt})",
        license=license or lm.license or UNKNOWN_LICENSE,
        inputs=[
            TensorMetadata(
                name=INPUT_NAME,
                description=in_desc,
                content="image",
                color_space="RGB",
                default_size=(lm.width, lm.height),
                normalization=(
                    NormalizationOptions((fold[0],), (fold[1],)) if fold is not None
                    else None if uint8 else NormalizationOptions(compact(lm.mean), compact(lm.std))
                ),
            )
        ],
        outputs=[TensorMetadata(name=cfg.head_name, description=cfg.head_description, content="feature")],
        custom_metadata=[
            (RECIPE_KEY, lm.recipe.to_bytes()),
            *contrastive_metadata(lm),
            source_metadata(cfg, lm, fmt, quant),
        ],
    )


def parity_report(model_path: str | os.PathLike, images: dict[str, np.ndarray], reference: np.ndarray,
                  floor: float, num_threads: int = 2) -> dict[str, Any]:
    """Embed ``images`` with the model file through ``ImageEmbedder``; compare with ``reference`` rows."""
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(model_path), num_threads=num_threads))
    rows = []
    with ImageEmbedder.create_from_options(opts) as emb:
        for (name, img), ref in zip(images.items(), reference):
            vec = np.asarray(emb.embed(img).embeddings[0].embedding, np.float32)
            cos, mad = compare_vectors(vec, ref)
            rows.append({"name": name, "image": name, "height": int(img.shape[0]), "width": int(img.shape[1]),
                         "cosine": cos, "max_abs_diff": mad, "detail": f"cosine {cos:.6f}, max abs diff {mad:.3g}",
                         "passed": bool(np.isfinite(cos) and cos >= floor)})
    return cosine_report(rows, floor, f"cosine >= {floor}", "images")


class ImageInputTask(ConversionTask):
    """What the image tasks share: photos in (the parity set), calibration from a folder or the default set."""

    input_kind = "image"

    def calibration(self, lm: LoadedModel, source: Optional[str]) -> list[Any]:
        from .photos import default_calibration_images, load_image_folder

        raw = load_image_folder(source) if source else default_calibration_images()
        return calibration_pixels(lm, raw)

    def parity_inputs(self, lm: Any = None) -> dict[str, Any]:
        from .photos import parity_images

        return parity_images()


class ImageEmbeddingTask(ImageInputTask):
    name = "image-embedding"
    runtime_task = "image_embedder"

    def export(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, calib: Optional[list[Any]],
               progress: Callable[[str], None]) -> bytes:
        return (_export_tflite if fmt == "tflite" else _export_onnx)(cfg, lm, quant, calib, progress)

    def metadata(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, license: Optional[str],
                 labels_locale: Optional[str] = None) -> Any:
        return build_metadata(cfg, lm, fmt, quant, license)


    def parity(self, path: Path, inputs: dict[str, Any], reference: Any, floor: Any, lm: LoadedModel) -> dict[str, Any]:
        return parity_report(path, inputs, reference, floor)

    def format_report(self, report: dict[str, Any]) -> str:
        lines = [f"parity vs {report['reference']} (floor {report['floor']}):",
                 f"  {'image':<16}{'size':>11}{'cosine':>12}{'max|diff|':>12}  ok"]
        for r in report["images"]:
            lines.append(f"  {r['image']:<16}{str(r['width']) + 'x' + str(r['height']):>11}"
                         f"{r['cosine']:>12.6f}{r['max_abs_diff']:>12.3g}  {'yes' if r['passed'] else 'NO'}")
        lines.append(f"  min cosine {report['min_cosine']:.6f}: {'PASS' if report['passed'] else 'FAIL'}")
        return "\n".join(lines)


register_task(ImageEmbeddingTask())
