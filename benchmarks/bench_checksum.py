"""What verifying a model file's checksum costs, against the cold start it is part of.

    python benchmarks/bench_checksum.py [--rounds 15] [--full-size] [--work /tmp/ee_checksum_bench]
                                        [-o benchmarks/results/checksum.md]

For each file, in one process, interleaved round by round (the file is in the
page cache after the first round, as on a device that starts the same model
again):

* ``verify``: ``edge_embedder.metadata.verify_checksum`` on the file's bytes,
  with the default threads (min(4, cores) from 32 MiB on) and with one thread;
* ``cold start``: creating the task from the path (read the file, verify the
  checksum, build the interpreter, check the contract; text towers: build the
  tokenizer and run the load-time probe) and its first call (a 640x480 photo,
  or a caption), for the file and for the same bytes with the checksum entry
  renamed (a file without the record, which is not verified);

then the medians, the cold start the verification adds (it runs on a thread
while the interpreter is built) and the share of the cold start it would be if
it ran first. Files: the
shipped models, the tiny CLIP text tower, and with ``--full-size`` a random-weight
CLIP ViT-B/32 text tower (real shapes, 63M parameters) as fp32 and int8 TFLite
and fp32 ONNX, converted under ``--work`` (about 1 GB, several minutes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> tuple[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor(), ""
    name = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    keep = [f for f in flags if f in ("sha_ni", "avx2", "avx512f", "avx512_vnni", "aes", "pclmulqdq", "vpclmulqdq")]
    return name, " ".join(keep)


def files(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(label, path, task) of every file measured."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = [(f"shipped {p.name}", p, "classifier" if "classifier" in p.name else "image")
           for p in sorted((ROOT / "models").glob("*.tflite"))]
    tiny = work / "tiny-clip-text.tflite"
    if not tiny.is_file():
        from edge_embedder.convert import convert, tiny_clip

        tiny_clip.main([str(work / "tiny-clip")])
        convert("clip", str(work / "tiny-clip"), output=tiny, task="text-embedding", progress=lambda m: None)
    out.append(("tiny CLIP text tower", tiny, "text"))
    if args.full_size:
        from edge_embedder.bench.bench_text import make_checkpoint
        from edge_embedder.convert import convert, get_config

        ckpt = make_checkpoint(work / "clip-b32")
        loaded = None
        refs: dict = {}
        for fmt, quant in (("tflite", "none"), ("tflite", "int8"), ("onnx", "none")):
            path = work / f"clip_b32_text_{quant}.{fmt}"
            if not path.is_file():
                if loaded is None:
                    loaded = get_config("clip", "text-embedding").load(str(ckpt))
                convert("clip", None, output=path, task="text-embedding", fmt=fmt, quantize=quant, loaded=loaded,
                        reference_cache=refs, min_cosine=-1.0, progress=lambda m: print(f"  {m}", file=sys.stderr))
            out.append((f"CLIP B/32 text tower {fmt} {'fp32' if quant == 'none' else quant}", path, "text"))
    return out


def _task_runner(path: Path, task: str) -> Callable[[], Any]:
    """Create the task from ``path``, run its first call, close it."""
    from edge_embedder import (
        BaseOptions,
        ImageClassifier,
        ImageClassifierOptions,
        ImageEmbedder,
        ImageEmbedderOptions,
        TextEmbedder,
        TextEmbedderOptions,
    )

    base = BaseOptions(model_asset_path=str(path), num_threads=2)
    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    def run() -> Any:
        if task == "text":
            with TextEmbedder.create_from_options(TextEmbedderOptions(base_options=base)) as t:
                return t.embed("a photo of a cat")
        if task == "classifier":
            with ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base)) as c:
                return c.classify(photo)
        with ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base)) as e:
            return e.embed(photo)

    return run


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (user + system): what other processes' load does not inflate."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def without_record(data: bytes) -> bytes:
    """The same file without its checksum record (the entry renamed, same length): what a file converted before
    the checksum existed costs to open."""
    return data.replace(b"edge_embedder.checksum", b"edge_embedder.xxxxxxxx")


def measure(path: Path, task: str, rounds: int, work: Path) -> dict[str, Any]:
    from edge_embedder.metadata import CHECKSUM_RECORD_PREFIX, find_checksum_record, model_checksum, verify_checksum

    data = path.read_bytes()
    digest = verify_checksum(data)
    plain = work / f"unsealed_{path.name}"
    plain.write_bytes(without_record(data))
    runs = {"cold on": _task_runner(path, task), "cold off": _task_runner(plain, task)}
    times: dict[str, list[float]] = {"verify": [], "verify 1 thread": [], "cold on": [], "cold off": [],
                                     "cpu cold on": [], "cpu cold off": []}
    for run in runs.values():
        run()  # warm the page cache and the imports
    for r in range(rounds):
        t0 = time.perf_counter()
        verify_checksum(data)
        times["verify"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pos = find_checksum_record(data)
        if pos is not None:
            model_checksum(data, pos + len(CHECKSUM_RECORD_PREFIX), threads=1)
        times["verify 1 thread"].append(time.perf_counter() - t0)
        for variant in (("cold on", "cold off") if r % 2 == 0 else ("cold off", "cold on")):
            c0 = _cpu_seconds()
            t0 = time.perf_counter()
            runs[variant]()
            times[variant].append(time.perf_counter() - t0)
            times[f"cpu {variant}"].append(_cpu_seconds() - c0)
    plain.unlink()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    on, off = np.array(times["cold on"]), np.array(times["cold off"])
    con, coff = np.array(times["cpu cold on"]), np.array(times["cpu cold off"])
    return {"bytes": len(data), "sealed": digest is not None, **med,
            "share": med["verify"] / med["cold on"] if med["cold on"] else float("nan"),
            "added": float(np.median(on - off)) * 1e3, "added cpu": float(np.median(con - coff)) * 1e3}


def render(rows: list[tuple[str, dict[str, Any]]], args: argparse.Namespace, argv: list[str],
           load: tuple[Any, Any]) -> str:
    cpu, flags = _cpu()
    cmd = "python benchmarks/bench_checksum.py" + "".join(f" {a}" for a in argv)
    lines = [
        "# Checksum verification vs cold start",
        "",
        f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}); {cpu}, {os.cpu_count()} CPUs (lscpu flags: {flags}); "
        f"Python {platform.python_version()}; load average {load[0]} before, {load[1]} after (a shared machine).",
        "",
        f"Medians of {args.rounds} interleaved rounds; interpreter threads 2; the file in the page cache. "
        "`verify`: `verify_checksum` on the bytes in memory (default threads: min(4, cores) for files of 4 chunks "
        "(32 MiB) or more, else 1). `cold start`: "
        "create the task from the path + its first call (640x480 photo / one caption): `on` the file as it is, "
        "`off` the same bytes with the checksum entry renamed (a file without the record: not verified). "
        "The runtime verifies on a thread while the interpreter is built, so the verification adds less than it "
        "costs: `added`: median over the rounds of (on - off) of the same round, and its share of the cold start (on); "
        "`verify / cold`: what it would add done before the interpreter. CPU columns: the process's CPU time "
        "(every thread) for the cold start, which the other jobs on a shared machine do not inflate; `added CPU`: "
        "median of (on - off) per round, and its share of the cold start's CPU time (on).",
        "",
        "| file | MiB | checksum | verify ms | verify ms, 1 thread | cold start ms (on) | cold start ms (off) | "
        "added ms | added / cold | verify / cold | cold start CPU ms (on) | added CPU ms | added CPU / cold CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['bytes'] / 2**20:.1f} | {'yes' if r['sealed'] else 'no'} | {r['verify']:.1f} | "
                     f"{r['verify 1 thread']:.1f} | {r['cold on']:.1f} | {r['cold off']:.1f} | {r['added']:.1f} | "
                     f"{r['added'] / r['cold on']:.1%} | {r['share']:.1%} | {r['cpu cold on']:.1f} | "
                     f"{r['added cpu']:.1f} | {r['added cpu'] / r['cpu cold on']:.1%} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--full-size", action="store_true", help="also the full-size CLIP B/32 text tower (converted)")
    ap.add_argument("--work", default="/tmp/ee_checksum_bench", help="converted files (about 1 GB with --full-size)")
    ap.add_argument("-o", "--out", default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    targets = files(args)
    load0 = [round(v, 2) for v in os.getloadavg()]
    rows = []
    for label, path, task in targets:
        print(f"measuring {label} ...", file=sys.stderr, flush=True)
        rows.append((label, measure(path, task, args.rounds, Path(args.work))))
    load1 = [round(v, 2) for v in os.getloadavg()]
    shown = []  # the command as run, without the --work folder (a machine path)
    skip = False
    for a in argv:
        if skip or a.startswith("--work="):
            skip = False
            continue
        if a == "--work":
            skip = True
            continue
        shown.append(a)
    md = render(rows, args, shown, (load0, load1))
    if args.out:
        Path(args.out).write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
