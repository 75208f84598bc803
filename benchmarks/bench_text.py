"""CLIP text towers on device: text-embedding latency (tokenize + invoke), zero-shot end to end, memory.

    python benchmarks/bench_text.py [--work /tmp/ee_text_bench] [--threads 1,2] [--runs 30] [--zero-shot-runs 15]
                                    [--warmup 3] [--reuse] [--no-memory] [--out benchmarks/results/text_embedding.md]

The issue-21 goals are checked from this one run (ratios within it): text
embedding of ten everyday captions (5-20 ids), 1 thread, eager / ours >= 3 at
fp32 and >= 7 at dynamic int8; zero-shot, one photo, 10 labels, label cache
off, 1 thread, ours / pipeline <= 0.5 at fp32 and <= 0.2 at dynamic int8.
With 1 thread every runtime computes on the calling thread, so the thread's
CPU time (``time.thread_time``) is reported next to the wall time: other
processes on a shared machine inflate wall time, not CPU time.

A random-weight CLIP ViT-B/32 with the real shapes (text tower: 49408-token
vocabulary, 12 layers of 512, 77 positions; latency does not depend on weight
values) is written with ``save_pretrained`` under ``--work`` with CLIP's real
tokenizer (``edge_embedder.convert.tiny_clip.CLIP_TOKENIZER``), and converted through
``edge_embedder.convert.convert``: the text tower to TFLite and ONNX in every
quantization, the image tower to TFLite fp32 and dynamic-int8. The parity
floor is not enforced (``min_cosine=-1``: every file is kept and its measured
minimum cosine is reported against the recipe's floor).

Text rows, interleaved in one process (every round calls every variant once,
on the ten captions in turn, each timed call right after an untimed one of
the same variant), at each of ``--threads``, after ``--warmup`` rounds:

* ``TextEmbedder.embed`` (tokenize + invoke + copy out) on each file; its
  tokenization share from ``last_timings``;
* transformers eager: ``CLIPTokenizerFast(text, return_tensors="pt")`` +
  ``CLIPModel.get_text_features`` (unpadded: the seed's route), ``torch.set_num_threads``;
* ONNX Runtime bare: ``CLIPTokenizerFast(text)`` (unpadded) +
  ``InferenceSession.run`` on the fp32 and dynamic-int8 ``.onnx`` (dynamic
  sequence axis: the caption's own length).

Memory (``--no-memory`` skips it): peak RSS of a fresh process that opens the
fp32 and dynamic-int8 text files and embeds a caption at every length the file
offers, three ways: the file as converters wrote it before (one ``[1, 77]``
signature, the rest stripped), every signature on LiteRT's ``CompiledModel``
with XNNPACK's in-memory weight cache (what ``TextEmbedder`` does), and every
signature on the classic interpreter's signature runners (no weight cache:
what runs where ``CompiledModel`` is missing).

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
#: Ten everyday captions of 5 to 20 ids (start and end of text included).
CAPTIONS = (
    "a photo of a cat",
    "two dogs playing in the snow",
    "a red car parked on the street",
    "a bowl of soup",
    "a man riding a bicycle down a hill",
    "a cup of coffee on a wooden table next to a laptop",
    "children playing football in a park on a sunny afternoon",
    "sunset over the sea",
    "an old lighthouse on a rocky coast with waves crashing against the rocks",
    "a plate of pasta with tomato sauce and basil",
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


def convert_all(ckpt: Path, work: Path, reuse: bool,
                quants: tuple[str, ...] = QUANTS) -> dict[tuple[str, str, str], dict[str, Any]]:
    """{(tower, fmt, quant): {"path", "report", "seconds"}} for every file the benchmark uses."""
    import json

    from edge_embedder.convert import convert, get_config

    wanted = [("text", fmt, q) for fmt in ("tflite", "onnx") for q in quants]
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
    for k in variants:
        extras[f"{k} #cpu"] = []
    for r in range(warmup + runs):
        for name, fn in variants.items():
            fn(r + 1)
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            fn(r)
            dt = (time.perf_counter_ns() - t0) / 1e6
            dc = (time.thread_time_ns() - c0) / 1e6
            if r >= warmup:
                times[name].append(dt)
                extras[f"{name} #cpu"].append(dc)
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
                ids = tok([CAPTIONS[r % len(CAPTIONS)]], truncation=True, max_length=77,
                          return_tensors="np")["input_ids"].astype(np.int32)
                return sess.run(None, {"input_ids": ids})

            name = f"ONNX Runtime bare {quant} (CLIPTokenizerFast + run) @{threads}"
            variants[name], meta[name] = bare, (threads, None)
    times, extras = _rounds(variants, runs, warmup, extra)
    rows = []
    for name, ts in times.items():
        threads, info = meta[name]
        eager = f"transformers eager (CLIPTokenizerFast + get_text_features) @{threads}"
        cpu = extras[f"{name} #cpu"]
        rows.append({
            "variant": name.rsplit(" @", 1)[0], "threads": threads, "p50": _p(ts, 50), "p90": _p(ts, 90),
            "cpu_p50": _p(cpu, 50) if threads == 1 else None,
            "tokenize_p50": _p(extras[name], 50) if name in extras else None,
            "eager_over": statistics.median(times[eager]) / _p(ts, 50),
            "eager_over_cpu": (statistics.median(extras[f"{eager} #cpu"]) / _p(cpu, 50)) if threads == 1 else None,
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
    times, extras = _rounds(variants, runs, warmup)
    rows = []
    for k, v in times.items():
        name, threads = k.rsplit(" @", 1)
        pipe_key = f"transformers pipeline('zero-shot-image-classification'), eager @{threads}"
        cpu = extras[f"{k} #cpu"]
        rows.append({"variant": name, "threads": int(threads), "p50": _p(v, 50), "p90": _p(v, 90),
                     "cpu_p50": _p(cpu, 50) if threads == "1" else None,
                     "over_pipeline": _p(v, 50) / statistics.median(times[pipe_key]),
                     "over_pipeline_cpu": (_p(cpu, 50) / statistics.median(extras[f"{pipe_key} #cpu"]))
                     if threads == "1" else None})
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


_MEMORY_CHILD = r"""
import json, sys, numpy as np
mode, path = sys.argv[1], sys.argv[2]
def hwm():
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024
from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions
from edge_embedder.core.backends import litert
if mode == 'interpreter':
    litert._CompiledSignatures.open = classmethod(lambda cls, *a: None)
