"""Cost of CLIP tokenization: install footprint, import, load and per-caption time.

Three measurements, printed as markdown tables:

* ``--footprint``: makes fresh venvs under a temporary folder (empty; ``pip
  install tokenizers``; ``pip install --no-deps tokenizers``) and sums the
  bytes of their site-packages, with the size of each installed distribution.
  Needs pip to reach an index.
* import / load (always): each case runs ``--import-runs`` times in a fresh
  child process of ``--python`` (default: this interpreter), recording wall time
  and the growth of VmRSS over the import, then over loading the CLIP
  ``tokenizer.json`` fixture; medians are reported.
* per caption (always): every string of ``tests/fixtures/text_corpus.json`` is
  tokenized as the text tower is fed (77 ids, padded, truncated) by the bare
  ``tokenizers.Tokenizer``, by ``edge_embedder``'s ``ClipTokenizer`` (the same
  plus the int32 numpy array) and by transformers' ``CLIPTokenizerFast``
  (``padding="max_length", truncation=True, max_length=77``). Per string:
  median of ``--repeats`` loops of ``--number`` calls after a warm-up (the BPE
  word caches are warm, as for prompts used again); "cold" times each string's
  first call on a freshly loaded tokenizer. Reported: the median over the
  corpus, its p90 and mean, the 353-word paragraph alone, and one batch call
  over the whole corpus divided by its size (compare with the mean). One thread
  (``RAYON_NUM_THREADS=1``, ``TOKENIZERS_PARALLELISM=false``, set before
  importing). ``--open-clip-wheel`` adds open_clip's pure-Python
  ``SimpleTokenizer`` (loaded from the wheel, ftfy stubbed when missing).

    python benchmarks/bench_tokenizer.py [--footprint] [--open-clip 3.3.0 | --open-clip-wheel WHEEL]
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TOKENIZER_DIR = ROOT / "converters" / "clip_tokenizer"
TOKENIZER_JSON = TOKENIZER_DIR / "tokenizer.json"
CORPUS_PATH = FIXTURES / "text_corpus.json"
MAX_LENGTH = 77

# --- footprint ---------------------------------------------------------------

_SIZES = r"""
import importlib.metadata as md, json, os, sysconfig
sp = sysconfig.get_paths()["purelib"]
total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sp) for f in fs)
dists = []
for d in md.distributions():
    size = 0
    for f in d.files or []:
        try:
            size += os.path.getsize(f.locate())
        except OSError:
            pass
    dists.append([d.metadata["Name"], d.version, size])
print(json.dumps({"total": total, "dists": sorted(dists, key=lambda r: -r[2])}))
"""


def _venv_sizes(venv: Path) -> dict:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", _SIZES], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def footprint(workdir: Path) -> str:
    rows = {}
    for name, pip_args in (("empty venv", None), ("tokenizers", ["tokenizers"]),
                           ("tokenizers --no-deps", ["--no-deps", "tokenizers"])):
        venv = workdir / name.replace(" ", "_").replace("-", "")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        if pip_args:
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *pip_args],
                           check=True)
        rows[name] = _venv_sizes(venv)
    base = rows["empty venv"]
    base_names = {d[0] for d in base["dists"]}
    lines = ["| venv | site-packages MB | added MB | added distributions |", "|---|---|---|---|"]
    for name, r in rows.items():
        added = [d for d in r["dists"] if d[0] not in base_names]
        lines.append(f"| {name} | {r['total'] / 1e6:.1f} | {(r['total'] - base['total']) / 1e6:.1f} | "
                     f"{len(added)} |")
    lines += ["", "| distribution pulled by `pip install tokenizers` | version | MB |", "|---|---|---|"]
    for dist, version, size in rows["tokenizers"]["dists"]:
        if dist not in base_names:
            lines.append(f"| {dist} | {version} | {size / 1e6:.2f} |")
    return "\n".join(lines)


# --- import and load ----------------------------------------------------------

_CHILD = r"""
import json, os, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
r0, t0 = rss(), time.perf_counter()
exec(compile(sys.argv[1], "import", "exec"))
t1, r1 = time.perf_counter(), rss()
exec(compile(sys.argv[2], "load", "exec"))
t2, r2 = time.perf_counter(), rss()
print(json.dumps({"import_s": t1 - t0, "import_rss": r1 - r0, "load_s": t2 - t1, "load_rss": r2 - r1,
                  "total_rss": r2}))
