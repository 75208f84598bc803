"""``edge-embedder similarity``: cosine similarity of two inputs: two images, an image and a text, or two texts."""

from __future__ import annotations

import argparse
from typing import Any

from ..argtypes import model_file
from ..exit_codes import ExitCode
from .common import CliError, add_image_args, add_threads_arg, make_embedder, make_text_embedder, processing_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "similarity", help="cosine similarity of two images, an image and a text, or two texts",
        description="Cosine similarity of two inputs: IMAGE IMAGE (--model), IMAGE --text TEXT (--model and "
        "--text-model from one checkpoint: the same embedding space), or --text A --text B (--text-model).")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--text", action="append", default=[], metavar="TEXT", help="a text input (repeatable)")
    p.add_argument("--model", "-m", "--image-model", dest="model", type=model_file, metavar="MODEL",
                   help="image model (.tflite or .onnx); default for two images: the shipped EfficientNet-Lite0 fp32")
    p.add_argument("--text-model", type=model_file, metavar="MODEL", help="text model (.tflite or .onnx): a CLIP text tower")
    add_threads_arg(p)
    add_image_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..containers import cosine_similarity
    from ..errors import EmbeddingSpaceMismatchError

    n_img, n_txt = len(args.images), len(args.text)
    if n_img + n_txt != 2:
        raise CliError(f"expected two inputs (IMAGE IMAGE, IMAGE --text TEXT, or --text A --text B), "
                       f"got {n_img} image(s) and {n_txt} text(s)", ExitCode.USAGE)
    if n_txt and not args.text_model:
        raise CliError("--text needs --text-model (a text model file)", ExitCode.USAGE)
    if n_img and n_txt and not args.model:
        raise CliError("an image and a text need --model (the image tower) and --text-model (the text tower "
                       "of the same checkpoint)", ExitCode.USAGE)
    ipo = processing_options(args)
    vectors = []
    spaces = []
    if n_img:
        with make_embedder(args) as embedder:
            vectors += [embedder.embed(path, ipo).embeddings[0] for path in args.images]
            spaces.append(("image", embedder.embedding_space_id))
    if n_txt:
        with make_text_embedder(args.text_model, args.threads) as text:
            if spaces and spaces[0][1] != text.embedding_space_id:
                raise EmbeddingSpaceMismatchError(
                    f"the image model and the text model are from different embedding spaces: image {spaces[0][1]!r}, "
                    f"text {text.embedding_space_id!r} (use both towers of one checkpoint)")
            vectors += [text.embed(t).embeddings[0] for t in args.text]
    print(f"{cosine_similarity(vectors[0], vectors[1]):.6f}")
    return ExitCode.OK
