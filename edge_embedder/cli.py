"""``edge-embedder`` command line.

Exit codes:
  0  success
  1  finished, but something failed: the model breaks the contract
     (``inspect``) or some images were skipped (``embed``)
  2  usage error: bad arguments or options
  3  model error: missing / corrupt model, contract violation, no runtime
  4  image error: no input image could be used
  130  interrupted (Ctrl-C)

Errors are one line on stderr, never a traceback. Heavy imports (converters,
benchmarks) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional, Sequence

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_MODEL, EXIT_IMAGE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _parse_roi(text: str):
    from .errors import OptionsError
    from .options import RectF

    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected l,t,r,b as four numbers in [0, 1], got {text!r}") from None
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 comma-separated numbers l,t,r,b, got {len(parts)}")
    try:
        return RectF(*parts)
    except OptionsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
        return v

    return parse


_positive_int = int_at_least(1)


def _rotation(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a multiple of 90, got {text!r}") from None
    if v % 90:
        raise argparse.ArgumentTypeError(f"expected a multiple of 90, got {v}")
    return v


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="model file (.tflite or .onnx); default: the shipped EfficientNet-Lite0 fp32")
    p.add_argument("--threads", type=_positive_int, default=None, help="interpreter threads (default: cores, max 4)")


def _add_geometry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--roi", type=_parse_roi, default=None, metavar="L,T,R,B",
                   help="region of interest, normalized to [0, 1], e.g. 0.1,0.1,0.9,0.9")
    p.add_argument("--rotation", type=_rotation, default=0, metavar="DEG",
                   help="rotate the (cropped) image clockwise by a multiple of 90 degrees")


def _make_embedder(args: argparse.Namespace, *, l2: bool = False, quantize: bool = False):
    from .embedder import ImageEmbedder
    from .options import BaseOptions, ImageEmbedderOptions
    from .resources import default_model_path

    model = args.model or default_model_path("fp32")
    opts = ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=model, num_threads=args.threads),
        l2_normalize=l2,
        quantize=quantize,
    )
    return ImageEmbedder.create_from_options(opts)


def _ipo(args: argparse.Namespace):
    from .options import ImageProcessingOptions

    if args.roi is None and not args.rotation:
        return None
    return ImageProcessingOptions(region_of_interest=args.roi, rotation_degrees=args.rotation)


# -- commands ------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .image import Image
    from .resources import sample_images

    names, images = [], []
    for name, path in sample_images().items():
        names.append(name)
        images.append(Image.create_from_file(path))
        if name == "chelsea":
            names.append("chelsea_mirror")
            images.append(Image.create_from_array(np.ascontiguousarray(images[-1].numpy_view()[:, ::-1])))
    with _make_embedder(args) as embedder:
        spec = embedder.model_spec
        md = embedder.metadata
        print(f"model: {md.name if md and md.name else args.model}  "
              f"({spec.width}x{spec.height} {spec.input_dtype}, {spec.outputs[0].size}-d)")
        vecs, times = [], []
        for img in images:
            embedder.embed(img)  # warm-up of this size's maps
            t0 = time.perf_counter()
            vecs.append(embedder.embed(img).embeddings[0])
            times.append((time.perf_counter() - t0) * 1e3)
    width = max(len(n) for n in names)
    print("\ncosine similarity")
    print(" " * width + "".join(f"{n[:14]:>16}" for n in names))
    for n, u in zip(names, vecs):
        row = "".join(f"{embedder.cosine_similarity(u, v):16.3f}" for v in vecs)
        print(f"{n:<{width}}{row}")
    print(f"\nembed() median {sorted(times)[len(times) // 2]:.2f} ms per photo "
          f"({embedder.options.base_options.resolved_num_threads} threads)")
    return EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from ._io import atomic_write
    from .errors import ImageError

    if args.output == "npy" and not args.out:
        raise CliError("--output npy needs -o FILE.npy", EXIT_USAGE)
    ipo = _ipo(args)
    results: list[dict[str, Any]] = []
    rows: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    with _make_embedder(args, l2=args.l2_normalize, quantize=args.quantize) as embedder:
        if args.head >= len(embedder.model_spec.outputs):
            raise CliError(f"--head: expected < {len(embedder.model_spec.outputs)} (number of heads), got {args.head}", EXIT_USAGE)
        for path in args.images:
            try:
                res = embedder.embed(path, ipo)
            except ImageError as exc:
                failed.append((path, str(exc)))
                print(f"edge-embedder: skipped {exc}", file=sys.stderr)
                continue
            rows.append(res.embeddings[args.head].embedding)
            results.append({
                "image": path,
                "embeddings": [
                    {"head_index": e.head_index, "head_name": e.head_name, "embedding": e.embedding.tolist()}
                    for e in res.embeddings
                ],
            })
    if not results:
        raise CliError(f"no image could be embedded ({len(failed)} failed)", EXIT_IMAGE)
    if args.output == "npy":
        atomic_write(args.out, lambda f: np.save(f, np.stack(rows)))
    else:
        text = json.dumps(results if len(results) > 1 or failed else results[0], indent=None)
        if args.out:
            atomic_write(args.out, text.encode() + b"\n")
        else:
            print(text)
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_embed_dir(args: argparse.Namespace) -> int:
    from .folder import Interrupted, embed_dir
    from .resources import default_model_path

    model = args.model or str(default_model_path("fp32"))
    args.model = model
    with _make_embedder(args, l2=args.l2_normalize) as embedder:
        try:
            report = embed_dir(
                embedder, args.folder, args.out, model_path=model, resume=args.resume,
                overwrite=args.overwrite, head=args.head, progress=not args.no_progress,
            )
        except Interrupted as exc:
            r = exc.report
            print(f"edge-embedder: interrupted: {r.total} images embedded, checkpoint {r.checkpoint}; "
                  "rerun with --resume to continue", file=sys.stderr)
            return EXIT_INTERRUPTED
    rate = report.embedded / report.seconds if report.seconds > 0 else 0.0
    print(f"embedded {report.embedded} images ({report.resumed} resumed) into {report.output} "
          f"in {report.seconds:.1f} s ({rate:.1f} img/s); skipped {len(report.skipped)}"
          + (f", listed in {report.output.name}.skipped.tsv" if report.skipped else ""), file=sys.stderr)
    return EXIT_PARTIAL if report.skipped else EXIT_OK


def cmd_similarity(args: argparse.Namespace) -> int:
    ipo = _ipo(args)
    with _make_embedder(args) as embedder:
        a = embedder.embed(args.a, ipo).embeddings[0]
        b = embedder.embed(args.b, ipo).embeddings[0]
        print(f"{embedder.cosine_similarity(a, b):.6f}")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    report = inspect_model(args.model_file)
    print(json.dumps(report, indent=2))
    return EXIT_OK if report["contract"]["ok"] else EXIT_PARTIAL


def inspect_model(path: str) -> dict[str, Any]:
    """Metadata, tensors and the contract verdict of a model file, as a dict."""
    from .backends.base import open_backend, read_model_bytes
    from .contract import check_contract
    from .errors import EdgeEmbedderError

    data = read_model_bytes(path)
    report: dict[str, Any] = {"file": str(path), "size_bytes": len(data)}
    try:
        backend = open_backend(data, num_threads=1, source=str(path))
    except EdgeEmbedderError as exc:
        report["contract"] = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
        return report
    try:
        report["format"] = backend.name
        report["inputs"] = [_tensor_json(t) for t in backend.input_specs]
        report["outputs"] = [_tensor_json(t) for t in backend.output_specs]
        md = backend.metadata
        report["metadata"] = md.to_dict() if md is not None else None
        try:
            spec = check_contract(backend.input_specs, backend.output_specs, md, allow_nchw=backend.name != "litert")
        except EdgeEmbedderError as exc:
            report["contract"] = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
        else:
            report["contract"] = {
                "ok": True,
                "input": {"height": spec.height, "width": spec.width, "dtype": str(spec.input_dtype), "layout": spec.layout},
                "normalization": None if spec.normalization is None else {
                    "mean": list(spec.normalization.mean), "std": list(spec.normalization.std)},
                "recipe": spec.recipe.to_json(),
                "heads": [{"head_index": o.index, "head_name": o.name, "size": o.size, "dtype": str(o.dtype)} for o in spec.outputs],
            }
    finally:
        backend.close()
    return report


def _tensor_json(t) -> dict[str, Any]:
    d = {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}
    if t.scale:
        d["quantization"] = {"scale": t.scale, "zero_point": t.zero_point}
    return d


# -- parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-embedder",
        description="On-device image embeddings with TFLite / ONNX models.",
        epilog="Exit codes: 0 ok, 1 partial failure or contract failed, 2 usage, 3 model error, 4 image error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="embed the bundled sample photos with the default model and print a similarity matrix")
    _add_model_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("embed", help="embed images and print / save the vectors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _add_model_args(p)
    _add_geometry_args(p)
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--quantize", action="store_true", help="scalar-quantize each embedding to int8")
    p.add_argument("--output", choices=("json", "npy"), default="json", help="json (default, to stdout or -o) or npy (needs -o)")
    p.add_argument("--head", type=int, default=0, help="head index written by --output npy (default 0)")
    p.add_argument("-o", "--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("embed-dir", help="embed every image under a folder into .npz / .parquet (resumable)")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("-o", "--out", required=True, help="output file: OUT.npz, or OUT.parquet when pyarrow is installed")
    _add_model_args(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run without recomputing finished images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--l2-normalize", action="store_true", help="L2-normalize each embedding")
    p.add_argument("--head", type=int, default=0, help="which output head to store (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_embed_dir)

    p = sub.add_parser("similarity", help="cosine similarity of two images")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    _add_model_args(p)
    _add_geometry_args(p)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("inspect", help="print a model's metadata and contract verdict as JSON (exit 1 if it fails)")
    p.add_argument("model_file", metavar="MODEL")
    p.set_defaults(func=cmd_inspect)

    _add_optional_commands(sub)
    from ._search_cli import add_search_parsers  # search, index: edge_embedder/_search_cli.py
    add_search_parsers(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """``convert`` and ``bench`` live in the converters / benchmarks packages.

    Their modules only build argparse parsers at import time; torch and
    friends are imported inside the command when it runs.
    """
    for module_name, func_name in (("converters.cli", "add_convert_parser"), ("benchmarks.cli", "add_bench_parser")):
        try:
            module = __import__(module_name, fromlist=[func_name])
        except ImportError:
            continue  # not shipped in this install
        getattr(module, func_name)(sub)


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .errors import EdgeEmbedderError, ImageError, ModelError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return exc.code
    except ModelError as exc:
        print(f"edge-embedder: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except ImageError as exc:
        print(f"edge-embedder: image error: {exc}", file=sys.stderr)
        return EXIT_IMAGE
    except EdgeEmbedderError as exc:  # OptionsError and the rest: a usage problem
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("edge-embedder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"edge-embedder: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
