"""``edge-embedder demo``: the shipped model on the bundled photos, as a similarity matrix."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..exit_codes import ExitCode
from .common import add_model_args, make_embedder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="embed the bundled sample photos with the default model and print a similarity matrix")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..resources import sample_images
    from ..vision import Image

    names, images = [], []
    for name, path in sample_images().items():
        names.append(name)
        images.append(Image.create_from_file(path))
        if name == "chelsea":
            names.append("chelsea_mirror")
            images.append(Image.create_from_array(np.ascontiguousarray(images[-1].numpy_view()[:, ::-1])))
    with make_embedder(args) as embedder:
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
    return ExitCode.OK