e = TextEmbedder.create_from_options(TextEmbedderOptions(base_options=BaseOptions(model_asset_path=path,
                                                                                  num_threads=1)))
loaded = hwm()
shapes = e.backend.input_shapes
for shape in shapes:
    x = np.tile(e.tokenizer.encode('a photo of a cat').ids[: shape[1]], (shape[0], 1)).astype(np.int32)
    x[:, -1] = e.tokenizer.config.eos_id
    e.backend.run_input(x)
print(json.dumps({'api': e.backend.api, 'signatures': len(shapes), 'loaded_mib': loaded, 'peak_mib': hwm()}))
"""


def bench_profile(files: dict, runs: int = 10) -> dict[str, Any]:
    """Per-op profiles (1 thread) of the fp32 and dynamic-int8 .tflite at [1, 16] (where the ten captions run)
    and the machine's one-thread memory read bandwidth: is a short caption bound by streaming the weights?"""
    from ai_edge_litert.interpreter import Interpreter
    from edge_embedder.bench.op_profile import profile_tflite, read_bandwidth

    out: dict[str, Any] = {"read_gbps": read_bandwidth(), "profiles": []}
    for quant in ("none", "dynamic-int8"):
        path = files[("text", "tflite", quant)]["path"]
        keys = list(Interpreter(model_path=str(path)).get_signature_list())
        sub = keys.index("ids_1x16")
        print(f"profiling {path.name} [1, 16] ...", file=sys.stderr, flush=True)
        out["profiles"].append(profile_tflite(path, 1, runs, subgraph=sub))
        gc.collect()
    return out


def strip_to_one_signature(src: Path, dst: Path) -> Path:
    """``src`` as converters wrote text towers before: subgraph 0 (``[1, L]``) only, same metadata."""
    from edge_embedder.convert.litert_export import _pack, _unpack

    from edge_embedder.metadata import populate_tflite_metadata, read_tflite_metadata

    data = src.read_bytes()
    m = _unpack(data)
    m.subgraphs = m.subgraphs[:1]
    m.signatureDefs = m.signatureDefs[:1]
    dst.write_bytes(populate_tflite_metadata(_pack(m), read_tflite_metadata(data)))
    return dst


