"""The conversion pipeline: checkpoint -> .tflite / .onnx with metadata, quantization and a parity report.

    from edge_embedder.convert import convert
    result = convert("vit", "google/vit-base-patch16-224", fmt="tflite", quantize="none",
                     output="vit.tflite")
    print(result.report["min_cosine"])

Stages (each announced through ``progress``):

1. resolve the architecture config (``UnknownArchitectureError`` lists the known ones),
   check that the output path can be written (``OutputPathError``) and load
   the calibration images when needed (``CalibrationError``): cheap failures first;
2. load the checkpoint once (``CheckpointError``); export and reference use this instance;
3. export float32 with an NHWC input ``[1, H, W, 3]`` (TFLite: litert-torch;
   ONNX: torch.onnx dynamo, dynamic batch), then quantize:
   ``fp16`` float16 weights; ``dynamic-int8`` int8 weights, float activations;
   ``int8`` full-integer with a **uint8 input of raw pixels** (normalization
   moved inside the model, input scale 1 / zero point 0), calibrated on real photos;
4. write the metadata (name, description, version, licence, source
   checkpoint, RGB, normalization in pixel units, head name, the source
   processor's recipe under ``edge_embedder.recipe``, provenance under
   ``edge_embedder.source``); ONNX files carry it in ``metadata_props``;
5. write to a hidden temporary file beside the output, check it loads and
   passes the runtime's contract (``ExportError``);
6. parity: the temporary file through ``edge_embedder.ImageEmbedder`` (its own
   preprocessing) against the transformers route, per photo cosine and max
   abs difference; the report is printed by the CLI and saved as
   ``OUTPUT.parity.json``; any photo below the recipe's floor raises
   ``ParityError`` listing every failing photo and the model file is not kept;
7. rename the temporary file to the output path.

A failure at any stage leaves no model file (nor temporary file) behind.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edge_embedder.errors import first_line

from .architectures import UNKNOWN_LICENSE, get_config
from .errors import ConversionError, ConversionOptionsError, ExportError, OutputPathError, ParityError
from .registry import FORMATS, QUANTIZATIONS, ArchConfig, LoadedModel

__all__ = ["convert", "ConversionResult", "SOURCE_KEY", "parity_report", "resolve_quantization"]

SOURCE_KEY = "edge_embedder.source"
INPUT_NAME = "image"

_QUANT_TEXT = {
    "none": "float32",
    "fp16": "float16 weights, float32 compute",
    "dynamic-int8": "dynamic-range int8 (int8 weights, activations quantized at run time)",
    "int8": "full-integer int8 (uint8 input of raw RGB pixels, normalization inside the model), calibrated on real photos",
}


@dataclass
class ConversionResult:
    path: Path
    report_path: Path
    report: dict[str, Any]
    size_bytes: int
    warnings: list[str] = field(default_factory=list)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_quantization(cfg: ArchConfig, quantize: str) -> str:
    if quantize == "auto":
        return cfg.default_quantization
    if quantize not in QUANTIZATIONS:
        raise ConversionOptionsError(f"unknown quantization {quantize!r}: expected one of auto, {', '.join(QUANTIZATIONS)}")
    return quantize


# --------------------------------------------------------------------------- #
# Output path
# --------------------------------------------------------------------------- #


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise OutputPathError(f"{output}: is a directory, expected a model file path")
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None


def _write_temp(output: Path, data: bytes) -> Path:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except OSError as exc:
        raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None
    return Path(tmp)


def _write_json_atomic(path: Path, obj: Any) -> None:
    from edge_embedder.files import atomic_write

    try:
        atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write the parity report ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- #
# Wrappers: NHWC input, raw-pixel input
# --------------------------------------------------------------------------- #


def _nhwc(module: Any) -> Any:
    import torch

    class NHWCInput(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner(image.permute(0, 3, 1, 2))

    return NHWCInput(module).eval()


def _uint8_pixels(module: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
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


# --------------------------------------------------------------------------- #
# Export routes
# --------------------------------------------------------------------------- #


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


def _calibration_pixels(lm: LoadedModel, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each image through the runtime's own recipe: uint8 [1, H, W, 3] as the model will see it."""
    from edge_embedder.vision import Preprocessor

    pre = Preprocessor(lm.height, lm.width, lm.recipe, None)
    return [pre.to_uint8(np.ascontiguousarray(img))[None] for img in images]


