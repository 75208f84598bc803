"""The documented standard runs: one command, the README's table.

    python -m edge_embedder.bench.standard_runs [--threads 1,2] [--runs 30] [--cache DIR] [--out-dir DIR]
        [--groups efficientnet,vit,clip,efficientnet-classifier,vit-classifier]
    edge-embedder bench --standard [--threads 1,2] [--runs 30] [-o report.md] [--plot report.png]

Five groups, each benchmarked on every thread count beside MediaPipe (same
.tflite) and the PyTorch-eager route of its source (transformers for ViT /
CLIP, ``edge_embedder.convert.efficientnet_lite0`` for the shipped model), with accuracy
against the group's fp32 file:

* EfficientNet-Lite0, the shipped fp32 and full-int8 files (real weights);
* ViT-B/16 (``ViTConfig()`` defaults, random weights): fp32, fp16 weights,
  dynamic-range int8 ``.tflite``, and the fp32 ``.onnx`` export beside a bare
  ONNX Runtime session;
* CLIP ViT-B/32 vision tower with projection (``CLIPVisionConfig(patch_size=32)``,
  random weights): fp32 and dynamic-range int8;
* classifiers: the shipped EfficientNet-Lite0 ImageNet classifiers (fp32, int8;
  ``classify()`` beside MediaPipe's ``ImageClassifier`` and the PyTorch network),
  and a ViT-B/16 ``ViTForImageClassification`` with 1000 labels (random
  weights; fp32 and dynamic-range int8, ``--task image-classification``)
  beside MediaPipe and ``pipeline("image-classification")``.

Random weights are fine for speed (latency does not depend on weight values);
their accuracy figures only show that a quantization recipe is sane.

What it builds goes under ``--cache`` (default
``$TMPDIR/edge_embedder_standard_runs``): the two ``save_pretrained``
checkpoints (seeded, with their image processors) and the converted files,
made with ``edge-embedder convert`` (the converters' CLI, parity report
included). Existing files are reused, so a second run only measures.
Nothing is downloaded. Peak memory while converting: ~3-4 GB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "edge_embedder_standard_runs"
DEFAULT_OUT = "standard_runs_results"  # relative to the working directory; the repository's are in benchmarks/results

# (group, arch, checkpoint folder name, [(file name, --quantize)], --task, --groups key)
GROUPS = (
    ("ViT-B/16", "vit", "vit-b16-random", [
        ("vit_b16_fp32.tflite", "none"),
        ("vit_b16_fp16.tflite", "fp16"),
        ("vit_b16_dynamic_int8.tflite", "dynamic-int8"),
        ("vit_b16_fp32.onnx", "none"),
    ], "image-embedding", "vit"),
    ("CLIP ViT-B/32", "clip", "clip-b32-random", [
        ("clip_b32_fp32.tflite", "none"),
        ("clip_b32_dynamic_int8.tflite", "dynamic-int8"),
    ], "image-embedding", "clip"),
    ("ViT-B/16 classifier", "vit", "vit-b16-cls1000-random", [
        ("vit_b16_cls1000_fp32.tflite", "none"),
        ("vit_b16_cls1000_dynamic_int8.tflite", "dynamic-int8"),
    ], "image-classification", "vit-classifier"),
)
#: The groups made of shipped files (no build): --groups key -> (group name, default_model_path / default_classifier_path)
SHIPPED = {"efficientnet": "EfficientNet-Lite0", "efficientnet-classifier": "EfficientNet-Lite0 classifier"}
GROUP_KEYS = ("efficientnet", "vit", "clip", "efficientnet-classifier", "vit-classifier")

# When the converters CLI fails for a quantized variant, quantize the group's fp32 file directly.
_FALLBACK = {"fp16": "quantize_fp16_weights", "dynamic-int8": "quantize_dynamic_int8"}
_FALLBACK_CODE = r"""
import sys
from edge_embedder.convert import litert_export
getattr(litert_export, sys.argv[1])(sys.argv[2], sys.argv[3])
"""

_MAKE_CHECKPOINT = r"""
import sys, torch
kind, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
if kind == "vit-classifier":
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    labels = [f"class_{i}" for i in range(1000)]
    model = ViTForImageClassification(ViTConfig(num_labels=1000, id2label=dict(enumerate(labels)),
                                                label2id={n: i for i, n in enumerate(labels)}))  # ViT-B/16 head
    proc = ViTImageProcessor()
