"""The ``image-classification`` task: image in, class scores with their labels out.

Export: the image-embedding task's routes (NHWC input, the same quantization
modes, uint8 raw-pixel input for ``int8``) applied to the config's classifier
module, whose graph ends with the activation transformers' pipeline applies
(softmax, or sigmoid for multi-label / single-logit models). The scores in
the file are therefore what ``pipeline("image-classification")`` reports,
and what MediaPipe's ``ImageClassifier`` reports too (it adds no activation).

Metadata: the embedder's (RGB, normalization, recipe, provenance), and on the
output ``probability``: the label file ``labels.txt`` (``TENSOR_AXIS_LABELS``,
one ``config.id2label`` name per class, locale ``labels_locale``, default
``"en"`` so that ``display_name`` is filled with MediaPipe's default options),
stats 0..1 for softmax / sigmoid scores.

Parity: the written file through ``edge_embedder.ImageClassifier`` (its own
preprocessing, every class) against the reference on the parity photos:

* float32: the reference's top 5 labels in the same order (a swap of two
  classes whose reference scores differ by less than the score tolerance is
  not a difference) and every score within ``CLASSIFIER_SCORE_TOLERANCES["none"]``;
* quantized: top-1 agreement >= the floor (``CLASSIFIER_TOP1_FLOORS``) and
  mean absolute score difference <= the tolerance, both over the photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .errors import ConversionOptionsError, ExportError
from .image_embedding import INPUT_NAME, ImageInputTask, build_metadata, export_onnx, export_tflite
from .registry import ArchConfig, LoadedModel
from .tasks import register_task

__all__ = ["ImageClassificationTask", "classification_parity_report", "LABELS_FILE", "INPUT_NAME"]

LABELS_FILE = "labels.txt"


def classification_metadata(cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, license: Optional[str],
                            labels_locale: Optional[str]) -> Any:
    from dataclasses import replace

    from edge_embedder.metadata import AssociatedFile, TensorMetadata, format_label_file

    labels = lm.labels or []
    n = len(labels)
    md = build_metadata(cfg, lm, fmt, quant, license)
    activation = lm.activation or "none"
    what = {"softmax": f"softmax probabilities over the {n} classes",
            "sigmoid": f"independent sigmoid probabilities of the {n} classes (multi-label)",
            "none": f"raw scores of the {n} classes (no activation)"}[activation]
    probabilistic = activation in ("softmax", "sigmoid")
    try:
        label_bytes = format_label_file(labels, LABELS_FILE)
    except ValueError as exc:  # MetadataError: a name that cannot be a line
        raise ExportError(f"the class names cannot be written as a label file: {exc}") from None
    out = TensorMetadata(
        name=cfg.head_name,
        description=f"{what}; class names in {LABELS_FILE} (line i = class i).",
        content="feature",
        stats_min=(0.0,) if probabilistic else None,
        stats_max=(1.0,) if probabilistic else None,
        associated_files=[AssociatedFile(LABELS_FILE, "TENSOR_AXIS_LABELS", locale=labels_locale or None,
                                         description=f"the {n} class names, one a line, in output order")],
    )
    ckpt = str(lm.source.get("checkpoint", "?"))
    short = Path(ckpt.rstrip("/")).name or ckpt
    return replace(
        md,
        name=f"{cfg.title} image classifier ({short}, {n} classes, {quant if quant != 'none' else 'fp32'})",
        description=md.description.replace("image embedder", "image classifier").split(" Output ")[0]
        + f" Output {cfg.head_name!r}: {what}.",
        outputs=[out],
        files={LABELS_FILE: label_bytes},
    )


def _top5_matches(ours_idx: list[int], ref_top: list[dict[str, Any]], ref_scores: np.ndarray, labels: list[str],
                  tol: float) -> bool:
    """Our top 5 names equal the reference's, in order, up to swaps of near-tied classes (within ``tol``)."""
    k = len(ref_top)
    if len(ours_idx) < k:
        return False
    for i, ref in zip(ours_idx[:k], ref_top):
        if labels[i] != ref["label"] and abs(float(ref_scores[i]) - ref["score"]) > tol:
            return False
    return True


