"""Regenerate the files in ``benchmarks/results/``: every results file, the command that writes it.

    python benchmarks/record.py --list               # every results file and its command
    python benchmarks/record.py embed_overhead ray   # run those, rewrite their files
    python -m edge_embedder.bench.record ...         # the same, installed (writes under --results-dir)

A results file is what its command wrote, never edited by hand. Scripts that
print their report to stdout are run here and their output is written
verbatim under a generated header (the command, the date, the machine, its
SIMD flags and the load average before and after: on a shared machine the
load says which figures to trust). Scripts that write their own file (``-o``)
are run with that option, and the same header goes on top of what they wrote. Commentary on a file belongs in docs/benchmarks.md
or a ``*_notes.md`` file beside it, never inside it.

Exit codes: 0 every run succeeded, 1 some run failed (its file is left as it
was; the others are written), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge_embedder.bench.harness import cpu_flags, machine_info


@dataclass(frozen=True)
class Record:
    """One results file: the script and arguments that write it."""

    name: str
    script: str  # a module of benchmarks/ (run with ``python -m edge_embedder.bench.SCRIPT`` or from the checkout)
    args: tuple[str, ...]
    #: "stdout": the report is the script's standard output (written here under a header);
    #: "self": the script writes ``results/NAME.md`` itself (in args, ``{out}`` / ``{out_json}`` become
    #: ``results/NAME.md`` / ``.json`` and ``{results}`` the results folder).
    kind: str
    what: str


RECORDS: tuple[Record, ...] = (
    Record("headline", "cli", ("bench", "efficientnet-lite0", "efficientnet-lite0-int8",
                               "--reference", "efficientnet-lite0", "--compare", "mediapipe,transformers",
                               "--threads", "1,2", "--runs", "200", "--warmup", "20", "--no-progress",
                               "-o", "{out}", "-o", "{out_json}"), "self",
           "the README's figures: shipped models vs MediaPipe and transformers, 1 and 2 threads"),
    Record("embed_overhead", "bench_embed_overhead", ("--threads", "2", "--runs", "300", "--warmup", "30"), "stdout",
           "embed() over a bare invoke() and MediaPipe's embed(), 640x480 and 1080p"),
    Record("classify_overhead_fp32", "bench_classify_overhead",
           ("--model", "efficientnet-lite0-classifier", "--runs", "300", "--warmup", "30"), "stdout",
           "classify() over a bare invoke() and MediaPipe's classify(), fp32 classifier"),
    Record("classify_overhead_int8", "bench_classify_overhead",
           ("--model", "efficientnet-lite0-classifier-int8", "--runs", "300", "--warmup", "30"), "stdout",
           "the same for the int8 classifier"),
    Record("live_stream", "bench_live_stream", ("--threads", "2", "--frames", "300", "--fps", "60", "-o", "{out}"),
           "self", "embed_async() return time in LIVE_STREAM mode"),
    Record("large_images", "bench_large_images", (), "stdout", "peak memory of one very large photo"),
    Record("search_quiet", "bench_search", ("--sizes", "10000,100000", "-o", "{out}"), "self",
           "exact and approximate search at 10k and 100k vectors"),
    Record("ray", "bench_ray", ("--count", "480"), "stdout", "Ray Data vs embed-dir on one machine"),
    Record("search_uniform", "bench_search", ("--uniform", "--sizes", "100000", "--threshold-sizes", "", "-o", "{out}"),
           "self", "search on uniform random vectors, the worst case of a graph index"),
    Record("tokenizer", "bench_tokenizer", ("--footprint", "--open-clip", "3.3.0"), "stdout",
           "CLIP tokenization: install footprint, import and load, per caption vs transformers and open_clip"),
    Record("text_embedding", "bench_text",
           ("--reuse", "--threads", "1,2", "--runs", "20", "--zero-shot-runs", "10", "--warmup", "3",
            "--quants", "none", "fp16", "dynamic-int8", "--out", "{out}"), "self",
           "CLIP B/32 text tower at the text's own length, zero-shot, memory (issue 21's goals)"),
    Record("image_towers", "bench_image_towers",
           ("--reuse", "--threads", "1,2", "--runs", "15", "--warmup", "3", "--out", "{out}"), "self",
           "ViT-B/16 and CLIP B/32 image towers vs eager PyTorch, every format and quantization, per-op profiles"),
    Record("families", "bench_families",
           ("--reuse", "--threads", "1,2", "--runs", "15", "--warmup", "3", "--out", "{out}"), "self",
           "DINOv2-S/14 and SigLIP-B/16 vs eager PyTorch, every format and quantization"),
    Record("standard_runs", "standard_runs", ("--out-dir", "{results}", "--no-progress"), "self",
           "the standard set: EfficientNet-Lite0, ViT-B/16, CLIP B/32 vs MediaPipe, PyTorch eager, ONNX Runtime"),
    Record("standard_runs_classifiers", "standard_runs",
           ("--groups", "efficientnet-classifier", "--out-dir", "{results}",
            "--name", "standard_runs_classifiers", "--no-progress"), "self",
           "the shipped classifiers vs MediaPipe and PyTorch eager"),
)


#: The checkout (record.py runs the scripts from its root, so that the commands they print hold no
#: machine paths); installed, the current folder.
REPOSITORY = Path(__file__).resolve().parent.parent


def _find(name: str) -> Record:
    for r in RECORDS:
        if r.name == name:
            return r
    raise KeyError(name)


def command_line(record: Record) -> str:
    """The command as a user types it from the repository root (paths relative, as in the results file)."""
    args = [a.replace("{out}", f"benchmarks/results/{record.name}.md")
            .replace("{out_json}", f"benchmarks/results/{record.name}.json")
            .replace("{results}", "benchmarks/results") for a in record.args]
    if record.script == "cli":
        return shlex.join(["edge-embedder", *args])
    return shlex.join(["python", f"benchmarks/{record.script}.py", *args])


def _argv(record: Record, results: Path, cwd: Path) -> list[str]:
    """The command to run in ``cwd``; output paths relative to it, as scripts print their own command line."""
    where = Path(os.path.relpath(results, cwd))
    args = [a.replace("{out}", str(where / f"{record.name}.md"))
            .replace("{out_json}", str(where / f"{record.name}.json"))
            .replace("{results}", str(where)) for a in record.args]
    if record.script == "cli":
        return [sys.executable, "-m", "edge_embedder.cli", *args]
    return [sys.executable, "-m", f"edge_embedder.bench.{record.script}", *args]


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def header(record: Record, started: datetime, minutes: float, load_before: str, load_after: str) -> str:
    m = machine_info()
    flags = " ".join(cpu_flags()) or "unknown"
    return (
        f"<!-- written by `python benchmarks/record.py {record.name}`: the output of the command below, "
        "not edited by hand -->\n"
        f"# {record.what}\n\n"
        f"`{command_line(record)}`\n\n"
        f"{started:%Y-%m-%d %H:%M} UTC; {m['cpu'] or platform.machine()}, {m['cores']} CPUs, {platform.machine()}; "
        f"SIMD flags: {flags}; Python {m['python']}; load average (1, 5, 15 min) {load_before} before, "
        f"{load_after} after; {minutes:.1f} min.\n\n"
    )


def run(record: Record, results: Path) -> bool:
    """Run one record; True when its file was written."""
    results.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    load_before, t0 = _loadavg(), time.monotonic()
    print(f"[record] {record.name}: {command_line(record)}", file=sys.stderr, flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    target = results / f"{record.name}.md"
    before = target.stat().st_mtime_ns if target.exists() else None
    cwd = REPOSITORY if (REPOSITORY / "benchmarks").is_dir() else Path.cwd()
    proc = subprocess.run(_argv(record, results, cwd), stdout=subprocess.PIPE, env=env, cwd=cwd)
    minutes = (time.monotonic() - t0) / 60
    if proc.returncode != 0:
        print(f"[record] {record.name}: failed (exit {proc.returncode}); {record.name}.md left as it was",
              file=sys.stderr)
        return False
    # "stdout": the report is the script's output; "self": the file the script wrote. Either way the
    # header (command, machine, load before and after) goes on top, the script's text below it unchanged.
    if record.kind == "self" and (not target.exists() or target.stat().st_mtime_ns == before):
        print(f"[record] {record.name}: the command did not write {target.name}; left as it was", file=sys.stderr)
        return False
    body = proc.stdout.decode("utf-8", "replace") if record.kind == "stdout" else target.read_text(encoding="utf-8")
    tmp = results / f".{record.name}.md.tmp"
    tmp.write_text(header(record, started, minutes, load_before, _loadavg()) + body, encoding="utf-8")
    os.replace(tmp, target)
    print(f"[record] {record.name}: wrote {record.name}.md in {minutes:.1f} min", file=sys.stderr, flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="results to regenerate (see --list)")
    ap.add_argument("--list", action="store_true", help="print every results file and the command that writes it")
    ap.add_argument("--all", action="store_true", help="regenerate every results file this script knows")
    ap.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    if args.list:
        for r in RECORDS:
            print(f"{r.name + '.md':28} {command_line(r)}")
        return 0
    try:
        todo = list(RECORDS) if args.all else [_find(n) for n in args.names]
    except KeyError as exc:
        ap.error(f"unknown results name {exc.args[0]!r} (see --list)")
    if not todo:
        ap.error("name at least one results file, or pass --all or --list")
    try:
        ok = [run(r, args.results_dir) for r in todo]
    except KeyboardInterrupt:
        print("[record] interrupted: the file being written is left as it was", file=sys.stderr)
        return 130
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