"""

IMPORT_CASES = [
    ("tokenizers", "import tokenizers",
     f"tok = tokenizers.Tokenizer.from_file({str(TOKENIZER_JSON)!r})"),
    ("edge_embedder (no tokenizer; baseline of the next row)", "import edge_embedder", "pass"),
    ("edge_embedder.text.tokenizer (+ edge_embedder, tokenizers)",
     "import edge_embedder.text.tokenizer as m; import tokenizers",
     f"tok = m.ClipTokenizer.from_file({str(TOKENIZER_JSON)!r})"),
    ("transformers CLIPTokenizerFast", "from transformers import CLIPTokenizerFast",
     f"tok = CLIPTokenizerFast.from_pretrained({str(TOKENIZER_DIR)!r})"),
]


def import_costs(python: str, runs: int) -> str:
    lines = ["| import | import ms | import RSS MB | load tokenizer.json ms | load RSS MB | process RSS MB |",
             "|---|---|---|---|---|---|"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name, imp, load in IMPORT_CASES:
        samples = []
        for _ in range(runs):
            out = subprocess.run([python, "-c", _CHILD, imp, load], capture_output=True, text=True, env=env,
                                 cwd=str(ROOT))
            if out.returncode != 0:
                samples = None
                lines.append(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} | | | | |")
                break
            samples.append(json.loads(out.stdout))
        if samples:
            med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
            lines.append(f"| {name} | {med['import_s'] * 1e3:.0f} | {med['import_rss'] / 2**20:.1f} | "
                         f"{med['load_s'] * 1e3:.0f} | {med['load_rss'] / 2**20:.1f} | {med['total_rss'] / 2**20:.0f} |")
    return "\n".join(lines)


# --- per caption --------------------------------------------------------------

def _per_call(fn, text, number: int, repeats: int) -> float:
    for _ in range(10):
        fn(text)
    loops = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn(text)
        loops.append((time.perf_counter_ns() - t0) / number)
    return statistics.median(loops)


def _p90(values):
    return sorted(values)[int(round(0.9 * (len(values) - 1)))]


def caption_costs(corpus: list[str], number: int, repeats: int, open_clip_wheel: Path | None) -> str:
    sys.path.insert(0, str(ROOT))
    from edge_embedder.text import ClipTokenizer

    def make_tokenizers():
        return ClipTokenizer.from_file(TOKENIZER_JSON)._tok  # the configured tokenizers.Tokenizer

    def make_ours():
        return ClipTokenizer.from_file(TOKENIZER_JSON)

    def make_hf():
        from transformers import CLIPTokenizerFast

        return CLIPTokenizerFast.from_pretrained(str(TOKENIZER_DIR))

    cases = [
        ("tokenizers `Tokenizer.encode`", make_tokenizers, lambda t: t.encode, lambda t: t.encode_batch),
        ("edge_embedder `ClipTokenizer.encode`", make_ours, lambda t: t.encode, lambda t: t.encode_batch),
        ("transformers `CLIPTokenizerFast(...)`", make_hf,
         lambda t: (lambda s: t(s, padding="max_length", truncation=True, max_length=MAX_LENGTH)),
         lambda t: (lambda b: t(b, padding="max_length", truncation=True, max_length=MAX_LENGTH))),
    ]
    if open_clip_wheel is not None:
        from compare_simple_tokenizer import load_simple_tokenizer

        tmp = tempfile.mkdtemp()
        ref, _ = load_simple_tokenizer(open_clip_wheel, Path(tmp), None)
        cls = type(ref)
        cases.append(("open_clip `SimpleTokenizer` (pure Python, ftfy stubbed if absent, torch out)", lambda: cls(),
                      lambda t: (lambda s: t(s, context_length=MAX_LENGTH)),
                      lambda t: (lambda b: t(b, context_length=MAX_LENGTH))))

    paragraph = max(corpus, key=len)
    lines = ["| tokenizer (1 thread) | median us/caption | p90 us | mean us | 353-word paragraph us | cold median us | "
             f"encode_batch of {len(corpus)}, mean us/caption |", "|---|---|---|---|---|---|---|"]
    for name, make, single, batch in cases:
        cold_tok = make()
        cold_fn = single(cold_tok)
        cold = []
        for text in corpus:
            t0 = time.perf_counter_ns()
            cold_fn(text)
            cold.append(time.perf_counter_ns() - t0)
        fn = single(make())
        per = {text: _per_call(fn, text, number, repeats) for text in corpus}
        bfn = batch(cold_tok)
        bfn(corpus)
        loops = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            bfn(corpus)
            loops.append((time.perf_counter_ns() - t0) / len(corpus))
        lines.append(f"| {name} | {statistics.median(per.values()) / 1e3:.1f} | {_p90(list(per.values())) / 1e3:.1f} | "
                     f"{statistics.mean(per.values()) / 1e3:.1f} | {per[paragraph] / 1e3:.1f} | {statistics.median(cold) / 1e3:.1f} | "
                     f"{statistics.median(loops) / 1e3:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footprint", action="store_true", help="also measure venv footprints (runs pip)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the import measurements")
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=200, help="calls per timing loop")
    parser.add_argument("--repeats", type=int, default=5, help="timing loops per string")
    parser.add_argument("--open-clip-wheel", type=Path, help="also time open_clip's SimpleTokenizer from this wheel")
    parser.add_argument("--open-clip", metavar="VERSION",
                        help="the same, from the open-clip-torch wheel of this version (pip download --no-deps)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import platform

    import tokenizers

    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"tokenizers {tokenizers.__version__}, RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}\n")
    if args.footprint:
        with tempfile.TemporaryDirectory() as tmp:
            print(footprint(Path(tmp)) + "\n")
    print(f"import / load, median of {args.import_runs} fresh processes ({Path(args.python).name}):\n")
    print(import_costs(args.python, args.import_runs) + "\n")
    corpus = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
    print(f"per caption, {len(corpus)} corpus strings, {args.repeats} x {args.number} calls each:\n")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.open_clip_wheel
        if args.open_clip:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            f"open-clip-torch=={args.open_clip}", "-d", tmp], check=True)
            (wheel,) = Path(tmp).glob("open_clip_torch-*.whl")
            print(f"open_clip: {wheel.name} (pip download --no-deps)\n")
        print(caption_costs(corpus, args.number, args.repeats, wheel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