elif kind == "vit":
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    model = ViTModel(ViTConfig())                       # ViT-B/16, 224, pooler included
    proc = ViTImageProcessor()
else:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(patch_size=32, projection_dim=512))  # ViT-B/32
    proc = CLIPImageProcessor()
model.eval().save_pretrained(out)
proc.save_pretrained(out)
"""


def _log(msg: str) -> None:
    print(f"standard runs: {msg}", file=sys.stderr, flush=True)


def _env() -> dict:
    from .harness import worker_env

    return worker_env()


def build(cache: Path, keys: Sequence[str] = GROUP_KEYS) -> tuple[dict[str, list[str]], list[str]]:
    """Checkpoints and converted files under ``cache``; ({group: [model paths]}, notes on failures)."""
    cache.mkdir(parents=True, exist_ok=True)
    models: dict[str, list[str]] = {}
    notes: list[str] = []
    for group, arch, ckpt_name, files, task, key in GROUPS:
        if key not in keys:
            continue
        ckpt = cache / ckpt_name
        kind = "vit-classifier" if task == "image-classification" else arch
        if not (ckpt / "config.json").is_file() or not (ckpt / "preprocessor_config.json").is_file():
            _log(f"creating the random-weight {group} checkpoint in {ckpt}")
            r = subprocess.run([sys.executable, "-c", _MAKE_CHECKPOINT, kind, str(ckpt)], env=_env(),
                               capture_output=True, text=True)
            if r.returncode:
                notes.append(f"{group}: checkpoint not created: {_last_line(r.stderr)}")
                continue
        models[group] = []
        for name, quant in files:
            out = cache / name
            if not out.is_file():
                _log(f"converting {name} (--quantize {quant})")
                t0 = time.monotonic()
                r = subprocess.run([sys.executable, "-m", "edge_embedder", "convert", "--task", task, "--arch", arch,
                                    "--model", str(ckpt), "--quantize", quant, "-o", str(out)],
                                   env=_env(), capture_output=True, text=True)
                if (r.returncode or not out.is_file()) and quant in _FALLBACK and name.endswith(".tflite"):
                    # Quantize the converted fp32 .tflite of the group (metadata and recipe included).
                    fp32 = cache / files[0][0]
                    why = _last_line(r.stderr)
                    r = subprocess.run([sys.executable, "-c", _FALLBACK_CODE, _FALLBACK[quant], str(fp32), str(out)],
                                       env=_env(), capture_output=True, text=True)
                    if not r.returncode and out.is_file():
                        note = (f"{name}: `edge-embedder convert --quantize {quant}` failed ({why}); built "
                                f"instead by edge_embedder.convert.litert_export.{_FALLBACK[quant]} on {fp32.name}")
                        _provenance(out).write_text(note)
                        _log(note)
                if r.returncode or not out.is_file():
                    notes.append(f"{name}: conversion failed (exit {r.returncode}): {_last_line(r.stderr)}")
                    _log(notes[-1])
                else:
                    _log(f"  {name}: {out.stat().st_size / 2**20:.0f} MiB in {time.monotonic() - t0:.0f} s")
            if _provenance(out).is_file() and out.is_file():
                notes.append(_provenance(out).read_text().strip())
            models[group].append(str(out))  # a failed conversion becomes a failed row
    return models, notes


def _provenance(model: Path) -> Path:
    """Sidecar saying how a file was built when it was not by the converters CLI."""
    return model.with_name(model.name + ".built_by.txt")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def run_standard(threads: Sequence[int] = (1, 2), runs: int = 30, warmup: int = 3,
                 outputs: Sequence[str] = (), plot: Optional[str] = None, progress: bool = True,
                 cache: Optional[str] = None, groups: Sequence[str] = GROUP_KEYS) -> int:
    """Build, benchmark every group, write one merged report; the exit code of ``edge-embedder bench``."""
    from edge_embedder.resources import default_classifier_path, default_model_path

    from .harness import BenchConfig, BenchReport, apply_peak, compute_ratios, run_bench
    from .progress import Progress
    from .report import finish

    unknown = [g for g in groups if g not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"--groups: unknown {unknown}, expected a subset of {', '.join(GROUP_KEYS)}")
    t0 = time.monotonic()
    cache_dir = Path(cache) if cache else DEFAULT_CACHE
    models, notes = build(cache_dir, groups)
    plan = []
    if "efficientnet" in groups:
        plan.append((SHIPPED["efficientnet"], [str(default_model_path("fp32")), str(default_model_path("int8"))]))
    if "efficientnet-classifier" in groups:
        plan.append((SHIPPED["efficientnet-classifier"],
                     [str(default_classifier_path("fp32")), str(default_classifier_path("int8"))]))
    plan += [(g, m) for g, m in models.items()]
    reports: list[BenchReport] = []
    for group, paths in plan:
        _log(f"benchmarking {group}: {', '.join(Path(p).name for p in paths)}")
        cfg = BenchConfig(models=paths, threads=list(threads), runs=runs, warmup=warmup, reference=paths[0],
                          compare=["mediapipe", "transformers", "onnxruntime"],
                          work_dir=str(cache_dir / "work" / group.replace("/", "_").replace(" ", "_")))
        bar = Progress(progress)
        try:
            rep = run_bench(cfg, progress=bar.update, progress_total=bar.total)
        finally:
            bar.close()
        for r in rep.rows:
            r["group_name"] = group
        reports.append(rep)
        if rep.interrupted:
            break
    merged = _merge(reports, notes, time.monotonic() - t0)
    for r in merged.rows:
        apply_peak(r, merged.peaks)
    compute_ratios(merged.rows)
    return finish(merged, list(outputs), plot)


def _merge(reports, notes: list[str], duration: float):
    from .harness import BenchReport

    base = reports[0]
    peaks: dict = {}
    for rep in reports:
        for t, pk in rep.peaks.items():
            slot = peaks.setdefault(t, {})
            for dt, v in pk.items():
                if v and (slot.get(dt) is None or v["gflops"] > slot[dt]["gflops"]):
                    slot[dt] = v
    rows = [r for rep in reports for r in rep.rows]
    cfg = dict(base.config)
    cfg["standard_runs"] = True
    cfg["models"] = [m for rep in reports for m in rep.config["models"]]
    cfg["reference"] = [rep.config["reference"] for rep in reports]
    cfg["notes"] = notes
    machine = dict(base.machine)
    machine["loadavg_end"] = reports[-1].machine.get("loadavg_end")
    return BenchReport(config=cfg, machine=machine, images=base.images, peaks=peaks, rows=rows,
                       interrupted=any(r.interrupted for r in reports), started=base.started,
                       duration_s=duration,
                       reference={"per_group": [rep.reference for rep in reports]})


def main(argv: Optional[Sequence[str]] = None) -> int:
    from edge_embedder.argtypes import int_list

    ap = argparse.ArgumentParser(prog="python -m edge_embedder.bench.standard_runs",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int_list, default=[1, 2])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cache", default=None, help=f"build folder (default {DEFAULT_CACHE})")
    ap.add_argument("--out-dir", default=DEFAULT_OUT,
                    help=f"writes NAME.{{md,json,csv,png}} here (default ./{DEFAULT_OUT}; "
                         "the repository keeps its own in benchmarks/results)")
    ap.add_argument("--groups", type=lambda t: [g.strip() for g in t.split(",") if g.strip()], default=list(GROUP_KEYS),
                    help=f"comma-separated subset of {', '.join(GROUP_KEYS)} (default: all)")
    ap.add_argument("--name", default="standard_runs", help="file name stem of the outputs (default standard_runs)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)  # its own results folder
    outputs = [str(out / f"{args.name}.{s}") for s in ("md", "json", "csv")]
    try:
        return run_standard(threads=args.threads, runs=args.runs, warmup=args.warmup, outputs=outputs,
                            plot=str(out / f"{args.name}.png"), progress=not args.no_progress, cache=args.cache,
                            groups=args.groups)
    except KeyboardInterrupt:
        print("edge-embedder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
