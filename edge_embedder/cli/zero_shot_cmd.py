"""``edge-embedder zero-shot``: score images against free-text labels with a CLIP image + text model pair."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..argtypes import positive_int
from ..exit_codes import ExitCode
from .common import CliError, check_text_args, write_output

_ENSEMBLES = ("openai", "simple")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "zero-shot", help="zero-shot classification: score images against labels with a CLIP image + text model pair",
        description="Score each image against the labels as transformers' zero-shot-image-classification pipeline "
        "does (softmax of logit_scale * cosine). Both models must come from one checkpoint (same embedding space). "
        "Needs pip install 'edge-embedder[text]'.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--image-model", required=True, help="image tower (.tflite or .onnx)")
    p.add_argument("--text-model", required=True, help="text tower of the same checkpoint (.tflite or .onnx)")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help="comma-separated labels, e.g. cat,dog,car")
    labels.add_argument("--labels-file", metavar="FILE", help="one label per line (labels may contain commas)")
    prompts = p.add_mutually_exclusive_group()
    prompts.add_argument("--template", default=None,
                         help='hypothesis template with one {} for the label (default: "This is a photo of {}.")')
    prompts.add_argument("--templates", choices=_ENSEMBLES, default=None,
                         help="prompt ensemble: OpenAI's 80 ImageNet templates or open_clip's 7 simple ones")
    p.add_argument("--logit-scale", type=float, default=None, help="override the models' logit scale")
    p.add_argument("--top-k", type=positive_int, default=None, help="print only the K best labels per image")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads (default: cores, max 4)")
    p.add_argument("-o", "--out", help="write the JSON to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def _labels(args: argparse.Namespace) -> list[str]:
    if args.labels_file:
        try:
            with open(args.labels_file, encoding="utf-8") as f:
                labels = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--labels-file: cannot read {args.labels_file}: {exc}", ExitCode.USAGE) from None
    else:
        labels = [x.strip() for x in args.labels.split(",")]
        if any(not x for x in labels):
            raise CliError(f"--labels: empty label in {args.labels!r}", ExitCode.USAGE)
    if not labels:
        raise CliError("no labels given", ExitCode.USAGE)
    check_text_args(labels, "label")
    return labels


def run(args: argparse.Namespace) -> int:
    from ..core.base_options import BaseOptions
    from ..errors import ImageError, ModelOutputError
    from ..zero_shot import (
        DEFAULT_HYPOTHESIS_TEMPLATE,
        OPENAI_IMAGENET_TEMPLATES,
        SIMPLE_IMAGENET_TEMPLATES,
        ZeroShotImageClassifier,
        ZeroShotImageClassifierOptions,
    )

    labels = _labels(args)
    if args.template is not None:
        check_text_args(args.template, "--template")
    templates = {"openai": OPENAI_IMAGENET_TEMPLATES, "simple": SIMPLE_IMAGENET_TEMPLATES}.get(args.templates or "")
    opts = ZeroShotImageClassifierOptions(
        image_base_options=BaseOptions(model_asset_path=args.image_model, num_threads=args.threads),
        text_base_options=BaseOptions(model_asset_path=args.text_model, num_threads=args.threads),
        hypothesis_template=args.template or DEFAULT_HYPOTHESIS_TEMPLATE,
        templates=templates,
        logit_scale=args.logit_scale,
    )
    results: list[dict[str, Any]] = []
    failed = model_errors = 0
    last_error = ""
    with ZeroShotImageClassifier.create_from_options(opts) as zs:
        zs.label_embeddings(labels)  # once, before the images
        for path in args.images:
            try:
                scores = zs.classify(path, labels)
            except ImageError as exc:
                failed += 1
                print(f"edge-embedder: skipped {exc}", file=sys.stderr)
                continue
            except ModelOutputError as exc:
                failed += 1
                model_errors += 1
                last_error = exc.reason
                print(f"edge-embedder: skipped {path}: {exc.reason}", file=sys.stderr)
                continue
            results.append({"image": path, "results": scores[: args.top_k] if args.top_k else scores})
    if not results:
        if model_errors == failed:
            raise CliError(f"the image model returned an unusable vector for every image ({last_error})", ExitCode.MODEL)
        raise CliError(f"no image could be classified ({failed} failed)", ExitCode.INPUT)
    write_output(json.dumps(results if len(results) > 1 or failed else results[0]), args.out)
    return ExitCode.PARTIAL if failed else ExitCode.OK
