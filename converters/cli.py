"""``edge-embedder convert``: Hugging Face ViT / CLIP / DINOv2 / SigLIP (and EfficientNet-Lite0) to .tflite / .onnx.

``--tower image`` (the default) converts the image tower (task
``image-embedding``); ``--tower text`` converts a CLIP or SigLIP text tower
(task ``text-embedding``): the same as ``--task text-embedding``.

Only argparse-level code runs at import (``edge_embedder.cli`` imports this
module to build its parser); torch, transformers and the exporters are
imported inside :func:`cmd_convert`, after :func:`.toolchain.require_toolchain`
has checked that they are installed (else one line naming the extra, exit 5).

Exit codes (:mod:`edge_embedder.exit_codes`): 0 converted and parity passed;
1 converted but parity failed (no model file kept, report saved); 2 usage
(unknown architecture, missing --model, unwritable output path, bad option);
3 checkpoint or export error; 4 no usable calibration image; 5 the converter
toolchain is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from typing import Any, Callable, Iterator, TextIO

from edge_embedder.exit_codes import ExitCode

__all__ = ["add_convert_parser", "cmd_convert"]

_QUANT_CHOICES = ("none", "fp16", "dynamic-int8", "int8", "auto")
#: ``--tower`` -> the conversion task it means.
TOWER_TASKS = {"image": "image-embedding", "text": "text-embedding"}

EPILOG = """\
examples:
  edge-embedder convert --arch vit --model google/vit-base-patch16-224 -o vit.tflite
  edge-embedder convert --arch clip --model ./my-clip --format onnx --quantize dynamic-int8 -o clip.onnx
  edge-embedder convert --arch vit --model ./ckpt --quantize int8 --calibration-images photos/ -o vit_int8.tflite
  edge-embedder convert --task image-classification --arch vit --model ./food101-ckpt -o food101.tflite
  edge-embedder convert --task image-classification --arch efficientnet-lite0 --quantize int8 -o imagenet_int8.tflite
  edge-embedder convert --arch clip --tower text --model ./my-clip -o clip_text.tflite
  edge-embedder convert --arch dinov2 --model facebook/dinov2-small --quantize auto -o dinov2.tflite
  edge-embedder convert --arch siglip --tower text --model google/siglip-base-patch16-224 -o siglip_text.tflite

--quantize auto picks the architecture's measured default: dynamic-int8 for vit, clip, dinov2 and
siglip (3x faster than fp32 on 2 threads; static int8 was slower and less accurate), int8 for
efficientnet-lite0 (2.4x faster; dynamic int8 was 4x slower). The parity report
(OUTPUT.parity.json) compares the file, run through edge_embedder.ImageEmbedder, with the
source model in transformers on real photos; a float32 file must reach cosine >= 0.9995.

--task image-classification keeps the checkpoint's AutoModelForImageClassification head (or
EfficientNet-Lite0's ImageNet head): the graph ends with transformers' activation (softmax;
sigmoid for multi-label or single-logit models), config.id2label goes into the file as its label
file, and the parity report runs the file through edge_embedder.ImageClassifier against
pipeline("image-classification"): float32 must give the same top-5 labels in the same order with
every score within 1e-4; quantized files report top-1 agreement (floor, --min-top1) and the mean
score difference.

