"""The benchmark harness: what each model variant costs and loses, beside the alternatives.

Used by ``edge-embedder bench`` (``.cli``) and the standard runs
(``.standard_runs``). One :func:`run_bench` call:

1. collects the images (a folder, skipping unreadable files with a count, or
   the default set: the bundled photos and scikit-image's, in several views),
2. measures the machine's fp32 and int8 matmul peak per thread count
   (:mod:`edge_embedder.bench.peak`) and counts each model's FLOPs from its graph
   (:mod:`edge_embedder.bench.flops`),
3. runs one fresh worker process (:mod:`edge_embedder.bench.worker`) per
   (model, backend, thread count): cold start, peak RSS, warm-up, counted
   runs split into preprocessing and inference,
4. computes accuracy against ``reference`` (mean / min cosine and recall@1 of
   nearest-neighbour retrieval from the variant's vectors into the reference's;
   for classifiers, whose "vectors" are the per-class scores, also top-1
   agreement and the mean absolute score difference),
5. returns a :class:`BenchReport` (JSON-serialisable; :mod:`edge_embedder.bench.report`
   renders Markdown, CSV and the plot).

A model whose outputs carry labels (classification metadata) is benchmarked as
a classifier: ``ImageClassifier.classify`` here, MediaPipe's ``ImageClassifier``,
``pipeline("image-classification")`` for the transformers route; every class
is returned, as both runtimes do by default.

A model that fails (not loadable, breaks the contract) becomes a failed row
with its reason and the run goes on. Ctrl-C stops the current worker and
returns what was measured so far, with ``interrupted`` set.

Comparisons are reported as ratios to edge_embedder measured in the same run
(``x_<backend>``: their median / ours; above 1 means edge_embedder is faster),
because absolute times on a shared machine drift between runs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .flops import FlopsUnavailable, count_flops

SCHEMA = "edge_embedder.bench/1"
COMPARE_BACKENDS = ("mediapipe", "transformers", "onnxruntime")

__all__ = ["BenchConfig", "BenchReport", "ImageSet", "collect_images", "default_images", "run_bench",
           "latency_stats", "accuracy_metrics", "source_checkpoint", "model_task", "COMPARE_BACKENDS", "SCHEMA"]


# -- configuration and results -----------------------------------------------------


@dataclass
class BenchConfig:
    models: Sequence[str]
    threads: Sequence[int] = (2,)
    runs: int = 50
    warmup: int = 5
    images: Optional[str] = None  # folder; None: default image set
    reference: Optional[str] = None
    compare: Sequence[str] = ()
    source_checkpoint: Optional[str] = None
    latency_images: int = 8  # the latency loop cycles through the first N images
    accuracy_images: Optional[int] = None  # None: every image
    measure_peak: bool = True
    work_dir: Optional[str] = None


@dataclass
class ImageSet:
    paths: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    source: str = ""


@dataclass
class BenchReport:
    config: dict[str, Any]
    machine: dict[str, Any]
    images: dict[str, Any]
    peaks: dict[str, Any]
    rows: list[dict[str, Any]]
    interrupted: bool = False
    started: str = ""
    duration_s: float = 0.0
    reference: Optional[dict[str, Any]] = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "started": self.started,
            "duration_s": round(self.duration_s, 1),
            "interrupted": self.interrupted,
            "machine": self.machine,
            "config": self.config,
            "images": self.images,
            "peaks": self.peaks,
            "reference": self.reference,
            "rows": self.rows,
        }

    @property
    def failed_models(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["backend"] == "edge_embedder" and r["status"] == "failed"]


# -- images --------------------------------------------------------------------------


def collect_images(folder: str | Path) -> ImageSet:
    """Every decodable image in ``folder`` (sorted); unreadable files are listed in ``skipped``."""
    from edge_embedder import Image
    from edge_embedder.errors import ImageError

    p = Path(folder)
    if not p.is_dir():
        raise NotADirectoryError(f"--images {folder}: not a folder")
    ok, skipped = [], []
    for f in sorted(x for x in p.iterdir() if x.is_file() and not x.name.startswith(".")):
        try:
            Image.create_from_file(str(f))
        except ImageError as exc:  # the reason without the path: results name files, not machine paths
            skipped.append({"file": f.name, "reason": " ".join(exc.reason.split())[:200]})
            continue
        except OSError as exc:
            skipped.append({"file": f.name, "reason": exc.strerror or type(exc).__name__})
            continue
            continue
        ok.append(str(f))
    return ImageSet(ok, skipped, source=p.name)  # the folder's name: no machine paths in results


def default_images(cache_dir: str | Path) -> ImageSet:
    """The bundled sample photos plus scikit-image's other photos, each in 5 views.

    Views: full, mirrored, centre 70% crop, top-left and bottom-right 60%
    crops. Written once as PNG under ``cache_dir``. Near-duplicate views make
    recall@1 a meaningful retrieval test rather than a trivially easy one.
    """
    from PIL import Image as PILImage

    from edge_embedder import Image
    from edge_embedder.resources import sample_images

    photos: dict[str, np.ndarray] = {
        n: np.asarray(Image.create_from_file(str(p)).numpy_view()) for n, p in sample_images().items()
    }
    try:
        import skimage.data as sd

        for name, index in (("hubble_deep_field", None), ("immunohistochemistry", None), ("retina", None),
                            ("stereo_motorcycle", 0), ("coffee", None)):
            if name == "coffee":
                continue
            img = getattr(sd, name)()
            img = img[index] if index is not None else img
            if getattr(img, "ndim", 0) == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
                photos[name] = np.asarray(img)
    except ImportError:
        pass
    out = Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    # full views first: the latency loop uses the first N images
    for view in ("full", "mirror", "centre70", "topleft60", "bottomright60"):
        for name, img in photos.items():
            f = out / f"{name}_{view}.png"
            if not f.exists():
                h, w = img.shape[:2]
                v = {
                    "full": img,
                    "mirror": img[:, ::-1],
                    "centre70": img[int(h * .15):int(h * .85), int(w * .15):int(w * .85)],
                    "topleft60": img[:int(h * .6), :int(w * .6)],
                    "bottomright60": img[int(h * .4):, int(w * .4):],
                }[view]
                tmp = f.with_suffix(".tmp.png")
                PILImage.fromarray(np.ascontiguousarray(v)).save(tmp)
                os.replace(tmp, f)
            paths.append(str(f))
    return ImageSet(paths, [], source=f"default: {len(photos)} photos x 5 views")


# -- statistics ------------------------------------------------------------------------


def latency_stats(ns: Sequence[int]) -> Optional[dict[str, float]]:
    """p50 / p90 / p99 / mean / min / max in milliseconds (nearest-rank percentiles)."""
    if not ns:
        return None
    a = np.sort(np.asarray(ns, dtype=np.float64)) / 1e6

    def pct(q: float) -> float:
        k = max(0, int(np.ceil(q / 100 * len(a))) - 1)
        return float(a[k])

    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "mean": float(a.mean()),
            "min": float(a[0]), "max": float(a[-1]), "n": int(len(a))}


def accuracy_metrics(variant: np.ndarray, reference: np.ndarray, classification: bool = False) -> dict[str, Any]:
    """Cosine of each image's variant vector with its reference vector, and recall@1.

    recall@1: for each image, the nearest reference vector (by cosine) to the
    variant's vector is the same image's. ``classification`` (score vectors):
    also ``top1_agreement`` (same arg-max class) and ``mean_abs_score_diff`` /
    ``max_abs_score_diff`` over every class and image.
    """
    if variant.shape != reference.shape:
        raise ValueError(f"embedding shapes differ: variant {variant.shape[1:]} vs reference {reference.shape[1:]}")
    v = variant / np.maximum(np.linalg.norm(variant, axis=1, keepdims=True), 1e-12)
    r = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    sim = v.astype(np.float64) @ r.astype(np.float64).T
    diag = np.diag(sim)
    nearest = sim.argmax(axis=1)
    out = {
        "mean_cosine": float(diag.mean()),
        "min_cosine": float(diag.min()),
        "recall_at_1": float((nearest == np.arange(len(sim))).mean()),
        "n_images": int(len(sim)),
    }
    if classification:
        diff = np.abs(variant.astype(np.float64) - reference.astype(np.float64))
        out.update(top1_agreement=float((variant.argmax(1) == reference.argmax(1)).mean()),
                   mean_abs_score_diff=float(diff.mean()), max_abs_score_diff=float(diff.max()))
    return out


def model_task(model: str | Path) -> str:
    """``image-classification`` when the model's outputs carry labels / calibration / a threshold, else
    ``image-embedding`` (what ``inspect_model`` reads from the same metadata)."""
    md = _metadata(model)
    if md is None:
        return "image-embedding"
    files = [f for t in md.outputs for f in t.associated_files]
    classifier = any(f.type in ("TENSOR_AXIS_LABELS", "TENSOR_AXIS_SCORE_CALIBRATION") for f in files) or any(
        t.score_calibration is not None or t.score_threshold is not None for t in md.outputs)
    return "image-classification" if classifier else "image-embedding"


# -- source checkpoints ----------------------------------------------------------------


EFFICIENTNET_SOURCE = "efficientnet-lite0"


def source_checkpoint(model: str | Path, explicit: Optional[str] = None) -> Optional[str]:
    """The source checkpoint of a model file for the PyTorch-eager comparison.

    ``explicit`` (``--source-checkpoint``) wins. Otherwise the model metadata:
    a custom-metadata JSON object with a ``checkpoint`` (the converters write
    one), or the shipped EfficientNet-Lite0's name. Returns a folder, the
    special name ``efficientnet-lite0``, or None.
    """
    if explicit:
        return explicit
    md = _metadata(model)
    if md is None:
        return None
    for _key, raw in md.custom_metadata:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        found = _find_checkpoint(obj)
        if found:
            return found
    text = " ".join(filter(None, (md.name, md.author)))
    if "efficientnet-lite0" in text.lower().replace(" ", "-"):
        return EFFICIENTNET_SOURCE
    return None


def _find_checkpoint(obj: Any) -> Optional[str]:
    if isinstance(obj, dict):
        model_type = str(obj.get("model_type", "")).lower()
        if model_type == EFFICIENTNET_SOURCE:
            return EFFICIENTNET_SOURCE
        ck = obj.get("checkpoint") or obj.get("source_checkpoint")
        if isinstance(ck, str) and ck:
            if ck.startswith("efficientnet-lite0"):
                return EFFICIENTNET_SOURCE
            return ck
        for v in obj.values():
            found = _find_checkpoint(v)
            if found:
                return found
    return None


def _metadata(model: str | Path):
    from edge_embedder.errors import EdgeEmbedderError

    try:
        data = Path(model).read_bytes()
    except OSError:
        return None
    try:
        if len(data) >= 8 and data[4:8] == b"TFL3":
            from edge_embedder.metadata import read_tflite_metadata

            return read_tflite_metadata(data)
        import onnx

        from edge_embedder.metadata import from_onnx_props

        m = onnx.load_from_string(data)
        props = {p.key: p.value for p in m.metadata_props}
        del m, data
        return from_onnx_props(props)
    except (EdgeEmbedderError, ImportError, Exception):  # no metadata is not an error here
        return None


# -- machine ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("edge_embedder", "ai_edge_litert", "mediapipe", "onnxruntime", "torch", "transformers", "numpy"):
        versions[mod] = _version_of(mod)
    return {"cpu": cpu, "cores": os.cpu_count(), "cpu_flags": cpu_flags(), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions}


#: The SIMD features that decide which kernels XNNPACK / MLAS / oneDNN pick (x86 and ARM names).
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "avx512_fp16", "amx_int8", "asimd", "asimddp", "asimdhp", "i8mm", "bf16", "sve", "sve2")


def cpu_flags() -> list[str]:
    """The machine's SIMD features from /proc/cpuinfo (``flags`` on x86, ``Features`` on ARM), in SIMD_FLAGS order."""
    have: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have.update(line.split(":", 1)[1].split())
                break
    except OSError:
        return []
    return [f for f in SIMD_FLAGS if f in have]


