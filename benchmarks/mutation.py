"""Mutation test: damaged copies of model files must end in a typed error or in the very same result.

For each model file, ``--n`` mutants (deterministic from ``--seed``) are made in
memory, each in one of these classes (a damaged download, a failing SD card):

* ``bitflip``: one bit flipped anywhere in the file (half the mutants);
* ``bitflip-head``: one bit flipped in the first 4 KiB (the flatbuffer's / protobuf's structure);
* ``bitflip-metadata``: one bit flipped in the metadata (TFLite: the ``TFLITE_METADATA`` buffer;
  ONNX: the ``edge_embedder`` metadata_props);
* ``bitflip-packed``: one bit flipped in the packed files (TFLite: the appended zip: labels, tokenizer);
* ``zero-block``: a 4 KiB-aligned block of 4 KiB zeroed (a lost sector);
* ``truncate``: the file cut at a random length.

Each mutant is opened and run in a child process (a damaged file may crash or
hang an interpreter): a worker process handles mutants one after the other and
is replaced when one crashes it or runs past ``--timeout``. The verdicts:

* ``typed error``: an edge_embedder error (``ModelLoadError`` for a checksum mismatch, ...);
* ``same``: the results equal the original file's exactly;
* ``DIFFERENT``: the results differ and no error was raised (a silently wrong result);
* ``FOREIGN``: an exception that is not one of edge_embedder's;
* ``CRASH`` / ``HANG``: the child died or ran past the timeout.

The classifier is run on the bundled photos (every category's score, index and
names); the text tower embeds a few texts (every vector, ``truncated`` and
``token_count``). Files that carry the checksum must give only typed errors and
"same" (``tests/test_mutation.py`` runs this on the shipped classifier and a
converted tiny text tower); ``--unsealed`` also runs copies with the checksum
record removed, to show what the checksum prevents.

    python benchmarks/mutation.py [--classifier models/efficientnet_lite0_classifier_fp32.tflite]
        [--text TEXT_TOWER.tflite] [--n 100] [--seed 0] [--workers 2] [--unsealed] [-o benchmarks/results/mutation.md]

Without ``--text``, the tiny random CLIP text tower is built and converted in
a temporary folder (needs the ``convert`` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import select
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

KINDS = ("bitflip", "bitflip-head", "bitflip-metadata", "bitflip-packed", "zero-block", "truncate")
VERDICTS = ("typed error", "same", "DIFFERENT", "FOREIGN", "CRASH", "HANG")
TEXTS = ("a photo of a cat", "", "naïve café: 東京の猫 🐱 " * 3, "word " * 100)
PHOTOS = ("chelsea", "coffee")


# -- mutants -------------------------------------------------------------------------------


def regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of the file's parts: head, metadata, packed files (when present)."""
    out = {"head": (0, min(len(data), 4096))}
    if data[4:8] == b"TFL3":
        m001 = data.find(b"M001")  # the metadata flatbuffer's identifier, 4 bytes into its buffer
        if m001 >= 8:
            start = m001 - 4
            size = int.from_bytes(data[start - 4 : start], "little")  # the buffer's length prefix
            if 0 < size <= len(data) - start:
                out["metadata"] = (start, start + size)
        zip_at = data.find(b"PK\x03\x04")
        if zip_at > 0:
            out["packed"] = (zip_at, len(data))
    else:
        at = data.find(b"edge_embedder.metadata")
        if at > 0:
            out["metadata"] = (at, len(data))
    return out


