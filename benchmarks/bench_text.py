"""CLIP text towers on device: text-embedding latency (tokenize + invoke) and zero-shot end to end.

    python benchmarks/bench_text.py [--work /tmp/ee_text_bench] [--threads 1,2] [--runs 30] [--zero-shot-runs 15]
                                    [--warmup 3] [--reuse] [--out benchmarks/results/text_embedding.md]

A random-weight CLIP ViT-B/32 with the real shapes (text tower: 49408-token
vocabulary, 12 layers of 512, 77 positions; latency does not depend on weight
values) is written with ``save_pretrained`` under ``--work`` with CLIP's real
tokenizer (``edge_embedder.convert.tiny_clip.CLIP_TOKENIZER``), and converted through
``edge_embedder.convert.convert``: the text tower to TFLite and ONNX in every
quantization, the image tower to TFLite fp32 and dynamic-int8. The parity
floor is not enforced (``min_cosine=-1``: every file is kept and its measured
minimum cosine is reported against the recipe's floor).

Text rows, interleaved in one process (every round calls every variant once,
on captions of 4 to 60 tokens in turn, each timed call right after an
untimed one of the same variant), at each of ``--threads``, after ``--warmup`` rounds:

* ``TextEmbedder.embed`` (tokenize + invoke + copy out) on each file; its
  tokenization share from ``last_timings``;
* transformers eager: ``CLIPTokenizerFast(text, return_tensors="pt")`` +
  ``CLIPModel.get_text_features`` (unpadded: the seed's route), ``torch.set_num_threads``;
* ONNX Runtime bare: ``CLIPTokenizerFast(text, padding="max_length")`` +
  ``InferenceSession.run`` on the fp32 and dynamic-int8 ``.onnx``.

Zero-shot rows: ``ZeroShotImageClassifier.classify`` of a decoded 451x300
photo against 10 labels, with the label cache warm (one image embedding and a
16x512 product) and with ``label_cache_size=0`` (10 text embeddings per call),
for the fp32 and the dynamic-int8 TFLite pairs, next to transformers'
``pipeline("zero-shot-image-classification")``. Ratios are within this one
run; absolute times drift on a shared machine. PyTorch's 2-thread rows are
the ones most hurt by other processes on a 2-core machine (its OpenMP
threads wait for each other at every op); the 1-thread rows compare the
runtimes without that effect.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from edge_embedder.convert.tiny_clip import CLIP_TOKENIZER

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = CLIP_TOKENIZER
QUANTS = ("none", "fp16", "dynamic-int8", "int8")
CAPTIONS = (
    "a photo of a cat",
    "a photo of a dog",
    "a photo of a car",
    "a small grey cat with white paws sleeping on a wooden chair next to an open window in the morning sun",
    "On a quiet morning in the old harbour town, a small grey cat with white paws walked slowly along the stone "
    "wall above the water, stopping now and then to watch the fishing boats come back with their nets.",
)
LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_checkpoint(path: Path) -> Path:
    """A random-weight CLIP ViT-B/32 (openai/clip-vit-base-patch32 shapes) with CLIP's real tokenizer."""
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return path
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

    torch.manual_seed(0)
    CLIPModel(CLIPConfig(vision_config={"patch_size": 32}, projection_dim=512)).eval().save_pretrained(path)
    CLIPImageProcessor().save_pretrained(path)
    CLIPTokenizerFast.from_pretrained(str(TOKENIZER_DIR)).save_pretrained(path)
    return path


