"""What each task contributes to the one conversion pipeline (``.pipeline.convert``).

The pipeline's stages are the same for every task: resolve the config, check
the output path, load calibration inputs, load the checkpoint once, compute
the reference, export and quantize, write the metadata, check the file with
the runtime's contract, compare it with the reference, keep it. A
:class:`ConversionTask` fills in the parts that depend on the task's inputs
and outputs; an architecture config names its task (``ArchConfig.task``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np

from .registry import ArchConfig, LoadedModel

__all__ = ["ConversionTask", "register_task", "get_task", "known_tasks", "SOURCE_KEY", "source_metadata",
           "contrastive_metadata", "cosine", "compare_vectors", "cosine_report"]

#: Custom metadata entry with the conversion's provenance (UTF-8 JSON).
SOURCE_KEY = "edge_embedder.source"

_TASKS: dict[str, "ConversionTask"] = {}


class ConversionTask:
    """The task-specific part of a conversion. Subclass, set ``name``, :func:`register_task` it."""

    name: ClassVar[str]
    #: What one parity input is called in reports ("image", "text", ...).
    input_kind: ClassVar[str] = "input"
    #: Whether ``--calibration-images DIR`` can replace the task's own calibration set.
    calibration_folder: ClassVar[bool] = True
    #: The runtime task ``inspect_model`` must read the written file as (its ``contract.task``).
    runtime_task: ClassVar[str]

    def check_options(self, labels_locale: Optional[str]) -> None:
        """Raise ``ConversionOptionsError`` for task options that do not apply (cheap, before loading)."""
        from .errors import ConversionOptionsError

        if labels_locale is not None:
            raise ConversionOptionsError(f"--labels-locale applies to image-classification, not {self.name}")

    def floor(self, cfg: ArchConfig, quant: str, min_cosine: Optional[float], min_top1: Optional[float]) -> Any:
        """What the parity report must reach (passed to :meth:`parity`); the default: a minimum cosine."""
        from .errors import ConversionOptionsError

        if min_top1 is not None:
            raise ConversionOptionsError(f"--min-top1 is the image-classification floor; for {self.name} use --min-cosine")
        return cfg.floor(quant) if min_cosine is None else float(min_cosine)

    def calibration(self, lm: LoadedModel, source: Optional[str]) -> list[Any]:
        """Inputs for static int8 calibration, as the exported model takes them."""
        raise NotImplementedError

    def parity_inputs(self, lm: Any = None) -> dict[str, Any]:
        """The named inputs of the parity report (the reference is computed on the same); ``lm``: the loaded model."""
        raise NotImplementedError

    def export(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, calib: Optional[list[Any]],
               progress: Callable[[str], None]) -> bytes:
        """The exported, quantized file's bytes, without metadata."""
        raise NotImplementedError

    def metadata(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, license: Optional[str],
                 labels_locale: Optional[str] = None) -> Any:
        """The ``edge_embedder.metadata.ModelMetadata`` to write into the file."""
        raise NotImplementedError

    def check(self, path: Path) -> None:
        """Raise ``ExportError`` when the written file breaks the runtime's contract for this task."""
        from edge_embedder import inspect_model

        from .errors import ExportError

        verdict = inspect_model(str(path))["contract"]
        if not verdict["ok"]:
            raise ExportError(f"the exported file breaks the runtime's {self.runtime_task} contract: "
                              f"{verdict.get('error')}")
        if verdict.get("task") != self.runtime_task:
            raise ExportError(f"the exported file is read as {verdict.get('task')}, not as {self.runtime_task}")

    def parity(self, path: Path, inputs: dict[str, Any], reference: Any, floor: Any, lm: LoadedModel) -> dict[str, Any]:
        """Run ``path`` through the runtime on ``inputs``; compare with ``reference``; the report dict.

        ``floor`` is what :meth:`floor` returned; ``lm`` the loaded checkpoint.

        The dict has at least ``criterion`` (what every input must reach, as text),
        ``passed`` and ``items``: one dict per input with ``name``, ``passed`` and
        ``detail`` (the measures, as text), plus the measures themselves.
        """
        raise NotImplementedError

    def format_report(self, report: dict[str, Any]) -> str:
        """The parity report as a small text table for the CLI."""
        lines = [f"parity vs {report['reference']} ({report['criterion']}):"]
        lines += [f"  {r['name']:<24} {r['detail']}  {'ok' if r['passed'] else 'FAILED'}" for r in report["items"]]
        lines.append(f"  {'PASS' if report['passed'] else 'FAIL'}")
        return "\n".join(lines)


