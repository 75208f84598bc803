"""``edge-embedder classify``: the top categories of images, with the labels inside the model."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..argtypes import positive_int
from ..exit_codes import ExitCode
from .common import CliError, add_geometry_args, processing_options

EPILOG = """\
examples:
  edge-embedder classify photo.jpg                       # shipped EfficientNet-Lite0, ImageNet labels
  edge-embedder classify *.jpg --top-k 3 --threshold 0.1 --output json -o labels.json
  edge-embedder classify cat.jpg --roi 0.2,0.1,0.8,0.9 --rotation 90
  edge-embedder classify dish.jpg --model food101.tflite # a file made by edge-embedder convert --task image-classification

Scores are the model's outputs (the converters put the softmax / sigmoid in the graph), after the
model's score calibration when it has one. --threshold keeps scores >= the value and replaces the
model's own default threshold. Exit codes: 0 ok, 1 some images skipped, 2 usage, 3 model error,
4 no image could be classified.
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
    p.add_argument("--model", "-m", help="classifier file (.tflite or .onnx); default: the shipped "
                   "EfficientNet-Lite0 ImageNet classifier (fp32)")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads (default: cores, max 4)")
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="categories per image and head (default 5)")
    p.add_argument("--threshold", type=_threshold, default=None, metavar="SCORE",
                   help="keep categories with score >= SCORE (default: the model's own threshold, if any)")
    p.add_argument("--locale", default="en", help="display-name locale (default en); '' uses the first label file")
    add_geometry_args(p)
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    p.add_argument("-o", "--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.base_options import BaseOptions
    from ..errors import ImageError, ModelOutputError
    from ..files import atomic_write
    from ..resources import default_classifier_path
    from ..search import display_path
    from ..vision import ImageClassifier, ImageClassifierOptions

    ipo = processing_options(args)
    opts = ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=args.model or default_classifier_path("fp32"),
                                 num_threads=args.threads),
        max_results=args.top_k, score_threshold=args.threshold, display_names_locale=args.locale)
    results: list[dict[str, Any]] = []
    failed = model_errors = 0
    last_error = ""
    with ImageClassifier.create_from_options(opts) as clf:
        if all(h.labels is None for h in clf.model_spec.heads):
            print("edge-embedder: warning: the model has no label file: categories are class indices only",
                  file=sys.stderr)
        for path in args.images:
            try:
                res = clf.classify(path, ipo)
            except ImageError as exc:
                failed += 1
                print(f"edge-embedder: skipped {exc}", file=sys.stderr)
                continue
            except ModelOutputError as exc:
                failed += 1
                model_errors += 1
                last_error = exc.reason
                print(f"edge-embedder: skipped {display_path(path)}: {exc.reason}", file=sys.stderr)
                continue
            # display_path: a file name that is not UTF-8 is printed with \xNN escapes, never a crash
            results.append({"image": display_path(path), "classifications": [
                {"head_index": c.head_index, "head_name": c.head_name,
                 "categories": [{"index": k.index, "score": k.score, "category_name": k.category_name,
                                 "display_name": k.display_name} for k in c.categories]}
                for c in res.classifications]})
    if not results:
        if model_errors == failed:
            raise CliError(f"the model returned unusable scores for every image ({last_error})", ExitCode.MODEL)
        raise CliError(f"no image could be classified ({failed} failed)", ExitCode.INPUT)
    if args.output == "json":
        text = json.dumps(results if len(results) > 1 or failed else results[0], ensure_ascii=False)
    else:
        text = _text(results)
    if args.out:
        atomic_write(args.out, text.encode("utf-8") + b"\n")
    else:
        print(text)
    return ExitCode.PARTIAL if failed else ExitCode.OK


def _text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(r["image"])
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