def _export_tflite(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                   progress: Callable[[str], None]) -> bytes:
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
            raw = le.export_float32(_nhwc(lm.module), sample)
            samples = [((c.astype(np.float32) - mean) / std) for c in calib]
            input_range = le.pixel_input_range(mean, std)
            expected = (1.0 / std, int(mean))
        else:
            progress("exporting float32 with raw-pixel input, normalization inside (litert-torch) ...")
            raw = le.export_float32(le.wrap_pixel_normalization(_nhwc(lm.module), lm.mean, lm.std), sample)
            samples = [c.astype(np.float32) for c in calib]
            input_range = (0.0, 255.0)
            expected = (1.0, 0)
        progress(f"quantizing full-integer int8, calibrating on {len(calib)} images (ai-edge-quantizer) ...")
        data = le.quantize_full_int8(raw, samples, input_range=input_range, uint8_input=True)
        scale, zp = le.uint8_input_quantization(data)
        if abs(scale - expected[0]) > 1e-6 * expected[0] or zp != expected[1]:
            raise ExportError(f"uint8 input quantization is (scale {scale}, zero point {zp}), expected {expected}")
        return data
    progress("exporting float32 (litert-torch) ...")
    data = le.export_float32(_nhwc(lm.module), sample)
    if quant == "fp16":
        progress("quantizing: float16 weights (ai-edge-quantizer) ...")
        data = le.quantize_fp16_weights(data)
    elif quant == "dynamic-int8":
        progress("quantizing: dynamic-range int8 (ai-edge-quantizer) ...")
        data = le.quantize_dynamic_int8(data)
    return data


def _export_onnx(cfg: ArchConfig, lm: LoadedModel, quant: str, calib: Optional[list[np.ndarray]],
                 progress: Callable[[str], None]) -> bytes:
    import torch

    from . import onnx_export as oe

    if quant == "int8":
        progress("exporting with uint8 raw-pixel input (torch.onnx, dynamo, dynamic batch) ...")
        sample = torch.zeros(2, lm.height, lm.width, 3, dtype=torch.uint8)
        data = oe.export_onnx(_uint8_pixels(_nhwc(lm.module), lm.mean, lm.std), sample, INPUT_NAME, cfg.head_name)
        oe.check_loads(data, np.uint8, (1, lm.height, lm.width, 3))
        progress(f"quantizing static int8 QDQ (MatMul/Gemm/Conv), calibrating on {len(calib)} images (onnxruntime) ...")
        data = oe.quantize_static_int8(data, INPUT_NAME, calib)
    else:
        progress("exporting float32 (torch.onnx, dynamo, dynamic batch) ...")
        sample = torch.zeros(2, lm.height, lm.width, 3, dtype=torch.float32)
        data = oe.export_onnx(_nhwc(lm.module), sample, INPUT_NAME, cfg.head_name)
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


# --------------------------------------------------------------------------- #
# Metadata
# --------------------------------------------------------------------------- #


def _converter_version() -> str:
    try:
        from edge_embedder import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


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
    source = {
        **{k: v for k, v in lm.source.items() if v is not None},
        "architecture": cfg.name,
        "format": fmt,
        "quantization": quant,
        "converter": f"edge_embedder {_converter_version()}",
    }
    try:
        import torch
        import transformers

        source["transformers"] = transformers.__version__
        source["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
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
                    else None if uint8 else NormalizationOptions(_compact(lm.mean), _compact(lm.std))
                ),
            )
        ],
        outputs=[TensorMetadata(name=cfg.head_name, description=cfg.head_description, content="feature")],
        custom_metadata=[
            (RECIPE_KEY, lm.recipe.to_bytes()),
            (SOURCE_KEY, json.dumps(source, sort_keys=True).encode("utf-8")),
        ],
    )


def _compact(values: Sequence[float]) -> tuple[float, ...]:
    """One value when every channel has the same one (what MediaPipe's metadata readers expect)."""
    return (float(values[0]),) if len(set(values)) == 1 else tuple(float(v) for v in values)


