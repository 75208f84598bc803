"""The conversion pipeline: checkpoint -> .tflite / .onnx with metadata, quantization and a parity report.

    from edge_embedder.convert import convert
    result = convert("vit", "google/vit-base-patch16-224", fmt="tflite", quantize="none",
                     output="vit.tflite")
    print(result.report["min_cosine"])

Stages (each announced through ``progress``); the task's part (a
:class:`.tasks.ConversionTask`, e.g. ``.image_embedding``) is in brackets:

1. resolve the task and the architecture config (``UnknownArchitectureError``
   lists the known ones), check that the output path can be written
   (``OutputPathError``): cheap failures first;
2. load the checkpoint once (``CheckpointError``); export and reference use this
   instance; [load the calibration inputs for int8 (``CalibrationError``)];
3. [export and quantize] (``ExportError`` for exporter failures, one line);
4. [build the metadata]: name, description, version, licence, source
   checkpoint, the task's tensors, provenance under ``edge_embedder.source``;
   TFLite metadata, or ONNX ``metadata_props``; then the checksum of the whole
   file (``edge_embedder.checksum``), which the runtime verifies at load;
5. write to a hidden temporary file beside the output, [check it with the
   runtime's contract] (``ExportError``);
6. parity: [the temporary file through the runtime against the reference
   route, per input]; the report is printed by the CLI and saved as
   ``OUTPUT.parity.json``; any input below the recipe's floor raises
   ``ParityError`` listing every failing input, and the model file is not kept;
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
from typing import Any, Callable, Optional

from edge_embedder.errors import first_line
from edge_embedder.files import discard, publish

from . import image_classification, image_embedding, text_embedding  # noqa: F401  (register the tasks)
from .architectures import get_config
from .errors import ConversionError, ConversionOptionsError, ExportError, OutputPathError, ParityError
from .registry import FORMATS, QUANTIZATIONS, ArchConfig, LoadedModel
from .tasks import SOURCE_KEY, get_task

__all__ = ["convert", "ConversionResult", "SOURCE_KEY", "resolve_quantization", "format_report"]


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
    if not parent.is_dir():
        raise OutputPathError(f"{output}: the folder {parent} does not exist (create it first)")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None


def _write_temp(output: Path, data: bytes) -> Path:
    from edge_embedder.files import write_beside

    try:
        return write_beside(output, data)
    except OSError as exc:
        raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None


def _write_json_atomic(path: Path, obj: Any) -> None:
    from edge_embedder.files import atomic_write

    try:
        atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write the parity report ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- #
# The pipeline
# --------------------------------------------------------------------------- #


def convert(
    arch: str,
    model: Optional[str],
    *,
    output: str | os.PathLike,
    task: str = "image-embedding",
    fmt: Optional[str] = None,
    quantize: str = "none",
    calibration_images: Optional[str | os.PathLike] = None,
    license: Optional[str] = None,
    min_cosine: Optional[float] = None,
    min_top1: Optional[float] = None,
    labels_locale: Optional[str] = None,
    progress: Callable[[str], None] = _stderr,
    loaded: Optional[LoadedModel] = None,
    reference_cache: Optional[dict] = None,
    report_path: Optional[str | os.PathLike] = None,
    embedding_space: Optional[str] = None,
) -> ConversionResult:
    """Convert ``model`` (hub id or ``save_pretrained`` folder) of architecture ``arch`` for ``task``.

    Args:
      arch: a registered architecture (``known_architectures(task)``).
      model: hub id or local folder (None for architectures that bring their weights).
      output: the model file to write; ``OUTPUT.parity.json`` is written beside it.
      task: what the file does (``known_tasks()``): ``image-embedding`` (default) or
        ``image-classification`` (the architecture's classification head, labels in the file)
        or ``text-embedding`` (a CLIP or SigLIP text tower; ``--tower text`` on the command line).
      fmt: ``"tflite"`` or ``"onnx"``; default from the output suffix (``.onnx`` -> onnx).
      quantize: ``none``, ``fp16``, ``dynamic-int8``, ``int8`` or ``auto`` (the
        architecture's measured default).
      calibration_images: folder of calibration inputs for ``int8`` (default: the
        task's own set, disjoint from the parity inputs).
      license: licence text for the metadata (default: the local model card's, or "unspecified").
      min_cosine: image-embedding: override the recipe's parity floor (minimum cosine).
      min_top1: image-classification: override the minimum top-1 agreement of a quantized file.
      labels_locale: image-classification: the locale of the label file (default ``"en"``).
      loaded, reference_cache: reuse a loaded checkpoint / reference outputs across
        conversions (benchmarks, tests).
      report_path: where the parity report goes (default ``OUTPUT.parity.json``).
      embedding_space: the embedding-space id to write instead of the checkpoint's own
        (for towers of one model saved as separate checkpoints).

    Returns:
      ConversionResult(path, report_path, report, size_bytes, warnings).

    Raises:
      UnknownArchitectureError, ConversionOptionsError, CheckpointError, CalibrationError,
      OutputPathError, ExportError, ParityError (all ``ConversionError``).
    """
    t_start = time.perf_counter()
    output = Path(output)
    hooks, cfg, quant, fmt, floor = _checked_options(arch, task, quantize, output, fmt, model, loaded,
                                                     calibration_images, labels_locale, min_cosine, min_top1,
                                                     embedding_space)
    lm = _load_checkpoint(cfg, model, loaded, embedding_space, progress)
    calib = hooks.calibration(lm, str(calibration_images) if calibration_images else None) if quant == "int8" else None
    inputs = hooks.parity_inputs(lm)
    cache = reference_cache if reference_cache is not None else {}
    if "reference" not in cache:
        progress(f"computing reference outputs ({lm.source.get('reference', 'source model')}) on "
                 f"{len(inputs)} {hooks.input_kind}s ...")
        cache["reference"] = lm.reference(list(inputs.values()))

    try:
        data = hooks.export(cfg, lm, fmt, quant, calib, progress)
    except ConversionError:
        raise
    except Exception as exc:  # exporter / quantizer internals: one line, typed
        raise ExportError(f"{fmt} export ({quant}) failed: {type(exc).__name__}: {first_line(exc)}"[:500]) from exc
    data = _with_metadata(data, fmt, hooks.metadata(cfg, lm, fmt, quant, license, labels_locale))

    tmp = _write_temp(output, data)
    try:
        hooks.check(tmp)
        progress(f"parity: {output.name} through the edge_embedder runtime vs {lm.source.get('reference')} ...")
        report = {
            "model": str(output),
            "architecture": cfg.name,
            "task": cfg.task,
            "checkpoint": lm.source.get("checkpoint"),
            "format": fmt,
            "quantization": quant,
            "reference": f"{lm.source.get('reference')} (float32, transformers {_tf_version()})",
            "size_bytes": len(data),
            "embedding_space": getattr(lm, "embedding_space", None),
            "logit_scale": getattr(lm, "logit_scale", None),
            "logit_bias": getattr(lm, "logit_bias", None),
            **hooks.parity(tmp, inputs, cache["reference"], floor, lm),
            "convert_seconds": round(time.perf_counter() - t_start, 2),
            "platform": platform.platform(),
        }
        report_file = Path(report_path) if report_path else output.with_name(output.name + ".parity.json")
        _write_json_atomic(report_file, report)
        if not report["passed"]:
            fails = [(r["name"], r["detail"]) for r in report["items"] if not r["passed"]]
            raise ParityError(f"{output} ({cfg.name}, {fmt}, {quant})", report["criterion"], fails, report,
                              kind=hooks.input_kind)
        try:
            publish(tmp, output)
        except OSError as exc:
            raise OutputPathError(f"{output}: cannot write the output file ({exc.strerror or exc})") from None
    except BaseException:
        discard(tmp)
        raise
    return ConversionResult(output, report_file, report, len(data), list(lm.warnings))


def _checked_options(arch: str, task: str, quantize: str, output: Path, fmt: Optional[str], model: Optional[str],
                     loaded: Optional[LoadedModel], calibration_images: Optional[str | os.PathLike],
                     labels_locale: Optional[str], min_cosine: Optional[float], min_top1: Optional[float],
                     embedding_space: Optional[str]) -> tuple[Any, Any, str, str, Any]:
    """Every option of :func:`convert` checked before any work: (task hooks, recipe, quantization, format, floor)."""
    hooks = get_task(task)
    cfg = get_config(arch, task)
    quant = resolve_quantization(cfg, quantize)
    if fmt is None:
        fmt = "onnx" if output.suffix.lower() == ".onnx" else "tflite"
    if fmt not in FORMATS:
        raise ConversionOptionsError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if cfg.requires_checkpoint and not model and loaded is None:
        raise ConversionOptionsError(f"--arch {cfg.name} needs --model HUB_ID_OR_LOCAL_DIR")
    if calibration_images and quant != "int8":
        raise ConversionOptionsError(f"--calibration-images is only used with --quantize int8, got --quantize {quant}")
    hooks.check_options(labels_locale)
    floor = hooks.floor(cfg, quant, min_cosine, min_top1)
    if calibration_images and not hooks.calibration_folder:
        raise ConversionOptionsError(f"--calibration-images is for image towers; {task} calibrates on its own "
                                     f"{hooks.input_kind}s")
    if embedding_space is not None and (not isinstance(embedding_space, str) or not embedding_space.strip()):
        raise ConversionOptionsError(f"--embedding-space: expected a non-empty id, got {embedding_space!r}")
    _check_output(output)
    return hooks, cfg, quant, fmt, floor


def _load_checkpoint(cfg: Any, model: Optional[str], loaded: Optional[LoadedModel], embedding_space: Optional[str],
                     progress: Callable[[str], None]) -> LoadedModel:
    """The checkpoint (``loaded`` when given), under ``embedding_space`` when given; its warnings reported."""
    if loaded is None:
        progress(f"loading {cfg.name} checkpoint {model or '(bundled weights)'} ...")
        loaded = cfg.load(model)
    lm = loaded
    if embedding_space is not None:
        import dataclasses

        lm = dataclasses.replace(lm, embedding_space=embedding_space,
                                 warnings=[w for w in lm.warnings if "--embedding-space" not in w])
    for w in lm.warnings:
        progress(f"warning: {w}")
    return lm


def _with_metadata(data: bytes, fmt: str, md: Any) -> bytes:
    """``md`` written into the exported file, with the checksum of the whole file (graph, weights, metadata).

    The runtime verifies the checksum every time it opens the file (``edge_embedder.metadata.checksum``).
    """
    import dataclasses

    from edge_embedder.metadata import (
        CHECKSUM_KEY,
        CHECKSUM_PLACEHOLDER,
        populate_tflite_metadata,
        seal_checksum,
        to_onnx_props,
    )

    md = dataclasses.replace(md, custom_metadata=[*[(k, v) for k, v in md.custom_metadata if k != CHECKSUM_KEY],
                                                  (CHECKSUM_KEY, CHECKSUM_PLACEHOLDER)])
    if fmt == "tflite":
        return populate_tflite_metadata(data, md)  # sealed by the writer
    from .onnx_export import set_metadata_props

    return seal_checksum(set_metadata_props(data, to_onnx_props(md, checksum=True)))


def _tf_version() -> str:
    try:
        import transformers

        return transformers.__version__
    except ImportError:  # pragma: no cover
        return "?"


def format_report(report: dict[str, Any]) -> str:
    """The parity report as a small text table (the task's own layout)."""
    return get_task(report.get("task", "image-embedding")).format_report(report)
