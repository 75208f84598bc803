"""The Raspberry Pi path, checked: ``python tests/arm/check.py`` from the repository root (as root, on Debian x86_64).

What it does, in one run:

1. Installs what the host needs (``qemu-user-static``, ``binfmt-support``,
   ``mmdebstrap``, ``arch-test``) and registers QEMU for aarch64 binaries.
2. Builds, or reuses from ``~/.cache/edge_embedder_arm``, an arm64 Debian root
   filesystem per release of 64-bit Raspberry Pi OS people run: bookworm
   (Python 3.11) and trixie (Python 3.13).
3. On x86, in the development environment: exports a tiny ViT, the tiny CLIP
   pair and EfficientNet-Lite0 (ONNX) with the project's converters, and builds
   index files (``tests/arm/workload.py``).
4. Installs this checkout the way the docs tell a Raspberry Pi user, in a fresh
   virtual environment per route, on x86 and inside each root filesystem:
   the default route (``pip install '.[onnx,text,search]'``: LiteRT, ONNX
   Runtime, tokenizers, usearch) and the tflite-runtime route (``pip install
   --no-deps .`` and NumPy 1.x, OpenCV < 4.11, ``tflite-runtime``) where
   ``tflite-runtime`` has a wheel for that Python.
5. Runs ``tests/arm/probe.py`` in each of them (under emulation: as a Pi 4,
   Cortex-A72, and as a Pi 5, Cortex-A76, with the board's ``/proc/cpuinfo``)
   and compares every ARM result with x86's of the same route, with the named
   tolerances below.
6. Runs a torch-free subset of the test suite (:data:`EMULATED_TESTS`) under
   emulation on each release, against the installed package.
7. Prints a pass/fail table (``--out FILE`` also writes it as Markdown) and
   exits 0 when every cell passes, 1 when one fails, 2 when the host cannot
   run the check.

Timings under emulation say nothing about a board's speed and are never
reported as such; the step times printed are what the check costs CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import emulation  # noqa: E402
from emulation import CPUS, RELEASES, Chroot, EmulationError, run_logged  # noqa: E402

# -- tolerances (ARM against x86, same route, same files) -----------------------------------------
#: Float32 vectors: NEON and AVX kernels may sum in another order; measured: cosine 1.00000000, max |diff| <= 2.6e-7.
FP32_MIN_COSINE = 0.99999
#: Full-integer and dynamic-range int8 vectors: integer kernels; measured bit-identical through LiteRT. A wrong
#: kernel (QEMU 7.2's default CPU model) gave 0.05-0.11, so this leaves no room for a real defect.
INT8_MIN_COSINE = 0.9999
#: Classifier and zero-shot scores (probabilities): measured within 1e-6.
SCORE_ATOL = 1e-5
#: The tflite-runtime route runs full-integer int8 models on tflite-runtime's own kernels, whose rounding differs
#: between its x86 and aarch64 builds (measured: ARM vs x86 cosine 0.9989-0.9993, scores within 0.012; each
#: differs from LiteRT's results by as much). Per-route tolerances for those two checks.
TFLITE_RUNTIME_INT8_MIN_COSINE = 0.998
TFLITE_RUNTIME_INT8_SCORE_ATOL = 0.025
#: Cosine scores of search hits.
SEARCH_SCORE_ATOL = 1e-5

#: The test modules run under emulation: torch-free and platform-sensitive (decoding with Pillow and libjpeg's
#: DCT scaling, preprocessing with OpenCV, metadata flatbuffers, tokenization, running modes and threads, synthetic
#: ONNX models), within CI's time. Tests needing torch skip themselves (they run on x86 in the main suite); the
#: embedders' and classifiers' numbers, search and folders are covered by the probe, one fp32 inference taking
#: seconds under emulation.
EMULATED_TESTS = (
    "tests/test_contract.py",
    "tests/test_preprocess.py",
    "tests/test_metadata.py",
    "tests/test_image.py",
    "tests/test_shrink.py",
    "tests/test_tokenizer.py",
    "tests/test_classifier.py",
    "tests/test_text_embedder.py",
    "tests/test_running_modes.py",
)

DEFAULT_INSTALL = "pip install '.[onnx,text,search]'"
TFLITE_INSTALL = ("pip install --no-deps .",
                  "pip install 'numpy<2' 'opencv-python-headless<4.11' 'pillow>=9.1' 'flatbuffers>=23.5' tflite-runtime "
                  "tokenizers")
ROUTES = {"default": "default route (LiteRT)", "tflite-runtime": "tflite-runtime route"}


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    kind: str  # "vectors" | "top5" | "zero_shot" | "hits"
    tolerance: float
    routes: tuple[str, ...] = ("default", "tflite-runtime")
    refused_on: tuple[tuple[str, str], ...] = ()  # (route, error type the docs promise there)
    route_tolerance: tuple[tuple[str, float], ...] = ()  # (route, tolerance replacing ``tolerance`` there)

    def refusal(self, route: str) -> Optional[str]:
        return dict(self.refused_on).get(route)

    def tol(self, route: str) -> float:
        return dict(self.route_tolerance).get(route, self.tolerance)

    def describe(self, route: str) -> str:
        t = self.tol(route)
        return f"cos >= {t:g}" if self.kind == "vectors" else f"same order, scores +-{t:g}"


CHECKS = [
    Check("efficientnet_lite0_fp32", "EfficientNet-Lite0 fp32 embedder, 4 photos", "vectors", FP32_MIN_COSINE),
    Check("efficientnet_lite0_int8", "EfficientNet-Lite0 int8 embedder, 4 photos", "vectors", INT8_MIN_COSINE,
          route_tolerance=(("tflite-runtime", TFLITE_RUNTIME_INT8_MIN_COSINE),)),
    Check("efficientnet_lite0_int8_roi_rotation", "int8 embedder, ROI + rotation", "vectors", INT8_MIN_COSINE,
          route_tolerance=(("tflite-runtime", TFLITE_RUNTIME_INT8_MIN_COSINE),)),
    Check("classifier_fp32", "ImageNet classifier fp32, top-5 of 4 photos", "top5", SCORE_ATOL),
    Check("classifier_int8", "ImageNet classifier int8, top-5 of 4 photos", "top5", SCORE_ATOL,
          route_tolerance=(("tflite-runtime", TFLITE_RUNTIME_INT8_SCORE_ATOL),)),
    Check("efficientnet_lite0_onnx", "EfficientNet-Lite0 ONNX fp32 (exported on x86)", "vectors", FP32_MIN_COSINE,
          routes=("default",)),
    Check("tiny_vit_fp32", "tiny ViT .tflite fp32 (exported on x86)", "vectors", FP32_MIN_COSINE),
    Check("tiny_vit_dynamic_int8", "tiny ViT .tflite dynamic-int8", "vectors", INT8_MIN_COSINE,
          refused_on=(("tflite-runtime", "BackendUnavailableError"),)),
    Check("tiny_vit_onnx_dynamic_int8", "tiny ViT .onnx dynamic-int8", "vectors", INT8_MIN_COSINE, routes=("default",)),
    Check("tiny_clip_image", "tiny CLIP image tower .tflite", "vectors", FP32_MIN_COSINE),
    Check("tiny_clip_text", "tiny CLIP text tower .tflite, 6 captions (ids and vectors)", "vectors", FP32_MIN_COSINE),
    Check("tiny_clip_zero_shot", "tiny CLIP zero-shot scores, 5 rankings of 6 labels", "zero_shot", SCORE_ATOL),
    Check("search_float32", "search: x86 float32 index, image queries", "hits", SEARCH_SCORE_ATOL),
    Check("search_int8_hnsw", "search: x86 int8 index + HNSW graph, 24 queries", "hits", SEARCH_SCORE_ATOL,
          routes=("default",)),
    Check("search_clip_text", "search: x86 CLIP image index, text queries", "hits", SEARCH_SCORE_ATOL),
]


@dataclass
class Target:
    """One column: an ARM release, a route, a CPU model."""

    release: str
    route: str
    cpu: str
    result: Optional[dict] = None
    error: Optional[str] = None
    tests: Optional[str] = None  # the pytest summary line when this column ran the subset
    tests_ok: Optional[bool] = None

    @property
    def name(self) -> str:
        return f"{self.release} {CPUS[self.cpu].board.replace('Raspberry ', '')} {self.route}"


@dataclass
class Run:
    dir: Path
    logs: Path
    releases: list[str]
    cpus: list[str]
    run_tests: bool
    targets: list[Target] = field(default_factory=list)
    x86: dict[str, dict] = field(default_factory=dict)
    x86_errors: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    qemu: str = ""
    load_start: str = ""
    rootfs_cached: dict[str, bool] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, name: str, t0: float) -> None:
        with self.lock:
            self.steps.append((name, time.monotonic() - t0))
        log(f"{name}: done in {time.monotonic() - t0:.0f} s")


def log(msg: str) -> None:
    print(f"[arm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- sources ----------------------------------------------------------------------------------------

IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ci",
                                ".mypy_cache", ".ruff_cache", "edge_embedder/models")


def clean_copy(dest: Path) -> Path:
    """The checkout as a user gets it (no build leftovers that could leak stale modules into the install)."""
    shutil.copytree(ROOT, dest, ignore=IGNORE, symlinks=True)
    return dest


# -- x86 -------------------------------------------------------------------------------------------


def x86_venv(run: Run, route: str, src: Path) -> Path:
    t0 = time.monotonic()
    env_dir = run.dir / f"x86-{route}"
    logf = run.logs / f"x86-{route}.log"
    run_logged([sys.executable, "-m", "venv", env_dir], logf, timeout=600)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
    if route == "default":
        run_logged(pip + [".[onnx,text,search]"], logf, timeout=1800, cwd=src)
    else:
        run_logged(pip + ["--no-deps", "."], logf, timeout=1800, cwd=src)
        run_logged(pip + ["numpy<2", "opencv-python-headless<4.11", "pillow>=9.1", "flatbuffers>=23.5", "tflite-runtime",
                          "tokenizers"], logf, timeout=1800, cwd=src)
    run.step(f"x86 {route}: venv and install", t0)
    return env_dir


def x86_probe(run: Run, route: str, env_dir: Path, workload: Path) -> None:
    t0 = time.monotonic()
    out = run.dir / f"x86-{route}.json"
    probe_dir = run.dir / "probe"
    run_logged([env_dir / "bin" / "python", probe_dir / "probe.py", workload, out], run.logs / f"x86-{route}.log",
               timeout=1800, cwd=probe_dir)
    run.x86[route] = json.loads(out.read_text())
    run.step(f"x86 {route}: probe", t0)


# -- ARM -------------------------------------------------------------------------------------------


def arm_release(run: Run, release: str, rootfs_future: Future, workload_future: Future, src: Path) -> None:
    """Everything for one release inside its root filesystem: venvs, probes, the pytest subset."""
    logf = run.logs / f"{release}.log"
    cached_root = rootfs_future.result()
    t0 = time.monotonic()
    root = emulation.working_copy(cached_root, run.dir / f"rootfs-{release}")
    work = root / "work"
    work.mkdir(exist_ok=True)
    shutil.copytree(src, work / "src", symlinks=True)
    shutil.copytree(HERE, work / "probe", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "out").mkdir()
    chroot = Chroot(root, release, run.dir / "cpuinfo")
    run.step(f"{release}: working copy of the root filesystem", t0)

    first_cpu = run.cpus[0]
    t0 = time.monotonic()
    chroot.run("cd /work/src && python3 -m venv /work/venv-default && . /work/venv-default/bin/activate && "
               + DEFAULT_INSTALL, logf, cpu=first_cpu, timeout=3600)
    run.step(f"{release}: default route install ({DEFAULT_INSTALL})", t0)
    freeze = chroot.run("/work/venv-default/bin/python -m pip freeze > /work/out/freeze-default.txt", logf,
                        cpu=first_cpu, timeout=600, check=False)
    if freeze.returncode == 0:
        run.installed[f"{release} default"] = (work / "out" / "freeze-default.txt").read_text()

    # tflite-runtime has wheels for some Pythons only: ask pip (the same question a user's pip asks).
    t0 = time.monotonic()
    probe_wheel = chroot.run("cd /tmp && /work/venv-default/bin/python -m pip download -q --no-deps --only-binary=:all: "
                             "-d /tmp/tflite-wheel tflite-runtime", logf, cpu=first_cpu, timeout=900, check=False)
    tflite = probe_wheel.returncode == 0
    if tflite:
        chroot.run("cd /work/src && python3 -m venv /work/venv-tflite && . /work/venv-tflite/bin/activate && "
                   + " && ".join(TFLITE_INSTALL), logf, cpu=first_cpu, timeout=3600)
        run.step(f"{release}: tflite-runtime route install", t0)
    else:
        py = RELEASES[release]
        run.unavailable.append(
            f"{release} (Python {py}), tflite-runtime route: not run: PyPI has no tflite-runtime wheel for "
            f"cp{py.replace('.', '')} aarch64 (`pip download --only-binary=:all: tflite-runtime` finds none; its last "
            "release, 2.14.0, stops at Python 3.11)")

    workload = workload_future.result()
    shutil.copytree(workload, work / "workload")
    routes = ["default"] + (["tflite-runtime"] if tflite else [])
    for route in routes:
        venv = "/work/venv-default" if route == "default" else "/work/venv-tflite"
        for cpu in run.cpus:
            target = Target(release, route, cpu)
            with run.lock:
                run.targets.append(target)
            t0 = time.monotonic()
            out = f"/work/out/probe-{route}-{cpu}.json"
            proc = chroot.run(f"cd /work/probe && {venv}/bin/python probe.py /work/workload {out}", logf, cpu=cpu,
                              timeout=3600, check=False)
            host_out = root / out.lstrip("/")
            if proc.returncode == 0 and host_out.exists():
                target.result = json.loads(host_out.read_text())
            else:
                target.error = f"probe exited with {proc.returncode} (see {logf.name})"
            run.step(f"{release} {route} {cpu}: probe", t0)

    if run.run_tests:
        cpu = "pi5" if (release == "trixie" and "pi5" in run.cpus) else first_cpu
        target = next(t for t in run.targets if t.release == release and t.route == "default" and t.cpu == cpu)
        t0 = time.monotonic()
        chroot.run("/work/venv-default/bin/python -m pip install -q pytest onnx", logf, cpu=cpu, timeout=3600)
        # The installed package, not the source tree: importlib mode keeps the checkout off sys.path.
        proc = chroot.run("cd /work/src && /work/venv-default/bin/pytest -q -p no:cacheprovider --import-mode=importlib "
                          f"{' '.join(EMULATED_TESTS)} > /work/out/pytest.txt 2>&1", logf, cpu=cpu, timeout=5400,
                          check=False)
        text = (work / "out" / "pytest.txt").read_text(errors="replace") if (work / "out" / "pytest.txt").exists() else ""
        with open(logf, "a") as fh:
            fh.write(text)
        lines = [line for line in text.splitlines() if line.strip()]
        target.tests = lines[-1].strip("= ") if lines else f"pytest exited with {proc.returncode}"
        target.tests_ok = proc.returncode == 0
        run.step(f"{release}: pytest subset under emulation ({cpu})", t0)


def _logged(fn, *args):
    """Run ``fn`` in a worker thread; say at once when it fails (its future is only read at the end)."""
    try:
        return fn(*args)
    except Exception as exc:
        log(f"{fn.__name__}{tuple(a for a in args if isinstance(a, str))}: FAILED: {type(exc).__name__}: {exc}\n"
            f"{getattr(exc, 'output', '') or ''}")
        raise


# -- comparison ------------------------------------------------------------------------------------


def _cos(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def _ranking_ok(ref: list[tuple[str, float]], got: list[tuple[str, float]], atol: float) -> tuple[bool, float, bool]:
    """(same items in an order that differs at most among near-ties, max |score diff|, identical order)."""
    ref_scores = dict(ref)
    got_scores = dict(got)
    if [k for k, _ in ref] == [k for k, _ in got]:
        return True, max((abs(ref_scores[k] - got_scores[k]) for k in ref_scores), default=0.0), True
    if set(ref_scores) != set(got_scores):
        # the last place may hold another item when it ties with the first one left out
        return False, float("nan"), False
    diff = max(abs(ref_scores[k] - got_scores[k]) for k in ref_scores)
    order = [k for k, _ in got]
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            if ref_scores[order[i]] < ref_scores[order[j]] - atol:
                return False, diff, False
    return True, diff, False


def compare(check: Check, route: str, ref: dict, got: dict) -> tuple[bool, str]:
    """(pass, the cell's text) for one check of one column."""
    if route not in check.routes:
        return True, "-"
    expected_error = check.refusal(route)
    r, g = ref.get(check.key, {}), got.get(check.key, {})
    if expected_error:
        ok = g.get("error") == expected_error and r.get("error") == expected_error
        return ok, f"refused: {g.get('error') or 'no error'}" + ("" if ok else f" (x86: {r.get('error') or 'no error'})")
    if "error" in r:
        return False, f"x86 reference failed: {r['error']}"
    if "error" in g:
        return False, f"{g['error']}: {g.get('message', '')[:80]}"
    rv, gv = r["value"], g["value"]
    if check.kind == "vectors":
        if rv.get("sha256") != gv.get("sha256"):
            return False, "model file differs from x86's"
        names = sorted(rv["vectors"])
        if names != sorted(gv["vectors"]):
            return False, "different items"
        cos = min(_cos(rv["vectors"][n], gv["vectors"][n]) for n in names)
        diff = max(max(abs(x - y) for x, y in zip(rv["vectors"][n], gv["vectors"][n])) for n in names)
        ids_ok = rv.get("ids") == gv.get("ids")
        ok = cos >= check.tol(route) and ids_ok
        text = f"cos {cos:.8f}, max diff {diff:.1e}" + ("" if "ids" not in rv else (", ids equal" if ids_ok else ", IDS DIFFER"))
        return ok, text
    if check.kind in ("top5", "zero_shot", "hits"):
        if check.kind == "top5":
            ref_rank = {n: [(f"{i}:{label}", s) for i, label, s in v] for n, v in rv["top5"].items()}
            got_rank = {n: [(f"{i}:{label}", s) for i, label, s in v] for n, v in gv["top5"].items()}
        elif check.kind == "zero_shot":
            ref_rank = {n: [tuple(x) for x in v] for n, v in rv["ranked"].items()}
            got_rank = {n: [tuple(x) for x in v] for n, v in gv["ranked"].items()}
        else:
            ref_rank = {n: [tuple(x) for x in v] for n, v in rv["hits"].items()}
            got_rank = {n: [tuple(x) for x in v] for n, v in gv["hits"].items()}
        if sorted(ref_rank) != sorted(got_rank):
            return False, "different queries"
        same = ok_count = 0
        worst = 0.0
        for n in ref_rank:
            ok, diff, identical = _ranking_ok(ref_rank[n], got_rank[n], check.tol(route))
            ok_count += ok and diff <= check.tol(route)
            same += identical
            worst = max(worst, diff) if not math.isnan(diff) else float("inf")
        total = len(ref_rank)
        unit = {"top5": "top-5", "zero_shot": "rankings", "hits": "hit lists"}[check.kind]
        text = f"{unit} {same}/{total} same, max diff {worst:.1e}"
        if ok_count == total and same < total:
            text += " (near-ties swapped)"
        return ok_count == total, text
    raise ValueError(check.kind)


def cpu_row(target: Target) -> tuple[bool, str]:
    """The pinned CPU model is the one programs see (trap 2: QEMU's default model advertises SVE)."""
    env = (target.result or {}).get("env", {})
    hwcap = env.get("hwcap")
    if hwcap is None:
        return False, "no HWCAP read"
    model = CPUS[target.cpu]
    dotprod, sve = bool(hwcap & emulation.HWCAP_ASIMDDP), bool(hwcap & emulation.HWCAP_SVE)
    ok = dotprod == model.has_dotprod and not sve and env.get("machine") == "aarch64"
    return ok, f"{env.get('qemu_cpu')}: {'dotprod' if dotprod else 'no dotprod'}, {'SVE' if sve else 'no SVE'}"


def table(run: Run) -> tuple[bool, list[str]]:
    """(every cell passed, the Markdown lines); counts cells in :data:`TALLY`."""
    cols = sorted(run.targets, key=lambda t: (list(RELEASES).index(t.release), t.route != "default", t.cpu))
    head = ["check", "tolerance"] + [t.name for t in cols]
    rows = [head, ["---"] * len(head)]
    all_ok = True

    def cell(ok: bool, text: str) -> str:
        if text == "-":
            return text
        TALLY["passed" if ok else "failed"] += 1
        return f"{'PASS' if ok else 'FAIL'} {text}"

    row = ["CPU model seen by programs", "pinned Pi core, no SVE"]
    for t in cols:
        ok, text = cpu_row(t) if t.result else (False, t.error or "no result")
        all_ok &= ok
        row.append(cell(ok, text))
    rows.append(row)
    for check in CHECKS:
        tols = ([check.describe("default")] + [f"{r}: {check.describe(r)}" for r, _ in check.route_tolerance]
                + [f"{r}: refused ({e})" for r, e in check.refused_on])
        row = [check.label, "; ".join(tols)]
        for t in cols:
            ref = run.x86.get(t.route)
            if t.route not in check.routes:
                row.append("-")
                continue
            if ref is None:
                ok, text = False, f"no x86 reference ({run.x86_errors.get(t.route, 'not run')})"
            elif t.result is None:
                ok, text = False, t.error or "no result"
            else:
                ok, text = compare(check, t.route, ref["results"], t.result["results"])
            all_ok &= ok
            row.append(cell(ok, text))
        rows.append(row)
    if run.run_tests:
        row = [f"pytest subset under emulation ({len(EMULATED_TESTS)} modules)", "all pass"]
        for t in cols:
            if t.tests is None:
                row.append("-")
            else:
                all_ok &= bool(t.tests_ok)
                row.append(cell(bool(t.tests_ok), t.tests))
        rows.append(row)
    return all_ok, ["| " + " | ".join(r) + " |" for r in rows]


TALLY = {"passed": 0, "failed": 0}


def environment_table(run: Run) -> list[str]:
    cols = sorted(run.targets, key=lambda t: (list(RELEASES).index(t.release), t.route != "default", t.cpu))
    seen: dict[tuple[str, str], Target] = {}
    for t in cols:
        if t.result and (t.release, t.route) not in seen:
            seen[(t.release, t.route)] = t
    keys = ["python", "edge-embedder", "numpy", "opencv-python-headless", "pillow", "ai-edge-litert", "tflite-runtime",
            "onnxruntime", "tokenizers", "usearch"]
    head = ["", *(f"x86 {r}" for r in run.x86), *(f"{rel} {route}" for rel, route in seen)]
    envs = [run.x86[r]["env"] for r in run.x86] + [t.result["env"] for t in seen.values() if t.result]
    rows = [head, ["---"] * len(head)]
    for k in keys:
        vals = [(e["python"] if k == "python" else e["versions"].get(k, "-")) for e in envs]
        rows.append([k, *vals])
    return ["| " + " | ".join(r) + " |" for r in rows]


# -- main ------------------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--releases", default=",".join(RELEASES), help="comma-separated: " + ", ".join(RELEASES))
    ap.add_argument("--cpus", default=",".join(CPUS), help="comma-separated Pi CPU models: " + ", ".join(CPUS))
    ap.add_argument("--no-tests", action="store_true", help="skip the pytest subset under emulation")
    ap.add_argument("--out", type=Path, help="also write the table and environment as Markdown here")
    ap.add_argument("--rebuild-rootfs", action="store_true", help="rebuild the cached root filesystems")
    ap.add_argument("--mirror", default=os.environ.get("EDGE_EMBEDDER_ARM_MIRROR", emulation.DEFAULT_MIRROR))
    ap.add_argument("--keep", action="store_true", help="keep the working folder (logs, root filesystems, venvs)")
    args = ap.parse_args(argv)
    releases = [r for r in args.releases.split(",") if r]
    cpus = [c for c in args.cpus.split(",") if c]
    bad = [r for r in releases if r not in RELEASES] + [c for c in cpus if c not in CPUS]
    if bad:
        ap.error(f"unknown release or CPU model: {', '.join(bad)}")

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="edge_embedder_arm_", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    run = Run(workdir, workdir / "logs", releases, cpus, not args.no_tests)
    run.load_start = _loadavg()
    run.logs.mkdir()
    log(f"working folder {workdir} (logs in {run.logs})")
    try:
        t0 = time.monotonic()
        run.qemu = emulation.ensure_host(run.logs / "host.log")
        run.step("host packages and binfmt", t0)
    except (EmulationError, subprocess.CalledProcessError) as exc:
        print(f"arm check: cannot run on this host: {exc}\n{getattr(exc, 'output', '') or ''}", file=sys.stderr)
        return 2

    src = clean_copy(workdir / "src")
    shutil.copytree(HERE, workdir / "probe", ignore=shutil.ignore_patterns("__pycache__"))
    ok = False
    try:
        with ThreadPoolExecutor(max_workers=4 + len(releases)) as pool:

            def rootfs(release: str) -> Path:
                t0 = time.monotonic()
                path, cached = emulation.cached_rootfs(release, run.logs / f"rootfs-{release}.log", args.mirror,
                                                       args.rebuild_rootfs)
                run.rootfs_cached[release] = cached
                run.step(f"{release}: root filesystem ({'cached' if cached else 'built'})", t0)
                return path

            def workload() -> Path:
                import workload as wl

                t0 = time.monotonic()
                out = wl.build(workdir / "workload", run.logs / "workload.log")
                run.step("x86: workload (conversions and indexes)", t0)
                return out

            roots = {r: pool.submit(rootfs, r) for r in releases}
            work_f = pool.submit(workload)
            venvs = {route: pool.submit(x86_venv, run, route, src) for route in ROUTES}
            arms = {r: pool.submit(_logged, arm_release, run, r, roots[r], work_f, src) for r in releases}
            for route, fut in venvs.items():
                try:
                    x86_probe(run, route, fut.result(), work_f.result())
                except Exception as exc:  # the route's columns fail; the rest of the run goes on
                    run.x86_errors[route] = f"{type(exc).__name__}: {exc}"[:300]
                    log(f"x86 {route}: FAILED: {run.x86_errors[route]}")
            for release, fut in arms.items():
                try:
                    fut.result()
                except Exception as exc:
                    log(f"{release}: FAILED: {type(exc).__name__}: {exc}\n{getattr(exc, 'output', '') or ''}")
                    with run.lock:
                        if not any(t.release == release for t in run.targets):
                            run.targets.append(Target(release, "default", cpus[0], error=f"{type(exc).__name__}"))
                        for t in run.targets:
                            if t.release == release and t.result is None and t.error is None:
                                t.error = f"{type(exc).__name__} (see {release}.log)"
        ok, lines = table(run)
        command = "python tests/arm/check.py" + (f" --out {args.out}" if args.out else "")
        report = render(run, lines, ok, time.monotonic() - started, command)
        print("\n" + report)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(report)
            log(f"wrote {args.out}")
    except Exception:
        traceback.print_exc()
        ok = False
    finally:
        if not ok:  # CI keeps no files: show where it went wrong
            for f in sorted(run.logs.glob("*.log")):
                tail = f.read_text(errors="replace").splitlines()[-30:]
                print(f"\n--- last lines of {f.name} ---\n" + "\n".join(tail))
        if args.keep or not ok:
            log(f"kept {workdir} (logs: {run.logs})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"arm check {'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    print(f"aarch64: {TALLY['passed']} passed, {TALLY['failed'] + (0 if ok or TALLY['failed'] else 1)} failed")
    return 0 if ok else 1


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")


def render(run: Run, lines: list[str], ok: bool, seconds: float, command: str) -> str:
    cpus = ", ".join(f"{CPUS[c].board} = QEMU `{CPUS[c].qemu_cpu}`" for c in run.cpus)
    out = [
        "# aarch64 check: the Raspberry Pi path under emulation",
        "",
        f"Written by `{command}` (as root, from the repository root) on {time.strftime('%Y-%m-%d', time.gmtime())}. "
        f"Result: **{'PASS' if ok else 'FAIL'}**.",
        "",
        f"Host: x86_64, {_lscpu_model()}, Debian's {run.qemu.strip()} (user mode). Releases: "
        + ", ".join(f"{r} (Python {RELEASES[r]})" for r in run.releases) + f". CPU models: {cpus}, "
        "each with that board's `/proc/cpuinfo` bind-mounted.",
        "",
        "Every ARM cell compares with x86 running the same route, the same files and the same probe "
        "(`tests/arm/probe.py`, one thread). Correctness only: timings under emulation say nothing about a board.",
        "",
        *lines,
        "",
    ]
    out += [f"- {u}" for u in run.unavailable]
    if run.unavailable:
        out.append("")
    out += ["Install commands run in a fresh virtual environment, in a clean copy of the checkout:", "",
            f"- default route: `{DEFAULT_INSTALL}`",
            f"- tflite-runtime route: `{TFLITE_INSTALL[0]}`, then `{TFLITE_INSTALL[1]}`",
            f"- then, for the pytest subset (default route): `pip install pytest onnx`; "
            f"`pytest --import-mode=importlib` on {', '.join(m.split('/')[-1] for m in EMULATED_TESTS)}",
            "", "Versions installed:", "", *environment_table(run), "",
            f"Wall time of this run on the x86 host (what the check costs CI, not a board's speed): {seconds / 60:.1f} min, "
            f"load average {run.load_start} at the start and {_loadavg()} at the end ({os.cpu_count()} CPUs); "
            "root filesystems " + ", ".join(f"{r} {'cached' if c else 'built'}" for r, c in run.rootfs_cached.items())
            + ".", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
