"""Full-size conversions: ViT-B/16 (224) and CLIP ViT-B/32, every format x quantization.

    python benchmarks/convert_full_size.py [--work /tmp/ee_bench] [--archs vit clip]
                                           [--formats tflite onnx] [--quant none fp16 dynamic-int8 int8]

Random-weight checkpoints with the real configurations (latency does not
depend on weight values; accuracy on random weights only shows whether a
recipe is sane) are written with ``save_pretrained`` under ``--work`` (not in
the repository: ~330 MB per fp32 file) and converted through the same
``edge_embedder.convert.convert`` path as ``edge-embedder convert``: the checkpoint is
loaded once per architecture, the transformers reference computed once.

For each file: size, latency with 2 threads (median of ``--runs`` after
``--warmup``), both ``ImageEmbedder.embed()`` on a 451x300 photo (decoding
excluded, preprocessing included) and the bare runtime call (LiteRT
``invoke()`` / ONNX Runtime ``run()``), and the parity figure: the minimum
cosine over the parity photos against the float32 transformers reference,
with the recipe's floor. The parity floor is not enforced here (files are
kept and reported), so a failing recipe shows up in the table instead of
stopping the run. Writes the table to ``--out`` (the repository's is
``benchmarks/results/convert_full_size.md``).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = "convert_full_size.md"  # the repository keeps its table in benchmarks/results/
TITLES = {"vit": "ViT-B/16 (224)", "clip": "CLIP ViT-B/32"}


def make_checkpoint(arch: str, path: Path) -> Path:
    """A random-weight full-size checkpoint with its image processor config."""
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    if arch == "vit":
        ViTModel(ViTConfig()).eval().save_pretrained(path)  # google/vit-base-patch16-224 shape
        ViTImageProcessor().save_pretrained(path)
    else:
        cfg = CLIPConfig(vision_config={"patch_size": 32}, projection_dim=512)  # openai/clip-vit-base-patch32 shape
        CLIPModel(cfg).eval().save_pretrained(path)
        CLIPImageProcessor().save_pretrained(path)
    return path


def _median_ms(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def measure(path: Path, photo: np.ndarray, runs: int, warmup: int, threads: int = 2) -> tuple[float, float]:
    """(embed() ms, bare runtime ms), ``threads`` threads."""
    from edge_embedder import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path), num_threads=threads))
    with ImageEmbedder.create_from_options(opts) as emb:
        embed_ms = _median_ms(lambda: emb.embed(photo), runs, warmup)
    data = path.read_bytes()
    if path.suffix == ".onnx":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
        x = np.zeros([1] + [int(d) for d in inp.shape[1:]], dtype)
        bare = _median_ms(lambda: sess.run(None, {inp.name: x}), runs, warmup)
    else:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_content=data, num_threads=threads)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        bare = _median_ms(it.invoke, runs, warmup)
    return embed_ms, bare


def _row(rows, args, cfg, arch, fmt, quant, out, res, secs, photo) -> None:
    if args.convert_only:
        embed_ms = bare_ms = float("nan")
    else:
        embed_ms, bare_ms = measure(out, photo, args.runs, args.warmup)
    floor = cfg.floor(quant)
    cos = res.report["min_cosine"]
    rows.append((arch, fmt, quant, res.size_bytes / 2**20, embed_ms, bare_ms, cos,
                 "pass" if cos >= floor else f"FAIL (< {floor})", secs))
    print(f"  [{arch} {fmt} {quant}] {res.size_bytes / 2**20:.1f} MiB, embed {embed_ms:.1f} ms, "
          f"bare {bare_ms:.1f} ms, min cos {cos:.6f}, {secs:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/ee_bench", help="checkpoints and converted files go here")
    ap.add_argument("--archs", nargs="+", default=["vit", "clip"], choices=list(TITLES))
    ap.add_argument("--formats", nargs="+", default=["tflite", "onnx"], choices=["tflite", "onnx"])
    ap.add_argument("--quant", nargs="+", default=["none", "fp16", "dynamic-int8", "int8"],
                    choices=["none", "fp16", "dynamic-int8", "int8"])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default=RESULTS, help="markdown table file (default ./convert_full_size.md)")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse files (and their .parity.json) already converted under --work; measure only")
    ap.add_argument("--convert-only", action="store_true", help="convert, do not measure latency")
    args = ap.parse_args(argv)

    from edge_embedder.convert import convert, get_config
    from edge_embedder.convert.errors import ConversionError
    from edge_embedder.convert.photos import photo as _photo

    from edge_embedder.resources import default_model_path

    work = Path(args.work)
    photo = _photo("chelsea", None)
    rows = []
    # Machine-speed yardstick: the shipped EfficientNet-Lite0 fp32 (its bare invoke time on the
    # machine is in benchmarks/results/); shared or throttled CPUs show up here.
    yardstick = default_model_path("fp32")
    yard_ms = measure(yardstick, photo, 50, 10)[1] if yardstick.is_file() and not args.convert_only else None
    for arch in args.archs:
        cfg = get_config(arch)
        t0 = time.perf_counter()
        ckpt = make_checkpoint(arch, work / f"{arch}-ckpt")
        print(f"[{arch}] checkpoint {ckpt} ready ({time.perf_counter() - t0:.1f} s); loading ...", file=sys.stderr)
        loaded = None
        cache: dict = {}
        for fmt in args.formats:
            for quant in args.quant:
                out = work / f"{arch}_{quant}.{fmt}"
                report_path = out.with_name(out.name + ".parity.json")
                t0 = time.perf_counter()
                if args.reuse and out.is_file() and report_path.is_file():
                    import json

                    report = json.loads(report_path.read_text())
                    res = type("Reused", (), {"size_bytes": out.stat().st_size, "report": report})()
                    secs = float(report.get("convert_seconds", float("nan")))
                    _row(rows, args, cfg, arch, fmt, quant, out, res, secs, photo)
                    continue
                if loaded is None:
                    loaded = cfg.load(str(ckpt))
                try:
                    res = convert(arch, str(ckpt), output=out, fmt=fmt, quantize=quant, min_cosine=-1.0,
                                  loaded=loaded, reference_cache=cache,
                                  progress=lambda m, tag=f"{arch} {fmt} {quant}": print(f"  [{tag}] {m}", file=sys.stderr))
                except ConversionError as exc:
                    print(f"  [{arch} {fmt} {quant}] FAILED: {exc}", file=sys.stderr)
                    rows.append((arch, fmt, quant, None, None, None, None, str(exc)[:80], None))
                    continue
                secs = time.perf_counter() - t0
                _row(rows, args, cfg, arch, fmt, quant, out, res, secs, photo)
                gc.collect()
        del loaded, cache
        gc.collect()

    lines = [
        "# Full-size conversions: file size, latency (2 threads), cosine vs the fp32 transformers reference",
        "",
        f"`python benchmarks/convert_full_size.py` on {platform.machine()} {platform.processor() or ''}"
        f" ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}, load average at the end "
        f"{os.getloadavg()[0]:.2f}. Random weights with the real shapes "
        "(latency does not depend on weight values; cosines on random weights only show that a recipe is sane). "
        "Latency: median of "
        f"{args.runs} runs after {args.warmup} warm-up; `embed()` = `ImageEmbedder.embed` on a 451x300 photo "
        "(preprocessing included), bare = LiteRT `invoke()` / ONNX Runtime `run()`. Cosine: minimum over 5 "
        "real photos (scikit-image) of the file run through `ImageEmbedder` vs the float32 transformers route "
        "(ViT: image-feature-extraction pipeline, pool=True; CLIP: get_image_features).",
        "",
        (f"Machine-speed yardstick: the shipped `models/efficientnet_lite0_fp32.tflite` measured {yard_ms:.1f} ms "
         "bare (2.9 ms on a quiet machine of the same kind): compare latencies within this table."
         if yard_ms else ""),
        "",
        "| architecture | format | quantization | size MiB | embed() ms | bare ms | min cosine vs fp32 | floor | convert s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, fmt, quant, size, emb, bare, cos, verdict, secs in rows:
        if size is None:
            lines.append(f"| {TITLES[arch]} | {fmt} | {quant} | - | - | - | - | {verdict} | - |")
            continue
        lines.append(f"| {TITLES[arch]} | {fmt} | {quant} | {size:.1f} | {emb:.1f} | {bare:.1f} | {cos:.5f} | "
                     f"{verdict} | {secs:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
