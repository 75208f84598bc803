"""``edge-embedder classify``: the top categories of images, with the labels inside the model."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..exit_codes import ExitCode
from .common import (
    CliError,
    InputReport,
    add_image_args,
    add_model_args,
    add_output_args,
    add_top_k,
    check_output_folder,
    image_options,
    processing_options,
    write_output,
)

EPILOG = """\
examples:
  edge-embedder classify photo.jpg                       # shipped EfficientNet-Lite0, ImageNet labels
  edge-embedder classify *.jpg --top-k 3 --threshold 0.1 --format json -o labels.json
  edge-embedder classify cat.jpg --roi 0.2,0.1,0.8,0.9 --rotation 90
  edge-embedder classify dish.jpg --model food101.tflite # a file made by edge-embedder convert --task image-classification

Scores are the model's outputs (the converters put the softmax / sigmoid in the graph), after the
model's score calibration when it has one. --threshold keeps scores >= the value and replaces the
model's own default threshold. A model without labels (an embedder, say) is refused unless
--allow-unlabelled is given. Exit codes: 0 ok, 1 some images skipped (listed in the output),
2 usage, 3 model error, 4 no image could be classified.
"""


def _threshold(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def add_parser(sub: Any) -> None:
    p = sub.add_parser("classify", help="classify images: the top categories with their labels and scores",
                       description="Classify images with an image-classification model whose labels travel "
                       "inside the file (default: the shipped EfficientNet-Lite0 ImageNet classifier).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_args(p, default="efficientnet-lite0-classifier (the shipped ImageNet classifier, fp32)")
    add_image_args(p)
    add_top_k(p, 5, "categories per image and head (default 5)")
    p.add_argument("--threshold", type=_threshold, default=None, metavar="SCORE",
                   help="keep categories with score >= SCORE (default: the model's own threshold, if any)")
    p.add_argument("--locale", default="en", help="display-name locale (default en); '' uses the first label file")
    p.add_argument("--allow-unlabelled", action="store_true",
                   help="classify with a model that has no label file (its outputs are taken as class scores)")
    add_output_args(p, ("text", "json"), file_help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.base_options import BaseOptions
    from ..errors import ImageError, ModelOutputError
    from ..resources import default_classifier_path
    from ..vision import ImageClassifier, ImageClassifierOptions

    if args.out:
        check_output_folder(args.out)
    ipo = processing_options(args)
    opts = ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=args.model or default_classifier_path("fp32"),
                                 num_threads=args.threads),
        max_results=args.top_k, score_threshold=args.threshold, display_names_locale=args.locale,
        **image_options(args))
    report = InputReport("image")
    with ImageClassifier.create_from_options(opts) as clf:
        if all(h.labels is None for h in clf.model_spec.heads):
            if not args.allow_unlabelled:
                sizes = ", ".join(str(h.output.size) for h in clf.model_spec.heads)
                raise CliError(f"{args.model}: the model has no label file, so it is no classifier that says what its "
                               f"{sizes} outputs mean (an embedder?); pass --allow-unlabelled to classify with it "
                               "anyway", ExitCode.MODEL)
            print("edge-embedder: warning: the model has no label file: categories are class indices only",
                  file=sys.stderr)
        for path in args.images:
            try:
                res = clf.classify(path, ipo)
            except (ImageError, ModelOutputError) as exc:
                report.skip(path, exc)
                continue
            report.add(path, classifications=[
                {"head_index": c.head_index, "head_name": c.head_name,
                 "categories": [{"index": k.index, "score": k.score, "category_name": k.category_name,
                                 "display_name": k.display_name} for k in c.categories]}
                for c in res.classifications])
    code = report.exit_code("classified")
    write_output(json.dumps(report.records, ensure_ascii=False) if args.format == "json" else _text(report.records),
                 args.out)
    return code


def _text(records: list[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        lines.append(r["image"])
        if "error" in r:
            lines.append(f"  skipped: {r['error']['type']}: {r['error']['reason']}")
            continue
        many = len(r["classifications"]) > 1
        for head in r["classifications"]:
            if many:
                lines.append(f"  head {head['head_index']} ({head['head_name']}):")
            if not head["categories"]:
                lines.append("    (no category above the threshold)")
            for rank, k in enumerate(head["categories"], start=1):
                name = k["display_name"] or k["category_name"] or f"class {k['index']}"
                lines.append(f"  {rank:>2}. {name:<32} {k['score']:.4f}  (index {k['index']})")
    return "\n".join(lines)
