"""``embed-dir`` images/s on photo folders: full decode vs shrink-on-load, and the code before it.

Builds (once, in a cache folder shared with ``bench_shrink_decode.py``)
``--count`` photo-like JPEGs of 12 MP (4000x3000) and of 2 MP (1632x1224),
quality 92, every 8th a portrait stored sideways with an EXIF orientation, then
runs :func:`edge_embedder.folder.embed_dir` (what ``edge-embedder embed-dir``
runs: its own thread split, decoding on background threads, writing the
``.npz``) over each folder, for each model:

* the shipped EfficientNet-Lite0 fp32 and int8 files (the MediaPipe recipe:
  shrink-on-load is asked for, and the recipe decodes fully, because it cannot
  meet the 0.99 cosine floor on a reduced decode; see
  ``benchmarks/results/shrink_accuracy.md``);
* the same two networks with a transformers-style recipe in their metadata
  (``pil``: shortest edge 224 bicubic + centre crop 224, CLIP's processor;
  and ``pil-stretch``: 224x224 bilinear, ViT's), for which shrink-on-load
  decodes at the DCT scale the recipe allows.

``full`` is ``embed_dir(..., shrink_on_load=False)``; ``shrink`` the default.
Each model runs full and shrink back to back, ``--repeats`` times, and the
median images/s is reported with the ratio within the pair. With
``--baseline DIR`` (a checkout of an older version, e.g. a ``git worktree``
of b1665c8), its ``embed_dir`` with its own defaults runs too, in a
subprocess, on the shipped models.

    python benchmarks/bench_embed_dir.py [--count 200] [--repeats 3] [--baseline DIR] [-o FILE.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_embedder.bench.bench_shrink_decode import SETS, build_set, cpu_info

from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.folder import default_thread_split, embed_dir
from edge_embedder.metadata import RECIPE_KEY, populate_tflite_metadata, read_tflite_metadata
from edge_embedder.resources import default_model_path

RECIPES = {
    "pil": {"sampler": "pil", "resize": "shortest_edge", "size": 224, "crop": [224, 224], "interpolation": "bicubic"},
    "pil-stretch": {"sampler": "pil", "resize": "stretch", "size": [224, 224], "interpolation": "bilinear"},
}

_BASELINE_SNIPPET = """
import sys, time
from pathlib import Path
from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from edge_embedder.folder import embed_dir
model, root, out = sys.argv[1:4]
opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model))
with ImageEmbedder.create_from_options(opts) as e:
    t0 = time.perf_counter()
    r = embed_dir(e, root, out, model_path=model, overwrite=True, progress=False)
    print(len(r.paths) if hasattr(r, 'paths') else r.embedded, time.perf_counter() - t0)
"""


def with_recipe(model: Path, recipe: dict, out: Path) -> Path:
    """A copy of ``model`` whose metadata names ``recipe`` (same network, same weights)."""
    data = model.read_bytes()
    md = read_tflite_metadata(data)
    if md is None:
        raise SystemExit(f"{model}: no metadata")
    custom = tuple((k, v) for k, v in md.custom_metadata if k != RECIPE_KEY)
    custom += ((RECIPE_KEY, json.dumps(recipe, sort_keys=True).encode()),)
    out.write_bytes(populate_tflite_metadata(data, dataclasses.replace(md, custom_metadata=custom)))
    return out


def run_embed_dir(model: Path, root: Path, work: Path, shrink: bool) -> tuple[float, str]:
    """(images/s, decode tag) of one embed_dir run with the CLI's thread split."""
    threads, _ = default_thread_split()
    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model, num_threads=threads))
    out = work / "out.npz"
    with ImageEmbedder.create_from_options(opts) as e:
        t0 = time.perf_counter()
        report = embed_dir(e, root, out, model_path=model, overwrite=True, progress=False, shrink_on_load=shrink)
        dt = time.perf_counter() - t0
        tag = e.decode_tag(shrink)
    if report.skipped:
        raise SystemExit(f"{root}: {len(report.skipped)} files skipped: {report.skipped[:2]}")
    return report.embedded / dt, tag