def _with_metadata(data: bytes, fmt: str, md: Any) -> bytes:
    from edge_embedder.metadata import populate_tflite_metadata, to_onnx_props

    if fmt == "tflite":
        return populate_tflite_metadata(data, md)
    from .onnx_export import set_metadata_props

    return set_metadata_props(data, to_onnx_props(md))


# --------------------------------------------------------------------------- #
# Parity
# --------------------------------------------------------------------------- #


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    """The runtime's cosine similarity; NaN where it is undefined (sizes differ, zero norm)."""
    from edge_embedder.containers import cosine_similarity
    from edge_embedder.errors import EmbeddingMismatchError

    try:
        return cosine_similarity(np.asarray(a, np.float32), np.asarray(b, np.float32))
    except EmbeddingMismatchError:
        return float("nan")


def parity_report(model_path: str | os.PathLike, images: dict[str, np.ndarray], reference: np.ndarray,
                  floor: float, num_threads: int = 2) -> dict[str, Any]:
    """Embed ``images`` with the model file through ``ImageEmbedder``; compare with ``reference`` rows."""
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(model_path), num_threads=num_threads))
    rows = []
    with ImageEmbedder.create_from_options(opts) as emb:
        for (name, img), ref in zip(images.items(), reference):
            vec = np.asarray(emb.embed(img).embeddings[0].embedding, np.float32)
            cos = _cos(vec, ref)
            mad = float(np.max(np.abs(vec - ref))) if vec.shape == ref.shape else float("inf")
            rows.append({"image": name, "height": int(img.shape[0]), "width": int(img.shape[1]),
                         "cosine": cos, "max_abs_diff": mad,
                         "passed": bool(np.isfinite(cos) and cos >= floor)})
    cosines = [r["cosine"] for r in rows]
    return {
        "floor": floor,
        "images": rows,
        "min_cosine": float(np.nanmin(cosines)) if np.isfinite(cosines).any() else float("nan"),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "passed": all(r["passed"] for r in rows),
    }


# --------------------------------------------------------------------------- #
# The pipeline
# --------------------------------------------------------------------------- #