def bench_memory(files: dict, work: Path) -> list[dict[str, Any]]:
    """Peak RSS of a fresh process per (file, way of running it); see the module docstring."""
    import json

    rows = []
    for quant in ("none", "dynamic-int8"):
        path = files[("text", "tflite", quant)]["path"]
        one = strip_to_one_signature(path, work / f"clip_b32_text_{quant}.one_signature.tflite")
        for label, mode, p in (("one [1, 77] signature (as converted before)", "compiled", one),
                               ("every signature, CompiledModel + XNNPACK weight cache", "compiled", path),
                               ("every signature, Interpreter signature runners (no weight cache)", "interpreter", path)):
            out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, mode, str(p)], capture_output=True, text=True,
                                 timeout=900)
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if out.returncode != 0 or not line:
                raise RuntimeError(f"memory child failed ({label}): {out.stderr[-2000:]}")
            r = json.loads(line[-1])
            rows.append({"quant": quant, "way": label, "size_mib": p.stat().st_size / 2**20, **r})
    return rows


#: The issue's goals: (section, variant, threads, column, comparison, target).
GOALS = (
    ("text", "edge_embedder tflite none", 1, "eager_over", ">=", 3.0),
    ("text", "edge_embedder tflite dynamic-int8", 1, "eager_over", ">=", 7.0),
    ("zero-shot", "edge_embedder tflite none, label cache off", 1, "over_pipeline", "<=", 0.5),
    ("zero-shot", "edge_embedder tflite dynamic-int8, label cache off", 1, "over_pipeline", "<=", 0.2),
)