def _loadavg() -> Optional[list[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _version_of(module: str) -> Optional[str]:
    from importlib import metadata

    names = {"edge_embedder": "edge-embedder", "ai_edge_litert": "ai-edge-litert"}
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return None


# -- running -----------------------------------------------------------------------------


@dataclass
class _Task:
    label: str
    backend: str  # worker backend name
    report_backend: str  # edge_embedder / mediapipe / transformers / onnxruntime
    threads: int
    model: Optional[str]
    checkpoint: Optional[str] = None
    want_vectors: bool = False
    pair: Optional[str] = None  # label of the edge_embedder row it is compared with
    group: Optional[str] = None
    runs: int = 0
    warmup: int = 0
    is_reference_only: bool = False
    is_skipped: Optional[str] = None
    task: str = "image-embedding"

    def steps(self, n_acc: int) -> int:
        if self.is_skipped:
            return 0
        return 1 + self.warmup + self.runs + (n_acc if self.want_vectors else 0)


class _Interrupted(Exception):
    pass


def run_bench(cfg: BenchConfig, progress: Optional[Callable[[str, int, int], None]] = None,
              progress_total: Optional[Callable[[int], None]] = None) -> BenchReport:
    """Run every measurement of ``cfg``; never raises for a failing model (see module doc).

    ``progress(description, steps_done_delta, 0)`` is called as workers report;
    ``progress_total(n)`` once with the total number of steps. The workers'
    files go to ``cfg.work_dir`` (kept), else to a temporary folder removed at the end.
    """
    if cfg.work_dir:
        return _run_bench(cfg, Path(cfg.work_dir), progress, progress_total)
    work = Path(tempfile.mkdtemp(prefix="edge_embedder_bench_"))
    try:
        return _run_bench(cfg, work, progress, progress_total)
    finally:  # the workers' jobs, logs and vectors: kept only with --work-dir
        shutil.rmtree(work, ignore_errors=True)


def _run_bench(cfg: BenchConfig, work: Path, progress: Optional[Callable[[str, int, int], None]],
               progress_total: Optional[Callable[[int], None]]) -> BenchReport:
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t_start = time.monotonic()
    machine = machine_info()
    machine["loadavg_start"] = _loadavg()
    work.mkdir(parents=True, exist_ok=True)

    imgs = collect_images(cfg.images) if cfg.images else default_images(cache_dir() / "bench_images")
    if not imgs.paths:
        raise ValueError(f"no readable image in {imgs.source} ({len(imgs.skipped)} unreadable file(s) skipped)")
    lat_images = imgs.paths[: max(1, cfg.latency_images)]
    acc_images = imgs.paths if cfg.accuracy_images is None else imgs.paths[: cfg.accuracy_images]

    unavailable = {c: why for c in cfg.compare if (why := _unavailable(c))}
    compare = [c for c in cfg.compare if c not in unavailable]
    labels = _labels(cfg.models)
    ref_label = None
    if cfg.reference:
        ref_abs = os.path.abspath(cfg.reference)
        ref_label = next((labels[m] for m in cfg.models if os.path.abspath(m) == ref_abs), None)
    static = _static_facts(cfg, labels, compare)
    peaks = _measure_peaks(cfg.threads) if cfg.measure_peak else {}
    tasks = _plan_tasks(cfg, labels, static, compare, ref_label)
    if progress_total:
        progress_total(sum(task.steps(len(acc_images) if cfg.reference else 0) for task in tasks))
    run = _run_tasks(tasks, cfg, static, peaks, lat_images, acc_images, work, progress)
    if cfg.reference:
        _add_accuracy(cfg, run, static, ref_label)
    if cfg.measure_peak and not run.interrupted:
        # Peak = best of a measurement before and after the rows: a busy moment
        # on a shared machine must not make models look closer to peak than they are.
        for t, again in _measure_peaks(cfg.threads).items():
            for dt, v in again.items():
                old = peaks[t].get(dt) or {}
                if v.get("gflops") and (not old.get("gflops") or v["gflops"] > old["gflops"]):
                    peaks[t][dt] = v
        for r in run.rows:
            apply_peak(r, peaks)
    compute_ratios(run.rows)
    machine["loadavg_end"] = _loadavg()
    cfg_json = _config_json(cfg)
    cfg_json["compare_unavailable"] = unavailable
    return BenchReport(
        config=cfg_json,
        machine=machine,
        images={"source": imgs.source, "count": len(imgs.paths), "latency_images": len(lat_images),
                "accuracy_images": len(acc_images) if cfg.reference else 0,
                "skipped": len(imgs.skipped), "skipped_files": imgs.skipped},
        peaks=peaks,
        rows=run.rows,
        interrupted=run.interrupted,
        started=started,
        duration_s=time.monotonic() - t_start,
        reference=run.ref_info,
    )


def _config_json(cfg: BenchConfig) -> dict[str, Any]:
    """The configuration as the report records it: file and folder names, never machine paths."""
    out = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in cfg.__dict__.items()}
    out["models"] = [Path(m).name for m in cfg.models]
    for key in ("reference", "images", "source_checkpoint", "work_dir"):
        if out.get(key):
            out[key] = Path(str(out[key])).name
    return out


def _static_facts(cfg: BenchConfig, labels: dict[str, str], compare: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per model, what needs no worker: file name and size, graph FLOPs (or why not), source checkpoint, task."""
    static: dict[str, dict[str, Any]] = {}
    for m in cfg.models:
        size = Path(m).stat().st_size if Path(m).is_file() else None
        fl, flops_why = None, None
        try:
            fl = count_flops(m)
        except FlopsUnavailable as exc:
            flops_why = str(exc)
        ckpt = source_checkpoint(m, cfg.source_checkpoint) if "transformers" in compare else None
        static[labels[m]] = {"file": Path(m).name, "size": size, "flops": fl, "flops_why": flops_why,
                             "checkpoint": ckpt, "format": "onnx" if str(m).endswith(".onnx") else "tflite",
                             "task": model_task(m)}
    return static


def _measure_peaks(threads: Sequence[int]) -> dict[str, dict[str, Any]]:
    from .peak import measure_peaks

    return {str(t): measure_peaks(t) for t in threads}


def _plan_tasks(cfg: BenchConfig, labels: dict[str, str], static: dict[str, dict[str, Any]], compare: Sequence[str],
                ref_label: Optional[str]) -> list["_Task"]:
    """The rows to measure, in order: per thread count, each model then its comparisons, so that a
    comparison is measured right next to the row it is divided by."""
    tasks: list[_Task] = []
    first_t = cfg.threads[0]
    tf_done: set[tuple[str, str, int]] = set()
    if cfg.reference and ref_label is None:
        tasks.append(_Task("reference", "edge_embedder", "edge_embedder", first_t, cfg.reference,
                           want_vectors=True, is_reference_only=True, task=model_task(cfg.reference)))
    for t in cfg.threads:
        for m in cfg.models:
            lab = labels[m]
            st = static[lab]
            tk = st["task"]
            tasks.append(_Task(lab, "edge_embedder", "edge_embedder", t, m, want_vectors=bool(cfg.reference) and t == first_t,
                               runs=cfg.runs, warmup=cfg.warmup, task=tk))
            if "mediapipe" in compare and st["format"] == "tflite":
                tasks.append(_Task(lab, "mediapipe", "mediapipe", t, m, pair=lab, runs=cfg.runs, warmup=cfg.warmup,
                                   task=tk))
            if "onnxruntime" in compare and st["format"] == "onnx" and tk == "image-embedding":
                tasks.append(_Task(lab, "onnxruntime", "onnxruntime", t, m, pair=lab, runs=cfg.runs, warmup=cfg.warmup))
            ck = st["checkpoint"]
            if "transformers" in compare and not ck:
                tasks.append(_Task(lab, "transformers", "transformers", t, None, pair=lab, is_skipped=
                                   "skipped: no source checkpoint in the metadata; pass --source-checkpoint DIR"))
            if "transformers" in compare and ck and (ck, tk, t) not in tf_done:
                tf_done.add((ck, tk, t))
                backend = "torch-efficientnet-lite0" if ck == EFFICIENTNET_SOURCE else "transformers"
                tasks.append(_Task(Path(ck).name or ck, backend, "transformers", t, None, checkpoint=ck, pair=lab,
                                   group=ck, runs=cfg.runs, warmup=cfg.warmup, task=tk))
    return tasks


@dataclass
class _Run:
    rows: list[dict[str, Any]] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    ref_info: Optional[dict[str, Any]] = None
    interrupted: bool = False


def _run_tasks(tasks: list["_Task"], cfg: BenchConfig, static: dict[str, dict[str, Any]], peaks: dict[str, Any],
               lat_images: list[str], acc_images: list[str], work: Path,
               progress: Optional[Callable[[str, int, int], None]]) -> _Run:
    """Each task in a fresh worker process; stops at Ctrl-C, keeping what was measured."""
    run = _Run()
    n_acc = len(acc_images) if cfg.reference else 0
    failed_labels: set[str] = set()
    for task in tasks:
        if task.is_skipped:
            run.rows.append(_skipped_row(task, static, task.is_skipped))
            continue
        if task.report_backend not in ("edge_embedder", "transformers") and task.pair in failed_labels:
            run.rows.append(_skipped_row(task, static, "skipped: the model failed in edge_embedder"))
            continue
        desc = f"{task.label} | {task.report_backend} | {task.threads}t"
        done = [0]

        def on_steps(n: int, d: str = desc, done: list[int] = done) -> None:
            done[0] += n
            if progress:
                progress(d, n, 0)

        try:
            res = _run_worker(task, lat_images, acc_images if task.want_vectors else [], work, on_steps)
        except _Interrupted:
            run.interrupted = True
            break
        if progress and task.steps(n_acc) > done[0]:  # a failed worker: count its remaining steps as done
            progress(desc, task.steps(n_acc) - done[0], 0)
        if task.is_reference_only:
            run.ref_info = {"file": Path(str(cfg.reference)).name, "status": res["status"], "error": res.get("error")}
            if res["status"] == "ok" and res.get("vectors"):
                run.vectors["__reference__"] = np.load(res["vectors"])
            continue
        if res["status"] == "ok" and res.get("vectors"):
            run.vectors[task.label] = np.load(res["vectors"])
        if task.report_backend == "edge_embedder" and res["status"] != "ok":
            failed_labels.add(task.label)
        if res.get("interrupted"):
            if res["total_ns"]:  # the runs measured before Ctrl-C
                run.rows.append(_row(task, res, static, peaks))
                run.rows[-1]["error"] = f"interrupted after {len(res['total_ns'])} of {task.runs} runs"
            run.interrupted = True
            break
        run.rows.append(_row(task, res, static, peaks))
    return run


def _add_accuracy(cfg: BenchConfig, run: _Run, static: dict[str, dict[str, Any]], ref_label: Optional[str]) -> None:
    """Accuracy against the reference's vectors (thread-independent: measured once, at the first thread count)."""
    reference = Path(str(cfg.reference)).name
    ref_vecs = run.vectors.get("__reference__") if ref_label is None else run.vectors.get(ref_label)
    if run.ref_info is None:
        ref_row = next((r for r in run.rows if r["model"] == ref_label and r["backend"] == "edge_embedder"), None)
        run.ref_info = {"file": reference, "label": ref_label,
                        "status": ref_row["status"] if ref_row else "not run",
                        "error": ref_row.get("error") if ref_row else None}
    for r in run.rows:
        if r["backend"] != "edge_embedder" or r["status"] != "ok":
            continue
        v = run.vectors.get(r["model"])
        if ref_vecs is None:
            r["accuracy"] = {"error": f"reference failed: {run.ref_info.get('error') or run.ref_info.get('status')}"}
        elif v is not None:
            try:
                is_cls = (static.get(r["model"]) or {}).get("task") == "image-classification"
                r["accuracy"] = dict(accuracy_metrics(v, ref_vecs, classification=is_cls), reference=reference,
                                     measured_at_threads=cfg.threads[0])
            except ValueError as exc:
                r["accuracy"] = {"error": str(exc), "reference": reference}


def cache_dir() -> Path:
    """Where reusable inputs go (the default image set): ``$XDG_CACHE_HOME/edge_embedder`` or ``~/.cache/edge_embedder``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edge_embedder"


def worker_env() -> dict[str, str]:
    """The environment of a worker process: this process' own ``edge_embedder`` comes first.

    Workers run in the caller's working directory (relative paths mean what
    they meant to the caller) and import the same ``edge_embedder`` as this
    process, installed or from a source checkout.
    """
    import edge_embedder

    env = dict(os.environ)
    root = str(Path(edge_embedder.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _unavailable(backend: str) -> Optional[str]:
    """Why a comparison cannot run here (a package is missing), or None."""
    import importlib.util

    need = {"mediapipe": ("mediapipe",), "transformers": ("torch", "transformers"), "onnxruntime": ("onnxruntime",)}
    missing = [m for m in need.get(backend, ()) if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def _labels(models: Sequence[str]) -> dict[str, str]:
    """File stem; the file name when stems collide (x.tflite / x.onnx); the path when names do too."""
    stems = [Path(m).stem for m in models]
    names = [Path(m).name for m in models]
    out = {}
    for m, s, n in zip(models, stems, names):
        out[m] = s if stems.count(s) == 1 else n if names.count(n) == 1 else str(m)
    return out


def _run_worker(task: _Task, lat_images: list[str], acc_images: list[str], work: Path,
                on_steps: Callable[[int], None]) -> dict[str, Any]:
    safe = "".join(c if c.isalnum() else "_" for c in f"{task.label}_{task.backend}_{task.threads}")
    job = {
        "backend": task.backend,
        "model": os.path.abspath(task.model) if task.model else None,
        "checkpoint": task.checkpoint,
        "task": task.task,
        "threads": task.threads,
        "runs": task.runs,
        "warmup": task.warmup,
        "images": lat_images,
        "accuracy_images": acc_images,
        "vectors_out": str(work / f"{safe}.npy") if acc_images else None,
    }
    job_path = work / f"{safe}.json"
    job_path.write_text(json.dumps(job))
    env = worker_env()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("GLOG_minloglevel", "2")
    err_path = work / f"{safe}.stderr"
    t0 = time.monotonic_ns()
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edge_embedder.bench.worker", str(job_path)],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        result, failure, last = None, None, 0
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("P "):
                    n = int(line[2:])
                    on_steps(n - last)
                    last = n
                elif line.startswith("R "):
                    result = json.loads(line[2:])
                elif line.startswith("F "):
                    failure = line[2:].strip()
            rc = proc.wait()
        except KeyboardInterrupt:
            # The worker got the terminal's SIGINT too and reports its runs so far.
            rest = _drain(proc)
            for line in rest.splitlines():
                if line.startswith("R "):
                    result = json.loads(line[2:])
            if result is None:
                raise _Interrupted() from None
            result["interrupted"] = True
            rc = proc.returncode
    if result is None and rc in (130, -2):
        raise _Interrupted()
    if result is not None:
        result["status"] = "ok"
        result["cold_start_ms"] = (result["t_first_embedding_ns"] - t0) / 1e6
        return result
    if failure is None:
        tail = [ln for ln in err_path.read_text(errors="replace").splitlines() if ln.strip()]
        if rc < 0:
            import signal

            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            failure = f"crashed ({name}) while loading or running the model"
        else:
            failure = f"worker exited with code {rc}" + (f": {tail[-1][:300]}" if tail else "")
    return {"status": "failed", "error": failure}


def _drain(proc: subprocess.Popen) -> str:
    """The rest of a worker's stdout after Ctrl-C; the worker is stopped either way."""
    import signal

    try:
        return proc.communicate(timeout=2)[0] or ""
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        return ""
    try:  # only the parent was interrupted: pass it on
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=10)[0] or ""
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        proc.wait()
        return ""