def run_baseline(baseline: Path, model: Path, root: Path, work: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(baseline)}
    r = subprocess.run([sys.executable, "-c", _BASELINE_SNIPPET, str(model), str(root), str(work / "base.npz")],
                       cwd=baseline, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"baseline failed: {r.stderr[-2000:]}")
    n, dt = r.stdout.split()[-2:]
    return int(n) / float(dt)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sets", nargs="+", default=["12MP", "2MP"], choices=[k for k, v in SETS.items()])
    ap.add_argument("--baseline", type=Path, default=None, help="a checkout of an older version to compare with")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_shrink_photos"))
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)

    cache = Path(args.cache)
    folders = {}
    for name in args.sets:
        w, h, sigma = SETS[name]
        seed = list(SETS).index(name)
        paths = build_set(cache / name, args.count, (w, h), sigma, seed=seed)
        folder = cache / f"{name}-embed-dir-{args.count}"
        folder.mkdir(exist_ok=True)
        for p in paths:  # a folder of exactly --count files (the cache may hold more)
            link = folder / p.name
            if not link.exists():
                os.link(p, link)
        folders[name] = folder

    work = Path(tempfile.mkdtemp(prefix="edge_embedder_bench_embed_dir_"))
    models = {"fp32": default_model_path("fp32"), "int8": default_model_path("int8")}
    for variant in ("fp32", "int8"):
        for rname, recipe in RECIPES.items():
            models[f"{variant} {rname}"] = with_recipe(models[variant], recipe, work / f"{variant}_{rname}.tflite")

    cpu, flags = cpu_info()
    threads, workers = default_thread_split()
    lines: list[str] = []
    w = lines.append
    cmd = "python benchmarks/bench_embed_dir.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    w("# embed-dir images/s: full decode vs shrink-on-load\n")
    w(f"`{cmd}`, {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, Python {platform.python_version()}; "
      f"embed_dir's thread split here: {threads} interpreter thread(s) + {workers} decode workers.\n")
    w(f"CPU flags (lscpu, SIMD subset): `{flags}`\n")
    load_start = os.getloadavg()
    head = ["set", "model (recipe)", "decode with shrink-on-load", "full img/s", "shrink img/s", "shrink / full"]
    if args.baseline:
        head += ["before (b1665c8) img/s", "shrink / before"]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    for sname, folder in folders.items():
        for mname, model in models.items():
            full, shrink, before = [], [], []
            tag = ""
            for _ in range(args.repeats):
                full.append(run_embed_dir(model, folder, work, False)[0])
                rate, tag = run_embed_dir(model, folder, work, True)
                shrink.append(rate)
                if args.baseline and mname in ("fp32", "int8"):
                    before.append(run_baseline(args.baseline, model, folder, work))
            f, s = statistics.median(full), statistics.median(shrink)
            recipe = "mediapipe" if mname in ("fp32", "int8") else mname.split()[1]
            cells = [sname, f"{mname.split()[0]} ({recipe})", tag, f"{f:.1f}", f"{s:.1f}", f"{s / f:.2f}x"]
            if args.baseline:
                b = statistics.median(before) if before else None
                cells += [f"{b:.1f}" if b else "", f"{s / b:.2f}x" if b else ""]
            w("| " + " | ".join(cells) + " |")
            print(" | ".join(cells), file=sys.stderr, flush=True)
    w("")
    w(f"Median of {args.repeats} runs per cell; each run embeds the whole folder ({args.count} files) and writes "
      "the .npz. Load average (1, 5, 15 min) at the start "
      f"{', '.join(f'{v:.2f}' for v in load_start)}, at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
      f"({os.cpu_count()} CPUs).")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