def convert_all(ckpt: Path, work: Path, reuse: bool) -> dict[tuple[str, str, str], dict[str, Any]]:
    """{(tower, fmt, quant): {"path", "report", "seconds"}} for every file the benchmark uses."""
    import json

    from edge_embedder.convert import convert, get_config

    wanted = [("text", fmt, q) for fmt in ("tflite", "onnx") for q in QUANTS]
    wanted += [("image", "tflite", "none"), ("image", "tflite", "dynamic-int8")]
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    loaded: dict[str, Any] = {}
    refs: dict[str, dict] = {}
    for tower, fmt, quant in wanted:
        path = work / f"clip_b32_{tower}_{quant}.{fmt}"
        report_path = path.with_name(path.name + ".parity.json")
        task = {"text": "text-embedding", "image": "image-embedding"}[tower]
        floor = get_config("clip", task).floor(quant)  # reported; not enforced (min_cosine=-1 keeps every file)
        if reuse and path.is_file() and report_path.is_file():
            out[(tower, fmt, quant)] = {"path": path, "report": json.loads(report_path.read_text()), "seconds": None,
                                        "floor": floor}
            continue
        if tower not in loaded:
            print(f"loading the {tower} tower ...", file=sys.stderr, flush=True)
            loaded[tower] = get_config("clip", task).load(str(ckpt))
            refs[tower] = {}
        t0 = time.perf_counter()
        res = convert("clip", None, output=path, task=task, fmt=fmt, quantize=quant, loaded=loaded[tower],
                      reference_cache=refs[tower], min_cosine=-1.0,
                      progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        out[(tower, fmt, quant)] = {"path": path, "report": res.report, "seconds": time.perf_counter() - t0,
                                    "floor": floor}
        print(f"{path.name}: {res.size_bytes / 2**20:.1f} MiB, min cosine {res.report['min_cosine']:.5f}",
              file=sys.stderr, flush=True)
    loaded.clear()
    gc.collect()
    return out


def _rounds(variants: dict[str, Callable[[int], Any]], runs: int, warmup: int,
            extra: dict[str, Callable[[], float]] | None = None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time every variant once per round (interleaved); per-variant times in ms (and extra per-call figures).

    Each timed call follows an untimed one of the same variant, so thread pools
    that spin after a run (ONNX Runtime's, OpenMP's) have settled and caches hold
    the variant's own weights: variants do not pay for their neighbours.
    """
    times: dict[str, list[float]] = {k: [] for k in variants}
    extras: dict[str, list[float]] = {k: [] for k in (extra or {})}
    for r in range(warmup + runs):
        for name, fn in variants.items():
            fn(r + 1)
            t0 = time.perf_counter_ns()
            fn(r)
            dt = (time.perf_counter_ns() - t0) / 1e6
            if r >= warmup:
                times[name].append(dt)
                if extra and name in extra:
                    extras[name].append(extra[name]())
    return times, extras


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_text(files: dict, ckpt: Path, thread_counts: list[int], runs: int, warmup: int) -> list[dict[str, Any]]:
    import onnxruntime as ort
    import torch
    from transformers import CLIPModel, CLIPTokenizerFast

    from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions

    tok = CLIPTokenizerFast.from_pretrained(str(ckpt))
    model = CLIPModel.from_pretrained(str(ckpt)).eval()
    embedders: list[Any] = []
    variants: dict[str, Callable[[int], Any]] = {}
    extra: dict[str, Callable[[], float]] = {}
    meta: dict[str, tuple[int, Any]] = {}
    for threads in thread_counts:
        for (tower, fmt, quant), info in files.items():
            if tower != "text":
                continue
            name = f"edge_embedder {fmt} {quant} @{threads}"
            e = TextEmbedder.create_from_options(TextEmbedderOptions(
                base_options=BaseOptions(model_asset_path=str(info["path"]), num_threads=threads)))
            embedders.append(e)
            variants[name] = lambda r, e=e: e.embed(CAPTIONS[r % len(CAPTIONS)])
            extra[name] = lambda e=e: e.last_timings.preprocess_ms
            meta[name] = (threads, info)

        def eager(r: int, threads: int = threads) -> Any:
            torch.set_num_threads(threads)
            with torch.no_grad():
                return model.get_text_features(**tok([CAPTIONS[r % len(CAPTIONS)]], return_tensors="pt"))

        name = f"transformers eager (CLIPTokenizerFast + get_text_features) @{threads}"
        variants[name], meta[name] = eager, (threads, None)
        for quant in ("none", "dynamic-int8"):
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
            sess = ort.InferenceSession(str(files[("text", "onnx", quant)]["path"]), so,
                                        providers=["CPUExecutionProvider"])

            def bare(r: int, sess: Any = sess) -> Any:
                ids = tok([CAPTIONS[r % len(CAPTIONS)]], padding="max_length", max_length=77, truncation=True,
                          return_tensors="np")["input_ids"].astype(np.int32)
                return sess.run(None, {"input_ids": ids})

            name = f"ONNX Runtime bare {quant} (CLIPTokenizerFast + run) @{threads}"
            variants[name], meta[name] = bare, (threads, None)
    times, extras = _rounds(variants, runs, warmup, extra)
    rows = []
    for name, ts in times.items():
        threads, info = meta[name]
        base = statistics.median(times[f"edge_embedder tflite none @{threads}"])
        rows.append({
            "variant": name.rsplit(" @", 1)[0], "threads": threads, "p50": _p(ts, 50), "p90": _p(ts, 90),
            "tokenize_p50": _p(extras[name], 50) if name in extras else None,
            "x_fp32": _p(ts, 50) / base,
            "size_mib": info["path"].stat().st_size / 2**20 if info else None,
            "min_cosine": info["report"]["min_cosine"] if info else None,
            "floor": info["floor"] if info else None,
        })
    for e in embedders:
        e.close()
    return rows


def bench_zero_shot(files: dict, ckpt: Path, thread_counts: list[int], runs: int, warmup: int) -> list[dict[str, Any]]:
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel, CLIPTokenizerFast, pipeline

    from edge_embedder import BaseOptions, ZeroShotImageClassifier, ZeroShotImageClassifierOptions
    from edge_embedder.resources import sample_images

    photo = np.asarray(Image.open(sample_images()["coffee"]).convert("RGB"))
    pil = Image.fromarray(photo)
    labels = list(LABELS)
    classifiers = []
    variants: dict[str, Callable[[int], Any]] = {}
    pipe = pipeline("zero-shot-image-classification", model=CLIPModel.from_pretrained(str(ckpt)).eval(),
                    tokenizer=CLIPTokenizerFast.from_pretrained(str(ckpt)),
                    image_processor=AutoImageProcessor.from_pretrained(str(ckpt), backend="pil"))
    for threads in thread_counts:
        for quant in ("none", "dynamic-int8"):
            for cache in (True, False):
                opts = ZeroShotImageClassifierOptions(
                    image_base_options=BaseOptions(model_asset_path=str(files[("image", "tflite", quant)]["path"]),
                                                   num_threads=threads),
                    text_base_options=BaseOptions(model_asset_path=str(files[("text", "tflite", quant)]["path"]),
                                                  num_threads=threads),
                    label_cache_size=1024 if cache else 0)
                zs = ZeroShotImageClassifier.create_from_options(opts)
                classifiers.append(zs)
                variants[f"edge_embedder tflite {quant}, label cache {'warm' if cache else 'off'} @{threads}"] = \
                    lambda r, zs=zs: zs.classify(photo, labels)

        def reference(r: int, threads: int = threads) -> Any:
            torch.set_num_threads(threads)
            return pipe(pil, candidate_labels=labels)

        variants[f"transformers pipeline('zero-shot-image-classification'), eager @{threads}"] = reference
    times, _ = _rounds(variants, runs, warmup)
    rows = []
    for k, v in times.items():
        name, threads = k.rsplit(" @", 1)
        base = statistics.median(times[f"edge_embedder tflite none, label cache warm @{threads}"])
        rows.append({"variant": name, "threads": int(threads), "p50": _p(v, 50), "p90": _p(v, 90),
                     "x_warm_fp32": _p(v, 50) / base})
    for zs in classifiers:
        zs.close()
    return rows


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = info.get("Flags", "").split()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return (f"{info.get('Model name', '?').strip()}, {info.get('CPU(s)', '?').strip()} CPUs, "
            f"{info.get('Architecture', '?').strip()}; SIMD flags: {' '.join(simd) or 'none of avx2/avx512/vnni'}")


def _fmt(v: Any, spec: str) -> str:
    return "" if v is None else format(v, spec)


def render(text_rows: list[dict], zs_rows: list[dict], args: argparse.Namespace) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# CLIP text tower: text-embedding latency and zero-shot end to end",
        "",
        f"`python benchmarks/bench_text.py --threads {','.join(map(str, args.threads))} --runs {args.runs} --zero-shot-runs "
        f"{args.zero_shot_runs} --warmup {args.warmup}` on "
        f"{_cpu()}; {time.strftime('%Y-%m-%d')}, load average at the end {load:.2f} (a shared machine: compare "
        "ratios within this table, absolute times drift). Random-weight CLIP ViT-B/32 with the real shapes "
        "(text tower 63M parameters, 77 tokens; latency does not depend on weight values; cosines on random "
        "weights only show that a recipe is sane). Every row is interleaved with the others in one process "
        "(each timed call right after an untimed one of the same row); median (p50) and "
        f"p90 of the timed calls after {args.warmup} warm-up rounds.",
        "",
        "## Text embedding: tokenize + invoke",
        "",
        "Captions of 4 to 60 tokens in turn. `tokenize` is `TextEmbedder`'s share (from `last_timings`: "
        "tokenization and writing the ids). `x tflite fp32` = p50 / edge_embedder tflite fp32 p50 at the same "
        "thread count. Cosine: minimum over the 8 parity captions of "
        "the file through `TextEmbedder` vs transformers `get_text_features` (float32), with the recipe's floor.",
        "",
        "| variant | threads | p50 ms | p90 ms | tokenize p50 ms | x tflite fp32 | size MiB | min cosine | floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in text_rows:
        floor = "" if r["floor"] is None else f"{r['floor']} ({'pass' if r['min_cosine'] >= r['floor'] else 'FAIL'})"
        lines.append(f"| {r['variant']} | {r['threads']} | {r['p50']:.2f} | {r['p90']:.2f} | {_fmt(r['tokenize_p50'], '.3f')} | "
                     f"{r['x_fp32']:.2f} | {_fmt(r['size_mib'], '.1f')} | {_fmt(r['min_cosine'], '.5f')} | {floor} |")
    lines += [
        "",
        "## Zero-shot: one photo (451x300, decoded once), 10 labels, end to end",
        "",
        "`ZeroShotImageClassifier.classify` with the label cache warm (the labels' text embeddings computed "
        "once before: an image embedding and a 10x512 product per call) and off (`label_cache_size=0`: 10 text "
        "embeddings + 1 image embedding per call), next to transformers' pipeline (eager PyTorch, the same "
        "checkpoint). `x warm fp32` = p50 / the fp32 pair with a warm cache at the same thread count.",
        "",
        "| variant | threads | p50 ms | p90 ms | x warm fp32 |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['variant']} | {r['threads']} | {r['p50']:.2f} | {r['p90']:.2f} | {r['x_warm_fp32']:.2f} |"
              for r in zs_rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edge_embedder.argtypes import int_list

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/ee_text_bench", help="checkpoint and converted files (~1.5 GB)")
    ap.add_argument("--threads", type=int_list, default=[1, 2], help="thread counts, e.g. 1,2 (default)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--zero-shot-runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="keep files converted by an earlier run")
    ap.add_argument("--out", default=None, help="write the markdown table here (default: print)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = make_checkpoint(work / "clip-b32")
    files = convert_all(ckpt, work, args.reuse)
    print("measuring text embedding ...", file=sys.stderr, flush=True)
    text_rows = bench_text(files, ckpt, args.threads, args.runs, args.warmup)
    gc.collect()
    print("measuring zero-shot ...", file=sys.stderr, flush=True)
    zs_rows = bench_zero_shot(files, ckpt, args.threads, args.zero_shot_runs, args.warmup)
    md = render(text_rows, zs_rows, args)
    if args.out:
        from edge_embedder.files import atomic_write

        atomic_write(args.out, md.encode("utf-8"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