def _base_row(task: _Task, static: dict[str, Any]) -> dict[str, Any]:
    st = static.get(task.pair or task.label) or static.get(task.label) or {}
    is_tf = task.report_backend == "transformers"
    return {
        "model": task.label,
        "file": None if is_tf else st.get("file"),
        "backend": task.report_backend,
        "threads": task.threads,
        "vs": task.pair,
        "group": task.group or st.get("checkpoint"),
        "status": "ok",
        "error": None,
        "runtime": None,
        "latency_ms": {"total": None, "preprocess": None, "inference": None, "postprocess": None},
        "task": task.task,
        "throughput_per_s": None,
        "cold_start_ms": None,
        "startup_ms": None,
        "peak_rss_mb": None,
        "file_size_bytes": None if is_tf else st.get("size"),
        "flops": None,
        "achieved_gflops": None,
        "peak_gflops": None,
        "pct_of_peak": None,
        "peak_dtype": None,
        "accuracy": None,
        "ratio_to_edge_embedder": None,
        "x": {},
    }


def _skipped_row(task: _Task, static, reason: str) -> dict[str, Any]:
    row = _base_row(task, static)
    row.update(status="skipped", error=reason)
    return row


def _row(task: _Task, res: dict[str, Any], static: dict[str, Any], peaks: dict[str, Any]) -> dict[str, Any]:
    row = _base_row(task, static)
    if res["status"] != "ok":
        row.update(status="failed", error=res["error"])
        return row
    total = latency_stats(res["total_ns"])
    pre = latency_stats(res["preprocess_ns"])
    posts = res.get("postprocess_ns") or []
    post = latency_stats(posts)
    inf = None
    if res["preprocess_ns"]:
        rest = [t - p for t, p in zip(res["total_ns"], res["preprocess_ns"])]
        if posts:  # inference alone: the postprocessing has its own column
            rest = [r - q for r, q in zip(rest, posts)]
        inf = latency_stats(rest)
    row["runtime"] = res["info"]
    row["latency_ms"] = {"total": total, "preprocess": pre, "inference": inf, "postprocess": post}
    row["throughput_per_s"] = 1000.0 / total["mean"] if total else None
    row["cold_start_ms"] = res["cold_start_ms"]
    row["startup_ms"] = res["startup_ms"]
    row["peak_rss_mb"] = res["peak_rss_bytes"] / 2**20
    st = static.get(task.pair or task.label) or {}
    fl = st.get("flops")
    if fl is None:
        row["empty_why"] = {"GFLOP/s": st.get("flops_why") or "FLOPs not counted",
                            "% peak": st.get("flops_why") or "FLOPs not counted"}
    else:
        row["flops"] = fl.to_json()
        t_ms = (inf or total or {}).get("p50")
        if t_ms:
            row["achieved_gflops"] = fl.flops / (t_ms / 1e3) / 1e9
            # transformers runs the source network in fp32, whatever the variant's data type
            row["peak_dtype"] = "fp32" if task.report_backend == "transformers" else fl.compute_dtype
            apply_peak(row, peaks)
    return row