def classification_parity_report(model_path: str | Path, images: dict[str, np.ndarray], reference: dict[str, Any],
                                 labels: list[str], quant: str, floor: float, tolerance: float,
                                 num_threads: int = 2) -> dict[str, Any]:
    """Classify ``images`` with the model file through ``ImageClassifier``; compare with ``reference``.

    ``reference``: ``{"scores": [n, N] array, "top": per image the reference's top 5
    [{"label", "score"}]}``.
    """
    from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions

    opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model_path), num_threads=num_threads))
    rows = []
    exact = quant == "none"
    with ImageClassifier.create_from_options(opts) as clf:
        n = clf.model_spec.heads[0].output.size
        for (name, img), ref_scores, ref_top in zip(images.items(), reference["scores"], reference["top"]):
            cats = clf.classify(img).classifications[0].categories
            scores = np.zeros(n, np.float64)
            for c in cats:
                scores[c.index] = c.score
            ours_idx = [c.index for c in cats]
            diff = np.abs(scores - ref_scores.astype(np.float64))
            top1 = bool(ours_idx[0] == int(np.argmax(ref_scores)))
            same5 = _top5_matches(ours_idx, ref_top, ref_scores, labels, tolerance)
            row = {
                "name": name, "image": name, "height": int(img.shape[0]), "width": int(img.shape[1]),
                "top5": [[c.index, c.category_name, c.score] for c in cats[:5]],
                "reference_top5": [[r["label"], r["score"]] for r in ref_top],
                "top5_match": same5, "top1_agrees": top1,
                "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            }
            if exact:
                row["passed"] = bool(same5 and row["max_abs_diff"] <= tolerance)
            else:
                row["passed"] = top1
            row["detail"] = (f"top-1 {cats[0].category_name!r} {'=' if top1 else '!='} reference "
                             f"{ref_top[0]['label']!r}, top-5 {'same' if same5 else 'DIFFERENT'}, "
                             f"max |score diff| {row['max_abs_diff']:.2g}")
            rows.append(row)
    agreement = float(np.mean([r["top1_agrees"] for r in rows]))
    mean_err = float(np.mean([r["mean_abs_diff"] for r in rows]))
    max_err = max(r["max_abs_diff"] for r in rows)
    if exact:
        criterion = f"the reference's top 5 labels in order and every score within {tolerance:g}"
        passed = all(r["passed"] for r in rows)
    else:
        criterion = f"top-1 agreement >= {floor:g} and mean |score diff| <= {tolerance:g}"
        passed = agreement >= floor and mean_err <= tolerance
        if mean_err > tolerance:  # make the failure visible per photo, not only in aggregate
            for r in rows:
                if r["mean_abs_diff"] > tolerance:
                    r["passed"] = False
                    r["detail"] += f", mean |score diff| {r['mean_abs_diff']:.2g} > {tolerance:g}"
    return {
        "floor": floor,
        "score_tolerance": tolerance,
        "criterion": criterion,
        "items": rows,
        "images": rows,
        "top1_agreement": agreement,
        "mean_abs_score_diff": mean_err,
        "max_abs_score_diff": max_err,
        "passed": bool(passed),
    }


class ImageClassificationTask(ImageInputTask):
    name = "image-classification"
    runtime_task = "image_classifier"

    def check_options(self, labels_locale: Optional[str]) -> None:
        if labels_locale is not None and (not isinstance(labels_locale, str) or "\n" in labels_locale):
            raise ConversionOptionsError(f"--labels-locale: expected a locale such as 'en', got {labels_locale!r}")

    def floor(self, cfg: ArchConfig, quant: str, min_cosine: Optional[float], min_top1: Optional[float]) -> Any:
        if min_cosine is not None:
            raise ConversionOptionsError("--min-cosine is the image-embedding floor; for image-classification "
                                         "use --min-top1")
        if min_top1 is not None and not 0.0 <= min_top1 <= 1.0:
            raise ConversionOptionsError(f"--min-top1: expected a fraction in [0, 1], got {min_top1}")
        tolerances = getattr(cfg, "score_tolerances", {})
        return {"top1": cfg.floor(quant) if min_top1 is None else float(min_top1),
                "tolerance": float(tolerances.get(quant, 1e-4)), "quantization": quant}

    def export(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, calib: Optional[list[Any]],
               progress: Callable[[str], None]) -> bytes:
        if not lm.labels:
            raise ExportError(f"{cfg.name}: the loaded classifier has no class names")
        # int8: the head (last linear layer + activation) computes in float with int8 weights.
        return (export_tflite if fmt == "tflite" else export_onnx)(cfg, lm, quant, calib, progress, float_head=True)

    def metadata(self, cfg: ArchConfig, lm: LoadedModel, fmt: str, quant: str, license: Optional[str],
                 labels_locale: Optional[str] = None) -> Any:
        return classification_metadata(cfg, lm, fmt, quant, license, "en" if labels_locale is None else labels_locale)


    def parity(self, path: Path, inputs: dict[str, Any], reference: Any, floor: Any, lm: LoadedModel) -> dict[str, Any]:
        return classification_parity_report(path, inputs, reference, lm.labels or [], floor["quantization"],
                                            floor["top1"], floor["tolerance"])

    def format_report(self, report: dict[str, Any]) -> str:
        lines = [f"parity vs {report['reference']} ({report['criterion']}):",
                 f"  {'image':<16}{'size':>11}  {'top-1 (ours)':<28}{'top-5':>7}{'max|diff|':>11}  ok"]
        for r in report["images"]:
            top = f"{r['top5'][0][1]} {r['top5'][0][2]:.4f}"
            lines.append(f"  {r['image']:<16}{str(r['width']) + 'x' + str(r['height']):>11}  {top[:27]:<28}"
                         f"{'same' if r['top5_match'] else 'DIFF':>7}{r['max_abs_diff']:>11.2g}  "
                         f"{'yes' if r['passed'] else 'NO'}")
        lines.append(f"  top-1 agreement {report['top1_agreement']:.2f}, mean |score diff| "
                     f"{report['mean_abs_score_diff']:.2g}: {'PASS' if report['passed'] else 'FAIL'}")
        return "\n".join(lines)


register_task(ImageClassificationTask())
