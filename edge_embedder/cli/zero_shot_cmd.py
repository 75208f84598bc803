"""``edge-embedder zero-shot``: score images against free-text labels with a CLIP image + text model pair."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode
from .common import (
    CliError,
    InputReport,
    add_image_args,
    add_output_args,
    add_threads_arg,
    add_top_k,
    check_output_folder,
    make_embedder,
    make_text_embedder,
    processing_options,
    write_output,
)

_ENSEMBLES = ("openai", "simple")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "zero-shot", help="zero-shot classification: score images against labels with a CLIP image + text model pair",
        description="Score each image against the labels as transformers' zero-shot-image-classification pipeline "
        "does (softmax of logit_scale * cosine). Both models must come from one checkpoint (same embedding space). "
        "Needs pip install 'edge-embedder[text]'.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--image-model", "--model", "-m", dest="model", required=True, type=model_file, metavar="MODEL",
                   help="image tower (.tflite or .onnx)")
    p.add_argument("--text-model", required=True, type=model_file, metavar="MODEL",
                   help="text tower of the same checkpoint (.tflite or .onnx)")
    add_threads_arg(p)
    add_image_args(p)
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help="comma-separated labels, e.g. cat,dog,car")
    labels.add_argument("--labels-file", metavar="FILE", help="one label per line (labels may contain commas)")
    prompts = p.add_mutually_exclusive_group()
    prompts.add_argument("--template", default=None,
                         help='hypothesis template with one {} for the label (default: "This is a photo of {}.")')
    prompts.add_argument("--templates", choices=_ENSEMBLES, default=None,
                         help="prompt ensemble: OpenAI's 80 ImageNet templates or open_clip's 7 simple ones")
    p.add_argument("--logit-scale", type=float, default=None, help="override the models' logit scale")
    add_top_k(p, None, "only the K best labels per image (default: all)")
    add_output_args(p, ("json",), file_help="write the JSON to this file (atomically) instead of stdout",
                    format_help="json: a list, one record per image: {image, results: [{score, label}]}")
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
    return labels


def run(args: argparse.Namespace) -> int:
    from ..errors import ImageError, ModelOutputError
    from ..zero_shot import (
        DEFAULT_HYPOTHESIS_TEMPLATE,
        OPENAI_IMAGENET_TEMPLATES,
        SIMPLE_IMAGENET_TEMPLATES,
        ZeroShotImageClassifier,
    )

    if args.out:
        check_output_folder(args.out)
    labels = _labels(args)
    templates = {"openai": OPENAI_IMAGENET_TEMPLATES, "simple": SIMPLE_IMAGENET_TEMPLATES}.get(args.templates or "")
    ipo = processing_options(args)
    report = InputReport("image")
    with make_text_embedder(args.text_model, args.threads) as text, make_embedder(args) as image, \
            ZeroShotImageClassifier(image, text, hypothesis_template=args.template or DEFAULT_HYPOTHESIS_TEMPLATE,
                                    templates=templates, logit_scale=args.logit_scale) as zs:
        zs.label_embeddings(labels)  # once, before the images
        for path in args.images:
            try:
                scores = zs.classify(path, labels, image_processing_options=ipo)
            except (ImageError, ModelOutputError) as exc:
                report.skip(path, exc)
                continue
            report.add(path, results=scores[: args.top_k] if args.top_k else scores)
    code = report.exit_code("classified")
    write_output(json.dumps(report.records, ensure_ascii=False), args.out)
    return code