def apply_peak(row: dict[str, Any], peaks: dict[str, Any]) -> None:
    """``pct_of_peak`` of a row with achieved GFLOP/s, or the reason it stays empty (``empty_why``)."""
    dtype = row.get("peak_dtype")
    if not dtype or not row.get("achieved_gflops"):
        return
    pk = (peaks.get(str(row["threads"])) or {}).get(dtype) if peaks else None
    if pk and pk.get("gflops"):
        row["peak_gflops"] = pk["gflops"]
        row["pct_of_peak"] = 100.0 * row["achieved_gflops"] / pk["gflops"]
        (row.get("empty_why") or {}).pop("% peak", None)
    else:
        why = pk["why"] if pk else "no matmul peak measured (--no-peak)"
        row.setdefault("empty_why", {})["% peak"] = why


def compute_ratios(rows: list[dict[str, Any]]) -> None:
    """x_<backend> on edge_embedder rows, ratio_to_edge_embedder on comparison rows (same threads)."""
    ours = {(r["model"], r["threads"]): r for r in rows if r["backend"] == "edge_embedder" and r["status"] == "ok"}

    def p50(r):
        return ((r.get("latency_ms") or {}).get("total") or {}).get("p50")

    for r in rows:
        if r["backend"] == "edge_embedder" or r["status"] != "ok":
            continue
        if r["backend"] == "transformers":
            # the source network against every variant converted from it
            for (_lab, t), o in ours.items():
                if t == r["threads"] and o.get("group") == r["group"] and p50(o):
                    o["x"]["transformers"] = p50(r) / p50(o)
            mine = ours.get((r["vs"], r["threads"]))
        else:
            mine = ours.get((r["vs"], r["threads"]))
            if mine and p50(mine):
                mine["x"][r["backend"]] = p50(r) / p50(mine)
        if mine and p50(mine):
            r["ratio_to_edge_embedder"] = p50(r) / p50(mine)