def make_mutants(data: bytes, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` mutation specs (kind, offset, bit / length), deterministic from ``seed``."""
    rng = random.Random(seed)
    parts = regions(data)
    plan = ["bitflip"] * (n // 2)
    rest = ["bitflip-head", "bitflip-metadata", "bitflip-packed", "zero-block", "truncate"]
    while len(plan) < n:
        plan.append(rest[len(plan) % len(rest)])
    out = []
    for i, kind in enumerate(plan):
        region = {"bitflip-head": "head", "bitflip-metadata": "metadata", "bitflip-packed": "packed"}.get(kind)
        lo, hi = parts.get(region, (0, len(data))) if region else (0, len(data))
        if kind == "zero-block":
            at = rng.randrange(0, max(1, len(data) // 4096)) * 4096
            out.append({"id": i, "kind": kind, "offset": at, "length": min(4096, len(data) - at)})
        elif kind == "truncate":
            out.append({"id": i, "kind": kind, "offset": rng.randrange(1, len(data))})
        else:
            out.append({"id": i, "kind": kind if region is None or region in parts else "bitflip",
                        "offset": rng.randrange(lo, hi), "bit": rng.randrange(8)})
    return out


def apply(data: bytes, m: dict[str, Any]) -> bytes:
    b = bytearray(data)
    if m["kind"] == "zero-block":
        b[m["offset"] : m["offset"] + m["length"]] = bytes(m["length"])
    elif m["kind"] == "truncate":
        del b[m["offset"] :]
    else:
        b[m["offset"]] ^= 1 << m["bit"]
    return bytes(b)


def unsealed(data: bytes) -> bytes:
    """A copy of a converted file without its checksum record (what files looked like before it)."""
    import dataclasses

    from edge_embedder.metadata import CHECKSUM_KEY, populate_tflite_metadata, read_tflite_metadata

    md = read_tflite_metadata(data)
    if md is None:
        raise SystemExit("--unsealed needs a TFLite file with metadata")
    return populate_tflite_metadata(data, dataclasses.replace(
        md, custom_metadata=[(k, v) for k, v in md.custom_metadata if k != CHECKSUM_KEY]))


# -- the worker (one child process, many mutants) ------------------------------------------


def _run(task: str, data: bytes) -> Any:
    """What the file gives: a canonical, JSON-able result."""
    import numpy as np

    from edge_embedder import BaseOptions

    if task == "classifier":
        from edge_embedder import ImageClassifier, ImageClassifierOptions
        from edge_embedder.resources import sample_images

        opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=data, num_threads=1))
        photos = sample_images()
        with ImageClassifier.create_from_options(opts) as clf:
            out = []
            for name in PHOTOS:
                res = clf.classify(photos[name])
                out.append([[[c.index, float(c.score), c.category_name, c.display_name] for c in h.categories]
                            for h in res.classifications])
            return out
    from edge_embedder import TextEmbedder, TextEmbedderOptions

    topts = TextEmbedderOptions(base_options=BaseOptions(model_asset_buffer=data, num_threads=1))
    with TextEmbedder.create_from_options(topts) as emb:
        return [[np.asarray(e.embedding, np.float64).tolist() for e in r.embeddings] + [r.truncated, r.token_count]
                for r in emb.embed_batch(list(TEXTS))]


def _digest(result: Any) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def worker() -> None:
    """Read one JSON job per line on stdin, answer one JSON line per job on stdout."""
    from edge_embedder.errors import EdgeEmbedderError, first_line

    originals: dict[str, bytes] = {}
    for line in sys.stdin:
        job = json.loads(line)
        path = job["path"]
        if path not in originals:
            raw = Path(path).read_bytes()
            originals[path] = unsealed(raw) if job.get("unsealed") else raw
        data = apply(originals[path], job["mutation"]) if job.get("mutation") else originals[path]
        try:
            verdict, detail = "result", _digest(_run(job["task"], data))
        except EdgeEmbedderError as exc:
            verdict, detail = "typed error", f"{type(exc).__name__}: {first_line(exc)}"[:300]
        except Exception as exc:  # noqa: BLE001 - what the test is looking for
            verdict, detail = "FOREIGN", f"{type(exc).__name__}: {first_line(exc)}"[:300]
        print(json.dumps({"id": job["id"], "verdict": verdict, "detail": detail}), flush=True)


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        module = __name__ if __name__ != "__main__" else "benchmarks.mutation"
        self.proc = subprocess.Popen([sys.executable, "-c", f"from {module} import worker; worker()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env)

    def send(self, job: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_jobs(jobs: list[dict[str, Any]], workers: int = 2, timeout: float = 120.0) -> dict[int, dict[str, Any]]:
    """Run ``jobs`` on ``workers`` child processes; a crash or a timeout replaces the child."""
    pending = list(reversed(jobs))
    results: dict[int, dict[str, Any]] = {}
    pool: list[list[Any]] = []  # [worker, job, deadline]
    try:
        while pending or any(slot[1] is not None for slot in pool):
            while len(pool) < workers and pending:
                pool.append([_Worker(), None, 0.0])
            for slot in pool:
                if slot[1] is None and pending:
                    slot[1] = pending.pop()
                    slot[2] = time.monotonic() + timeout
                    try:
                        slot[0].send(slot[1])
                    except (BrokenPipeError, OSError):
                        results[slot[1]["id"]] = {"id": slot[1]["id"], "verdict": "CRASH", "detail": "worker gone"}
                        slot[0].kill()
                        slot[:] = [_Worker(), None, 0.0]
            busy = [s for s in pool if s[1] is not None]
            if not busy:
                continue
            ready, _, _ = select.select([s[0].proc.stdout for s in busy], [], [], 0.5)
            for slot in busy:
                w, job, deadline = slot
                if w.proc.stdout in ready:
                    line = w.proc.stdout.readline()
                    if line:
                        results[job["id"]] = json.loads(line)
                        slot[1] = None
                        continue
                    code = w.proc.wait()
                    results[job["id"]] = {"id": job["id"], "verdict": "CRASH", "detail": f"exit code {code}"}
                    slot[:] = [_Worker(), None, 0.0]
                elif time.monotonic() > deadline:
                    w.kill()
                    results[job["id"]] = {"id": job["id"], "verdict": "HANG", "detail": f"over {timeout:.0f} s"}
                    slot[:] = [_Worker(), None, 0.0]
    finally:
        for slot in pool:
            if slot[0].proc.stdin:
                slot[0].proc.stdin.close()
            slot[0].kill()
    return results


def mutation_run(path: str | os.PathLike, task: str, n: int = 100, seed: int = 0, *, sealed: bool = True,
                 workers: int = 2, timeout: float = 120.0) -> dict[str, Any]:
    """Mutate ``path`` ``n`` times and classify every outcome (see the module docstring)."""
    path = str(path)
    raw = Path(path).read_bytes()
    data = raw if sealed else unsealed(raw)
    mutants = make_mutants(data, n, seed)
    jobs = [{"id": -1, "task": task, "path": path, "unsealed": not sealed, "mutation": None}]
    jobs += [{"id": m["id"], "task": task, "path": path, "unsealed": not sealed, "mutation": m} for m in mutants]
    got = run_jobs(jobs, workers, timeout)
    ref = got.pop(-1)
    if ref["verdict"] != "result":
        raise RuntimeError(f"{path}: the unmutated file does not run: {ref}")
    rows = []
    for m in mutants:
        r = got[m["id"]]
        verdict = r["verdict"]
        if verdict == "result":
            verdict = "same" if r["detail"] == ref["detail"] else "DIFFERENT"
        rows.append({**m, "verdict": verdict, "detail": r["detail"] if verdict not in ("same", "DIFFERENT") else ""})
    counts = Counter(r["verdict"] for r in rows)
    by_kind = {k: dict(Counter(r["verdict"] for r in rows if r["kind"] == k)) for k in KINDS}
    errors = Counter(r["detail"].split(":", 1)[0] for r in rows if r["verdict"] == "typed error")
    from edge_embedder.metadata import find_checksum_record

    return {"file": os.path.basename(path), "task": task, "sealed": find_checksum_record(data) is not None,
            "bytes": len(data), "n": n,
            "seed": seed, "counts": {v: counts.get(v, 0) for v in VERDICTS}, "by_kind": by_kind,
            "error_types": dict(errors), "rows": rows}


# -- report --------------------------------------------------------------------------------


def _tiny_text_tower(folder: Path) -> Path:
    """The README's tiny random CLIP checkpoint, its text tower converted to .tflite."""
    from edge_embedder.convert import convert, tiny_clip

    tiny_clip.main([str(folder / "tiny-clip")])
    out = folder / "tiny-clip-text.tflite"
    convert("clip", str(folder / "tiny-clip"), output=out, task="text-embedding", progress=lambda m: None)
    return out


def report_md(runs: list[dict[str, Any]], cmd: str, seconds: float, load: tuple[list[float], list[float]]) -> str:
    lines = ["# Mutation test: damaged model files", "",
             f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}, {seconds:.0f} s, Python {platform.python_version()}, "
             f"{os.cpu_count()} CPUs; load average {load[0]} before, {load[1]} after).", "",
             "Each mutant is opened and run in a child process; verdicts as in `benchmarks/mutation.py`.", "",
             "| file | checksum | mutants | " + " | ".join(VERDICTS) + " |",
             "|---|---|---|" + "---|" * len(VERDICTS)]
    for r in runs:
        lines.append(f"| {r['file']} ({r['task']}) | {'yes' if r['sealed'] else 'no'} | {r['n']} | "
                     + " | ".join(str(r["counts"][v]) for v in VERDICTS) + " |")
    for r in runs:
        lines += ["", f"## {r['file']}, {'with its checksum' if r['sealed'] else 'without a checksum'}", "",
                  "| class | " + " | ".join(VERDICTS) + " |", "|---|" + "---|" * len(VERDICTS)]
        for kind, c in r["by_kind"].items():
            if c:
                lines.append(f"| {kind} | " + " | ".join(str(c.get(v, 0)) for v in VERDICTS) + " |")
        lines += ["", "Typed errors: " + ", ".join(f"{k} {v}" for k, v in sorted(r["error_types"].items())) + "."]
        bad = [x for x in r["rows"] if x["verdict"] in ("DIFFERENT", "FOREIGN", "CRASH", "HANG")]
        if bad:
            lines += ["", "Not typed errors:", ""]
            lines += [f"* mutant {x['id']} ({x['kind']} at byte {x['offset']}): {x['verdict']} {x['detail']}".rstrip()
                      for x in bad[:20]]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classifier", default="models/efficientnet_lite0_classifier_fp32.tflite")
    ap.add_argument("--text", default=None, help="a converted text tower (default: convert the tiny CLIP one)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--unsealed", action="store_true", help="also run copies without the checksum record")
    ap.add_argument("-o", "--out", default=None, help="write the Markdown report here (and the rows as .json)")
    args = ap.parse_args(argv)
    load0 = [round(v, 2) for v in os.getloadavg()]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edge_embedder_mutation_") as tmp:
        text = Path(args.text) if args.text else _tiny_text_tower(Path(tmp))
        runs = []
        for sealed in (True, False) if args.unsealed else (True,):
            for path, task in ((args.classifier, "classifier"), (text, "text")):
                r = mutation_run(path, task, args.n, args.seed, sealed=sealed, workers=args.workers,
                                 timeout=args.timeout)
                print(f"{r['file']} ({'sealed' if sealed else 'unsealed'}): {r['counts']}", file=sys.stderr)
                runs.append(r)
    load1 = [round(v, 2) for v in os.getloadavg()]
    cmd = "python benchmarks/mutation.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    md = report_md(runs, cmd, time.monotonic() - t0, (load0, load1))
    if args.out:
        Path(args.out).write_text(md)
        Path(args.out).with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")
    print(md)
    sealed_bad = sum(r["counts"][v] for r in runs if r["sealed"] for v in ("DIFFERENT", "FOREIGN", "CRASH", "HANG"))
    return 1 if sealed_bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
