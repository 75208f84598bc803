"""``edge-embedder inspect``: a model's metadata and contract verdict as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode
from .common import add_output_args, check_output_folder, write_output


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="print a model's metadata and contract verdict as JSON; classifiers also "
                                       "show each head's labels count and first labels "
                                       "(exit 1 if it breaks the contract, 3 if it is not a model)")
    p.add_argument("model_file", metavar="MODEL", type=model_file, help="model file (.tflite or .onnx) or shipped model name")
    add_output_args(p, ("json",), file_help="write to this file (atomically) instead of stdout",
                    format_help="json (one object: file, format, runtime, inputs, outputs, metadata, contract)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model_info import inspect_model

    if args.out:
        check_output_folder(args.out)
    report = inspect_model(args.model_file)
    write_output(json.dumps(report, indent=2), args.out)
    return ExitCode.OK if report["contract"]["ok"] else ExitCode.PARTIAL