def convert(
    arch: str,
    model: Optional[str],
    *,
    output: str | os.PathLike,
    fmt: Optional[str] = None,
    quantize: str = "none",
    calibration_images: Optional[str | os.PathLike] = None,
    license: Optional[str] = None,
    min_cosine: Optional[float] = None,
    progress: Callable[[str], None] = _stderr,
    loaded: Optional[LoadedModel] = None,
    reference_cache: Optional[dict] = None,
    report_path: Optional[str | os.PathLike] = None,
) -> ConversionResult:
    """Convert ``model`` (hub id or ``save_pretrained`` folder) of architecture ``arch``.

    Args:
      arch: a registered architecture (``known_architectures()``).
      model: hub id or local folder (None for architectures that bring their weights).
      output: the model file to write; ``OUTPUT.parity.json`` is written beside it.
      fmt: ``"tflite"`` or ``"onnx"``; default from the output suffix (``.onnx`` -> onnx).
      quantize: ``none``, ``fp16``, ``dynamic-int8``, ``int8`` or ``auto`` (the
        architecture's measured default).
      calibration_images: folder of images for ``int8`` (default: 30 views of
        scikit-image photos that are not parity photos).
      license: licence text for the metadata (default: the local model card's, or "unspecified").
      min_cosine: override the recipe's parity floor.
      loaded, reference_cache: reuse a loaded checkpoint / reference vectors across
        conversions (benchmarks, tests).
      report_path: where the parity report goes (default ``OUTPUT.parity.json``).

    Returns:
      ConversionResult(path, report_path, report, size_bytes, warnings).

    Raises:
      UnknownArchitectureError, CheckpointError, CalibrationError, OutputPathError,
      ExportError, ParityError (all ``ConversionError``).
    """
    t_start = time.perf_counter()
    cfg = get_config(arch)
    quant = resolve_quantization(cfg, quantize)
    output = Path(output)
    if fmt is None:
        fmt = "onnx" if output.suffix.lower() == ".onnx" else "tflite"
    if fmt not in FORMATS:
        raise ConversionOptionsError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if cfg.requires_checkpoint and not model and loaded is None:
        raise ConversionOptionsError(f"--arch {cfg.name} needs --model HUB_ID_OR_LOCAL_DIR")
    _check_output(output)
    raw_calib = None
    if quant == "int8":
        from .photos import default_calibration_images, load_image_folder

        raw_calib = load_image_folder(calibration_images) if calibration_images else default_calibration_images()
    elif calibration_images:
        raise ConversionOptionsError(f"--calibration-images is only used with --quantize int8, got --quantize {quant}")

    if loaded is None:
        progress(f"loading {cfg.name} checkpoint {model or '(bundled weights)'} ...")
        loaded = cfg.load(model)
    lm = loaded
    for w in lm.warnings:
        progress(f"warning: {w}")
    calib = _calibration_pixels(lm, raw_calib) if raw_calib is not None else None

    from .photos import parity_images

    photos = parity_images()
    cache = reference_cache if reference_cache is not None else {}
    if "reference" not in cache:
        progress(f"computing reference embeddings ({lm.source.get('reference', 'source model')}) on {len(photos)} photos ...")
        cache["reference"] = lm.reference(list(photos.values()))
    reference = cache["reference"]

    try:
        data = (_export_tflite if fmt == "tflite" else _export_onnx)(cfg, lm, quant, calib, progress)
    except ConversionError:
        raise
    except Exception as exc:  # exporter / quantizer internals: one line, typed
        raise ExportError(f"{fmt} export ({quant}) failed: {type(exc).__name__}: {first_line(exc)}"[:500]) from exc
    data = _with_metadata(data, fmt, build_metadata(cfg, lm, fmt, quant, license))

    tmp = _write_temp(output, data)
    try:
        from edge_embedder import inspect_model

        verdict = inspect_model(str(tmp))["contract"]
        if not verdict["ok"]:
            raise ExportError(f"the exported file breaks the runtime contract: {verdict.get('error')}")
        floor = cfg.floor(quant) if min_cosine is None else float(min_cosine)
        progress(f"parity: {output.name} through edge_embedder.ImageEmbedder vs {lm.source.get('reference')} ...")
        report = parity_report(tmp, photos, reference, floor)
        report = {
            "model": str(output),
            "architecture": cfg.name,
            "checkpoint": lm.source.get("checkpoint"),
            "format": fmt,
            "quantization": quant,
            "reference": f"{lm.source.get('reference')} (float32, transformers {_tf_version()})",
            "size_bytes": len(data),
            **report,
            "convert_seconds": round(time.perf_counter() - t_start, 2),
            "platform": platform.platform(),
        }
        report_file = Path(report_path) if report_path else output.with_name(output.name + ".parity.json")
        _write_json_atomic(report_file, report)
        if not report["passed"]:
            fails = [(r["image"], r["cosine"], r["max_abs_diff"]) for r in report["images"] if not r["passed"]]
            raise ParityError(f"{output} ({cfg.name}, {fmt}, {quant})", report["floor"], fails, report)
        try:
            os.replace(tmp, output)
        except OSError as exc:
            raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return ConversionResult(output, report_file, report, len(data), list(lm.warnings))


def _tf_version() -> str:
    try:
        import transformers

        return transformers.__version__
    except ImportError:  # pragma: no cover
        return "?"


def format_report(report: dict[str, Any]) -> str:
    """The parity report as a small text table."""
    lines = [f"parity vs {report['reference']} (floor {report['floor']}):",
             f"  {'image':<16}{'size':>11}{'cosine':>12}{'max|diff|':>12}  ok"]
    for r in report["images"]:
        lines.append(f"  {r['image']:<16}{str(r['width']) + 'x' + str(r['height']):>11}"
                     f"{r['cosine']:>12.6f}{r['max_abs_diff']:>12.3g}  {'yes' if r['passed'] else 'NO'}")
    lines.append(f"  min cosine {report['min_cosine']:.6f}: {'PASS' if report['passed'] else 'FAIL'}")
    return "\n".join(lines)