Text towers (--tower text) carry their tokenizer (SigLIP: its spiece.model rebuilt for the
tokenizers package); their report compares token ids and vectors with transformers'
get_text_features on captions (float32: cosine >= 0.9999). Both towers of one checkpoint get
the same embedding-space id (and logit scale; SigLIP: logit bias), so the runtime can pair them.
"""


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand to the ``edge-embedder`` subparsers."""
    p = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face ViT / CLIP / DINOv2 / SigLIP checkpoint to a .tflite / .onnx embedder or "
        "classifier with a parity report",
        description="Convert a Hugging Face ViT, CLIP, DINOv2 or SigLIP checkpoint (hub id or save_pretrained folder) "
        "to a .tflite or .onnx image embedder (or, with --task image-classification, an image classifier with its "
        "labels inside the file; with --tower text, a CLIP or SigLIP text tower with its tokenizer inside) with "
        "metadata, optional quantization, and a parity report against transformers. Needs pip install "
        "'edge-embedder[convert]'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--arch", required=True, help="architecture: vit, clip, dinov2, siglip, efficientnet-lite0")
    p.add_argument("--tower", choices=tuple(TOWER_TASKS), default=None,
                   help="which tower of the checkpoint: image (default) or text (CLIP / SigLIP text tower, tokenizer "
                   "inside)")
    p.add_argument("--task", default=None,
                   help="what the file does: image-embedding (default), image-classification (the checkpoint's "
                   "classification head, labels from config.id2label inside the file) or text-embedding "
                   "(= --tower text)")
    p.add_argument("--embedding-space", metavar="ID", default=None,
                   help="embedding-space id to write instead of the checkpoint's own (towers of one model "
                   "saved as separate checkpoints)")
    p.add_argument("--model", "-m", default=None, help="hub id or local save_pretrained folder (model + image processor)")
    p.add_argument("--format", "-f", choices=("tflite", "onnx"), default=None,
                   help="output format (default: from the output suffix, .onnx -> onnx, else tflite)")
    p.add_argument("--quantize", "-q", choices=_QUANT_CHOICES, default="none",
                   help="none (float32, default), fp16 weights, dynamic-int8, int8 (full integer, uint8 input), "
                   "or auto (the architecture's measured default)")
    p.add_argument("--calibration-images", metavar="DIR", default=None,
                   help="folder of images to calibrate --quantize int8 (default: bundled scikit-image photos)")
    p.add_argument("--license", default=None, help="licence text for the metadata (default: from the model card)")
    p.add_argument("--min-cosine", type=float, default=None,
                   help="image-embedding: override the parity floor (default: 0.9995 for float32, per recipe otherwise)")
    p.add_argument("--min-top1", type=float, default=None, metavar="FRACTION",
                   help="image-classification: override the minimum top-1 agreement of a quantized file "
                   "(default per recipe: fp16 1.0, dynamic-int8 0.8, int8 0.8; 0.6 for ViT / CLIP int8)")
    p.add_argument("--labels-locale", default=None, metavar="LOCALE",
                   help="image-classification: the locale of the label file (default en)")
    p.add_argument("--verbose", "-v", action="store_true", help="show the exporters' own output")
    p.add_argument("-o", "--out", dest="output", metavar="FILE", help="model file to write (written atomically; required)")
    p.add_argument("--output", dest="output", help=argparse.SUPPRESS)  # the old spelling of -o
    p.set_defaults(func=cmd_convert)
    return p


@contextlib.contextmanager
def _toolchain_output_to(log_path: str | None) -> Iterator[TextIO]:
    """Send fd 1/2 (litert-torch, absl, warnings) to ``log_path``; yield a stream to the real stderr."""
    if log_path is None:
        yield sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    real_err = os.fdopen(os.dup(saved_err), "w", buffering=1)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    old_stdout, old_stderr = sys.stdout, sys.stderr
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield real_err
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, log_fd):
            os.close(fd)
        sys.stdout, sys.stderr = old_stdout, old_stderr
        real_err.close()


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = int(code)


def cmd_convert(args: argparse.Namespace) -> int:
    """Run the conversion; errors are one line on stderr and an exit code (no traceback)."""
    try:
        return _convert(args)
    except _Fail as exc:
        label = "missing dependency" if exc.code == ExitCode.MISSING_DEPENDENCY else "error"
        print(f"edge-embedder: {label}: {exc}", file=sys.stderr)
        return exc.code


def _task(args: argparse.Namespace) -> str:
    """The task of ``--tower`` / ``--task`` (ConversionOptionsError when they disagree)."""
    from .errors import ConversionOptionsError

    tower = TOWER_TASKS[args.tower] if args.tower else None
    if tower and args.task and args.task != tower:
        raise ConversionOptionsError(f"--tower {args.tower} means --task {tower}, got --task {args.task}")
    return tower or args.task or TOWER_TASKS["image"]


