"""``edge-embedder inspect``: a model's metadata and contract verdict as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="print a model's metadata and contract verdict as JSON; classifiers also "
                                       "show each head's labels count and first labels "
                                       "(exit 1 if it breaks the contract, 3 if it is not a model)")
    p.add_argument("model_file", metavar="MODEL", type=model_file, help="model file (.tflite or .onnx) or shipped model name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model_info import inspect_model

    report = inspect_model(args.model_file)
    print(json.dumps(report, indent=2))
    return ExitCode.OK if report["contract"]["ok"] else ExitCode.PARTIAL