def render(text_rows: list[dict], zs_rows: list[dict], mem_rows: list[dict], args: argparse.Namespace,
           load_before: float, prof: dict[str, Any] | None = None) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    quants = "" if list(args.quants) == list(QUANTS) else f" --quants {' '.join(args.quants)}"
    cmd = (f"python benchmarks/bench_text.py --threads {','.join(map(str, args.threads))} --runs {args.runs} "
           f"--zero-shot-runs {args.zero_shot_runs} --warmup {args.warmup}" + (" --no-memory" if args.no_memory else "")
           + (" --no-profile" if args.no_profile else "") + quants)
    lines = [
        "# CLIP text tower at the text's own length: text embedding, zero-shot, memory",
        "",
        f"`{cmd}` on {_cpu()}; {time.strftime('%Y-%m-%d')}; load average (1 min) {load_before:.2f} before, "
        f"{load:.2f} after. Random-weight CLIP ViT-B/32 with the real shapes (text tower 63M parameters, real "
        "BPE vocabulary, 77 positions; latency does not depend on weight values; cosines on random weights only "
        "show that a recipe is sane). Every row is interleaved with the others in one process (each timed call "
        f"right after an untimed one of the same row); median (p50) and p90 of the timed calls after {args.warmup} "
        "warm-up rounds. `cpu p50`: CPU time of the calling thread (1 thread: all the work; other processes do not "
        "inflate it).",
        "",
        "## Goals (issue 21)",
        "",
        "| goal | measured (wall) | measured (thread CPU) | met |",
        "|---|---|---|---|",
    ]
    by = {(r["variant"], r["threads"]): r for r in text_rows + zs_rows}
    for section, variant, threads, col, op, target in GOALS:
        r = by.get((variant, threads))
        if r is None:
            continue
        wall, cpu = r[col], r.get(col + "_cpu")
        met = (wall >= target) if op == ">=" else (wall <= target)
        what = "eager / ours" if col == "eager_over" else "ours / pipeline"
        lines.append(f"| {section}: {variant}, {threads} thread: {what} {op} {target:g} | {wall:.2f} | "
                     f"{_fmt(cpu, '.2f')} | {'yes' if met else 'no'} |")
    lines += [
        "",
        "## Text embedding: tokenize + invoke, ten captions of 5-20 ids",
        "",
        "Each caption runs at the shortest length the file offers (`.tflite`: one signature per length; `.onnx`: "
        "dynamic sequence axis). `eager / ours` = transformers eager p50 / this row's p50 at the same thread count "
        "(eager runs each caption unpadded, at its own length). `tokenize`: `TextEmbedder`'s share (from "
        "`last_timings`). Cosine: minimum over the parity texts of the file (every bucket boundary included) "
        "through `TextEmbedder` vs transformers `get_text_features` (float32), with the recipe's floor.",
        "",
        "| variant | threads | p50 ms | p90 ms | cpu p50 ms | tokenize p50 ms | eager / ours | eager / ours (cpu) "
        "| size MiB | min cosine | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in text_rows:
        floor = "" if r["floor"] is None else f"{r['floor']} ({'pass' if r['min_cosine'] >= r['floor'] else 'FAIL'})"
        lines.append(f"| {r['variant']} | {r['threads']} | {r['p50']:.2f} | {r['p90']:.2f} | {_fmt(r['cpu_p50'], '.2f')} "
                     f"| {_fmt(r['tokenize_p50'], '.3f')} | {r['eager_over']:.2f} | {_fmt(r['eager_over_cpu'], '.2f')} "
                     f"| {_fmt(r['size_mib'], '.1f')} | {_fmt(r['min_cosine'], '.5f')} | {floor} |")
    lines += [
        "",
        "## Zero-shot: one photo (451x300, decoded once), 10 labels, end to end",
        "",
        "`ZeroShotImageClassifier.classify` with the label cache warm (an image embedding and a 10x512 product per "
        "call) and off (`label_cache_size=0`: the 10 labels' text embeddings, in as few calls as the file allows, "
        "+ 1 image embedding per call), next to transformers' pipeline (eager PyTorch, the same checkpoint; it "
        "pads the 10 labels to the longest and runs them in one batch). `ours / pipeline` = p50 / the pipeline's "
        "p50 at the same thread count.",
        "",
        "| variant | threads | p50 ms | p90 ms | cpu p50 ms | ours / pipeline | ours / pipeline (cpu) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['variant']} | {r['threads']} | {r['p50']:.2f} | {r['p90']:.2f} | {_fmt(r['cpu_p50'], '.2f')} | "
              f"{r['over_pipeline']:.2f} | {_fmt(r['over_pipeline_cpu'], '.2f')} |" for r in zs_rows]
    if prof:
        from edge_embedder.bench.op_profile import format_profile

        lines += [
            "",
            "## Where the time goes: per-op profile at [1, 16], 1 thread",
            "",
            "Every distinct op of the `[1, 16]` subgraph timed alone (`benchmarks/op_profile.py`, thread CPU time), "
            "times its count. A fully-connected layer with 16 rows reads its whole weight matrix for 16 rows of "
            f"work: `weights / FC time` below is the rate it streams them, next to this machine's one-thread memory "
            f"read bandwidth ({prof['read_gbps']:.1f} GB/s: summing a 256 MiB array, best of 5).",
            "",
        ]
        for p in prof["profiles"]:
            lines += format_profile(p)
            fc = next((r for r in p["ops"] if r["op"] == "FULLY_CONNECTED"), None)
            wb = p["facts"].get("static_weight_bytes", 0)
            if fc and wb:
                lines += ["", f"Fully-connected weights {wb / 1e6:.1f} MB in {fc['ms']:.2f} ms: "
                              f"{wb / 1e6 / fc['ms']:.1f} GB/s ({100 * wb / 1e9 / (fc['ms'] / 1e3) / prof['read_gbps']:.0f}% "
                              "of the read bandwidth)."]
            lines.append("")
    if mem_rows:
        lines += [
            "",
            "## Memory: peak RSS of a process that opens the text file and runs every shape it offers once",
            "",
            "| file | way of running it | signatures | file MiB | RSS after open MiB | peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        lines += [f"| text tflite {r['quant']} | {r['way']} ({r['api']}) | {r['signatures']} | {r['size_mib']:.1f} | "
                  f"{r['loaded_mib']:.0f} | {r['peak_mib']:.0f} |" for r in mem_rows]
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
    ap.add_argument("--quants", nargs="+", default=list(QUANTS), choices=QUANTS,
                    help="text-file quantizations (default all; fp32 and dynamic-int8 are always needed)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS section")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-op profile section")
    ap.add_argument("--out", default=None, help="write the markdown table here (default: print)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = make_checkpoint(work / "clip-b32")
    args.quants = [q for q in QUANTS if q in set(args.quants) | {"none", "dynamic-int8"}]
    files = convert_all(ckpt, work, args.reuse, tuple(args.quants))
    print("measuring text embedding ...", file=sys.stderr, flush=True)
    text_rows = bench_text(files, ckpt, args.threads, args.runs, args.warmup)
    gc.collect()
    print("measuring zero-shot ...", file=sys.stderr, flush=True)
    zs_rows = bench_zero_shot(files, ckpt, args.threads, args.zero_shot_runs, args.warmup)
    mem_rows = [] if args.no_memory else bench_memory(files, work)
    prof = None if args.no_profile else bench_profile(files)
    md = render(text_rows, zs_rows, mem_rows, args, load_before, prof)
    if args.out:
        from edge_embedder.files import atomic_write

        atomic_write(args.out, md.encode("utf-8"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