def _convert(args: argparse.Namespace) -> int:
    from edge_embedder.errors import MissingDependencyError

    from .errors import (
        CalibrationError,
        CheckpointError,
        ConversionError,
        ConversionOptionsError,
        OutputPathError,
        ParityError,
        UnknownArchitectureError,
    )
    task = _checked_before_torch(args)
    from .pipeline import convert, format_report  # no torch at import either
    log_path = None
    if not args.verbose:
        fd, log_path = tempfile.mkstemp(prefix="edge_embedder_convert_", suffix=".log")
        os.close(fd)
    keep_log = False
    try:
        with _toolchain_output_to(log_path) as err:
            try:
                result = convert(
                    args.arch,
                    args.model,
                    output=args.output,
                    task=task,
                    fmt=args.format,
                    quantize=args.quantize,
                    calibration_images=args.calibration_images,
                    license=args.license,
                    min_cosine=args.min_cosine,
                    min_top1=args.min_top1,
                    labels_locale=args.labels_locale,
                    progress=_progress_printer(err),
                    embedding_space=args.embedding_space,
                )
            except ParityError as exc:
                if exc.report is not None:
                    print(format_report(exc.report), file=err)
                raise
    except ParityError as exc:
        raise _Fail(str(exc), ExitCode.PARTIAL) from None
    except (UnknownArchitectureError, ConversionOptionsError, OutputPathError) as exc:
        raise _Fail(str(exc), ExitCode.USAGE) from None
    except CalibrationError as exc:
        raise _Fail(str(exc), ExitCode.INPUT) from None
    except CheckpointError as exc:
        raise _Fail(str(exc), ExitCode.MODEL) from None
    except MissingDependencyError as exc:
        raise _Fail(str(exc), ExitCode.MISSING_DEPENDENCY) from None
    except ConversionError as exc:
        keep_log = log_path is not None
        hint = f" (exporter log: {log_path})" if keep_log else ""
        raise _Fail(f"{exc}{hint}", ExitCode.MODEL) from None
    finally:
        if log_path is not None and not keep_log:
            try:
                os.unlink(log_path)
            except OSError:
                pass
    print(format_report(result.report))
    print(f"wrote {result.path} ({result.size_bytes / 2**20:.2f} MiB); parity report {result.report_path}")
    return ExitCode.OK


def _checked_before_torch(args: argparse.Namespace) -> str:
    """The task name, once the options and the toolchain they need are checked (before torch is imported)."""
    from edge_embedder.errors import MissingDependencyError

    from .architectures import get_config
    from .errors import ConversionOptionsError, UnknownArchitectureError
    from .tasks import get_task
    from .toolchain import require_toolchain

    try:
        if not args.output:
            raise ConversionOptionsError("-o FILE is required: the model file to write")
        task = get_task(_task(args)).name
        cfg = get_config(args.arch, task)  # cheap: fail before importing torch
        if cfg.requires_checkpoint and not args.model:
            raise ConversionOptionsError(f"--arch {cfg.name} needs --model HUB_ID_OR_LOCAL_DIR")
        require_toolchain(cfg, args.format or ("onnx" if str(args.output).lower().endswith(".onnx") else "tflite"),
                          args.quantize)
    except (UnknownArchitectureError, ConversionOptionsError) as exc:
        raise _Fail(str(exc), ExitCode.USAGE) from None
    except MissingDependencyError as exc:
        raise _Fail(str(exc), ExitCode.MISSING_DEPENDENCY) from None
    return task


def _progress_printer(err: Any) -> Callable[[str], None]:
    """``[convert N | seconds] message`` lines on ``err``; warnings as ``edge-embedder: warning: ...``."""
    step, t0 = [0], time.perf_counter()

    def progress(msg: str) -> None:
        if msg.startswith("warning:"):
            print(f"edge-embedder: {msg}", file=err, flush=True)
            return
        step[0] += 1
        print(f"[convert {step[0]} | {time.perf_counter() - t0:5.1f} s] {msg}", file=err, flush=True)

    return progress