def register_task(task: ConversionTask) -> ConversionTask:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> ConversionTask:
    from .errors import ConversionOptionsError

    try:
        return _TASKS[name]
    except KeyError:
        raise ConversionOptionsError(f"unknown task {name!r}: expected one of {', '.join(sorted(_TASKS))}") from None


def known_tasks() -> list[str]:
    return sorted(_TASKS)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The runtime's cosine similarity; NaN where it is undefined (sizes differ, zero norm)."""
    from edge_embedder.containers import cosine_similarity
    from edge_embedder.errors import EmbeddingMismatchError

    try:
        return cosine_similarity(np.asarray(a, np.float32), np.asarray(b, np.float32))
    except EmbeddingMismatchError:
        return float("nan")


def compare_vectors(vec: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(cosine, max absolute difference) of a file's vector against the reference's (inf when sizes differ)."""
    cos = cosine(vec, ref)
    mad = float(np.max(np.abs(vec - ref))) if vec.shape == ref.shape else float("inf")
    return cos, mad


def cosine_report(rows: list[dict[str, Any]], floor: float, criterion: str, kind: str) -> dict[str, Any]:
    """The report of a vector task's parity rows (each with ``cosine``, ``max_abs_diff``, ``passed``).

    ``kind`` names the per-input list as well (``"images"``, ``"texts"``), next to the generic ``items``.
    """
    cosines = [r["cosine"] for r in rows]
    return {
        "floor": floor,
        "criterion": criterion,
        "items": rows,
        kind: rows,
        "min_cosine": float(np.nanmin(cosines)) if np.isfinite(cosines).any() else float("nan"),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "passed": all(r["passed"] for r in rows),
    }


def converter_version() -> str:
    from edge_embedder import __version__

    return __version__


def source_metadata(cfg: ArchConfig, lm: Any, fmt: str, quant: str) -> tuple[str, bytes]:
    """The ``edge_embedder.source`` custom metadata entry: provenance of the conversion."""
    source = {
        **{k: v for k, v in lm.source.items() if v is not None},
        "architecture": cfg.name,
        "task": cfg.task,
        "format": fmt,
        "quantization": quant,
        "converter": f"edge_embedder {converter_version()}",
    }
    try:
        import torch

        source["torch"] = torch.__version__
        if cfg.requires_modules and "transformers" in cfg.requires_modules:
            import transformers

            source["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return SOURCE_KEY, json.dumps(source, sort_keys=True).encode("utf-8")


def contrastive_metadata(lm: Any) -> list[tuple[str, bytes]]:
    """The embedding-space id, logit-scale and logit-bias entries of a contrastive model's tower (none when absent)."""
    from edge_embedder.metadata import EMBEDDING_SPACE_KEY, LOGIT_BIAS_KEY, LOGIT_SCALE_KEY

    out = []
    if getattr(lm, "embedding_space", None):
        out.append((EMBEDDING_SPACE_KEY, str(lm.embedding_space).encode("utf-8")))
    if getattr(lm, "logit_scale", None) is not None:
        out.append((LOGIT_SCALE_KEY, json.dumps(float(lm.logit_scale)).encode("utf-8")))
    if getattr(lm, "logit_bias", None) is not None:
        out.append((LOGIT_BIAS_KEY, json.dumps(float(lm.logit_bias)).encode("utf-8")))
    return out


def compact(values: Sequence[float]) -> tuple[float, ...]:
    """One value when every channel has the same one (what MediaPipe's metadata readers expect)."""
    return (float(values[0]),) if len(set(values)) == 1 else tuple(float(v) for v in values)
