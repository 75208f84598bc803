"""Render a bench report: Markdown, JSON, CSV, and the latency-vs-accuracy plot.

The JSON is the report itself (``BenchReport.to_json()``, schema
``edge_embedder.bench/1``): CI or a user can diff two runs with it. Markdown
and CSV are views of its rows.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Optional

from edge_embedder.exit_codes import ExitCode
from edge_embedder.files import atomic_write

__all__ = ["to_markdown", "to_csv", "side_by_side", "write_outputs", "write_plot", "finish", "OUTPUT_SUFFIXES"]

OUTPUT_SUFFIXES = (".md", ".json", ".csv")
BACKEND_NAMES = {"edge_embedder": "edge_embedder", "mediapipe": "MediaPipe", "transformers": "PyTorch eager",
                 "onnxruntime": "ONNX Runtime"}


def _f(v: Optional[float], fmt: str = "{:.2f}") -> str:
    return "" if v is None else fmt.format(v)


def _lat(row: dict, part: str, key: str) -> Optional[float]:
    return ((row.get("latency_ms") or {}).get(part) or {}).get(key)


def _acc(row: dict, key: str) -> Optional[float]:
    a = row.get("accuracy") or {}
    return a.get(key)


CSV_FIELDS = [
    "model", "backend", "threads", "status", "error", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
    "preprocess_p50_ms", "inference_p50_ms", "postprocess_p50_ms", "throughput_per_s", "cold_start_ms", "peak_rss_mb",
    "file_size_mb", "gflops", "achieved_gflops", "peak_gflops", "pct_of_peak", "mean_cosine",
    "min_cosine", "recall_at_1", "top1_agreement", "mean_abs_score_diff", "ratio_to_edge_embedder", "x_mediapipe",
    "x_transformers", "x_onnxruntime",
]


def _flat(row: dict) -> dict[str, Any]:
    size = row.get("file_size_bytes")
    return {
        "model": row["model"], "backend": row["backend"], "threads": row["threads"],
        "status": row["status"], "error": row.get("error") or "",
        "p50_ms": _lat(row, "total", "p50"), "p90_ms": _lat(row, "total", "p90"),
        "p99_ms": _lat(row, "total", "p99"), "mean_ms": _lat(row, "total", "mean"),
        "preprocess_p50_ms": _lat(row, "preprocess", "p50"), "inference_p50_ms": _lat(row, "inference", "p50"),
        "postprocess_p50_ms": _lat(row, "postprocess", "p50"),
        "throughput_per_s": row.get("throughput_per_s"), "cold_start_ms": row.get("cold_start_ms"),
        "peak_rss_mb": row.get("peak_rss_mb"), "file_size_mb": None if size is None else size / 2**20,
        "gflops": (row.get("flops") or {}).get("gflops"), "achieved_gflops": row.get("achieved_gflops"),
        "peak_gflops": row.get("peak_gflops"), "pct_of_peak": row.get("pct_of_peak"),
        "mean_cosine": _acc(row, "mean_cosine"), "min_cosine": _acc(row, "min_cosine"),
        "recall_at_1": _acc(row, "recall_at_1"), "top1_agreement": _acc(row, "top1_agreement"),
        "mean_abs_score_diff": _acc(row, "mean_abs_score_diff"),
        "ratio_to_edge_embedder": row.get("ratio_to_edge_embedder"),
        "x_mediapipe": row.get("x", {}).get("mediapipe"), "x_transformers": row.get("x", {}).get("transformers"),
        "x_onnxruntime": row.get("x", {}).get("onnxruntime"),
    }


def to_csv(report: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in report["rows"]:
        w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in _flat(row).items()})
    return buf.getvalue()


def side_by_side(report: dict) -> str:
    """One line per (edge_embedder variant, threads): its median and each alternative's, as ratios."""
    rows = report["rows"]
    others = [b for b in ("mediapipe", "transformers", "onnxruntime") if any(r["backend"] == b for r in rows)]
    by_key = {}
    for r in rows:
        if r["backend"] != "edge_embedder" and r["status"] == "ok":
            if r["backend"] == "transformers":
                for o in rows:
                    if o["backend"] == "edge_embedder" and o.get("group") == r.get("group") and o["threads"] == r["threads"]:
                        by_key[(o["model"], o["threads"], "transformers")] = r
            else:
                by_key[(r["vs"], r["threads"], r["backend"])] = r
    head = ["model", "threads", "edge_embedder p50 ms"]
    for b in others:
        head += [f"{BACKEND_NAMES[b]} p50 ms", f"x {BACKEND_NAMES[b]}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["backend"] != "edge_embedder":
            continue
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['threads']} | failed: {_md(r.get('error'))} |" + " |" * (2 * len(others)))
            continue
        cells = [r["model"], str(r["threads"]), _f(_lat(r, "total", "p50"))]
        for b in others:
            o = by_key.get((r["model"], r["threads"], b))
            if o is None:
                cells += ["", ""]
            else:
                cells += [_f(_lat(o, "total", "p50")), _f(r["x"].get(b), "{:.2f}x")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md(text: Optional[str]) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


_LEGEND = ("Times in ms. `pre` = preprocessing (decoded RGB array to the model's input tensor), `infer` = "
               "the rest of the call (invoke, output copy; postprocessing too where `post` is empty), `post` = "
               "postprocessing (embeddings: dequantize / L2 / quantize; classifiers: dequantize, calibrate, "
               "threshold, sort, build the categories; the pipeline's `postprocess`); MediaPipe has no split. "
               "Classifiers return every class (each runtime's default); their accuracy is `top-1 agr` (same "
               "arg-max class as the reference) and the mean absolute score difference over every class. "
               "MediaPipe has no thread option: its rows run with its own default at every `thr`. "
               "`cold start` = process start to first embedding; `peak RSS` of that process. "
               "`GFLOP/s` = graph FLOPs (conv / matmul MACs x 2) / median inference time; `% peak` against "
               "the measured matmul peak of the model's compute type (int8 for int8 weights). "
               "`x edge_embedder` = that row's median / edge_embedder's median on the same model and threads "
               "(PyTorch eager: the fp32 source network vs the variant in `model`'s group, see below).")


def to_markdown(report: dict) -> str:
    """The report as Markdown: what was measured and how, the rows, the side-by-side ratios."""
    out = _header(report) + _rows_table(report)
    empty = _empty_columns(report["rows"])
    if empty:
        out += ["", "Empty columns: " + "; ".join(empty) + "."]
    out += ["", _LEGEND, "", "## Side by side (median latency, ratio = alternative / edge_embedder)\n",
            side_by_side(report), ""]
    return "\n".join(out)


def _header(report: dict) -> list[str]:
    m = report["machine"]
    cfg = report["config"]
    img = report["images"]
    out = []
    out.append(f"# edge_embedder bench ({report['started']})\n")
    if report.get("interrupted"):
        out.append("**Interrupted: partial results.**\n")
    flags = " ".join(m.get("cpu_flags") or []) or "unknown"
    out.append(f"Machine: {m['cpu']}, {m['cores']} cores (SIMD: {flags}), Python {m['python']}, load average at "
               f"start {m.get('loadavg_start', '')}, at end {m.get('loadavg_end', '')}. Runs: {cfg['runs']} counted "
               f"after {cfg['warmup']} warm-up per row (`time.perf_counter_ns`), cycling through "
               f"{img['latency_images']} image(s); each row in a fresh process.")
    out.append(f"Images: {img['source']}, {img['count']} used, {img['skipped']} unreadable skipped"
               + (f" ({', '.join(s['file'] for s in img['skipped_files'][:10])})" if img["skipped"] else "") + ".")
    if report.get("peaks"):
        parts, hows = [], []
        for t, pk in report["peaks"].items():
            cells = []
            for dt, unit in (("fp32", "GFLOP/s"), ("int8", "GOP/s")):
                v = pk.get(dt) or {}
                cells.append(f"{dt} {_f(v.get('gflops'), '{:.0f}')} {unit}" if v.get("gflops") else
                             f"{dt} {v.get('why') or 'not measured'}")
                if v.get("how"):
                    hows.append(v["how"].split(" MatMul")[0])
            parts.append(f"{t} thread(s): " + ", ".join(cells))
        source = f" ({hows[0]} GEMM 1024^3)" if hows else ""
        out.append(f"Measured matmul peak{source}: " + "; ".join(parts) + ".")
    for name, why in (cfg.get("compare_unavailable") or {}).items():
        out.append(f"Comparison with {BACKEND_NAMES.get(name, name)} not run: {why}.")
    ref = report.get("reference") or {}
    refs = ref.get("per_group") if "per_group" in ref else [ref] if ref else []
    files = [Path(r["file"]).name for r in refs if r and r.get("file")]
    if files:
        out.append(f"Accuracy reference{'s' if len(files) > 1 else ''} (each model against the first file of its "
                   f"group): {', '.join(files)}; accuracy measured once, at the first thread count.")
    for note in cfg.get("notes") or []:
        out.append(f"Note: {note}")
    return out


def _rows_table(report: dict) -> list[str]:
    out = [""]
    classify = any(r.get("task") == "image-classification" for r in report["rows"])
    head = ["model", "backend", "thr", "p50", "p90", "p99", "mean", "pre p50", "infer p50", "post p50", "img/s",
            "cold start", "peak RSS MB", "size MB", "GFLOP/s", "% peak", "mean cos", "min cos", "R@1"]
    head += ["top-1 agr", "mean abs score diff"] if classify else []
    head += ["x edge_embedder", "status"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in report["rows"]:
        f = _flat(r)
        err = _md(r.get("error"))
        if r["status"] == "ok":
            status = f"ok ({err})" if err else "ok"
        else:
            status = err if err.startswith(r["status"]) else f"{r['status']}: {err}"
        acc_err = (r.get("accuracy") or {}).get("error")
        if acc_err:
            status += f" (accuracy: {_md(acc_err)})"
        cells = [
            r["model"], BACKEND_NAMES.get(r["backend"], r["backend"]), str(r["threads"]),
            _f(f["p50_ms"]), _f(f["p90_ms"]), _f(f["p99_ms"]), _f(f["mean_ms"]),
            _f(f["preprocess_p50_ms"]), _f(f["inference_p50_ms"]), _f(f["postprocess_p50_ms"]),
            _f(f["throughput_per_s"], "{:.1f}"),
            _f(f["cold_start_ms"] and f["cold_start_ms"] / 1e3, "{:.2f} s"), _f(f["peak_rss_mb"], "{:.0f}"),
            _f(f["file_size_mb"], "{:.1f}"), _f(f["achieved_gflops"], "{:.1f}"), _f(f["pct_of_peak"], "{:.0f}%"),
            _f(f["mean_cosine"], "{:.5f}"), _f(f["min_cosine"], "{:.5f}"), _f(f["recall_at_1"], "{:.3f}"),
        ]
        if classify:
            cells += [_f(f["top1_agreement"], "{:.3f}"), _f(f["mean_abs_score_diff"], "{:.2g}")]
        cells += [
            _f(f["ratio_to_edge_embedder"], "{:.2f}x"), status,
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _empty_columns(rows: list[dict]) -> list[str]:
    """Why a column of a measured row is empty, once per (column, reason): the models it concerns."""
    seen: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r["status"] != "ok":
            continue
        for column, why in (r.get("empty_why") or {}).items():
            names = seen.setdefault((column, why), [])
            if r["model"] not in names:
                names.append(r["model"])
    return [f"`{column}` of {', '.join(names)}: {_md(why)}" for (column, why), names in seen.items()]


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def write_outputs(report: dict, paths: list[str]) -> None:
    for p in paths:
        path = Path(p)
        suffix = path.suffix.lower()
        if suffix == ".json":
            _atomic_write_text(path, json.dumps(report, indent=1) + "\n")
        elif suffix == ".csv":
            _atomic_write_text(path, to_csv(report))
        elif suffix == ".md":
            _atomic_write_text(path, to_markdown(report))
        else:
            raise ValueError(f"-o {p}: expected a .md, .json or .csv file name")


def write_plot(report: dict, path: str) -> Optional[str]:
    """Latency (median, log scale) vs accuracy (mean cosine to the reference), one point per variant.

    Returns None when written, else the reason it was not (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: pip install 'edge-embedder[bench]' for --plot"
    rows = [r for r in report["rows"] if r["status"] == "ok" and _lat(r, "total", "p50")]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    threads = sorted({r["threads"] for r in rows})
    markers = {"edge_embedder": "o", "mediapipe": "s", "transformers": "^", "onnxruntime": "D"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_acc = any(_acc(r, "mean_cosine") is not None for r in rows)
    for r in rows:
        if r["backend"] != "edge_embedder":
            continue
        y = _acc(r, "mean_cosine")
        if y is None:
            y = 1.0 if not any_acc else None
        if y is None:
            continue
        c = colors[threads.index(r["threads"]) % len(colors)]
        ax.scatter(_lat(r, "total", "p50"), y, marker=markers["edge_embedder"], color=c, s=40, zorder=3)
        ax.annotate(f"{r['model']} ({r['threads']}t)", (_lat(r, "total", "p50"), y), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    # The alternatives as vertical ticks on the latency axis (they have no accuracy of their own here).
    for r in rows:
        if r["backend"] == "edge_embedder":
            continue
        c = colors[threads.index(r["threads"]) % len(colors)]
        ax.axvline(_lat(r, "total", "p50"), color=c, alpha=0.25, lw=1, ls="--")
        ax.annotate(f"{BACKEND_NAMES[r['backend']]}: {r['model']} ({r['threads']}t)", (_lat(r, "total", "p50"), 0.02),
                    xycoords=("data", "axes fraction"), rotation=90, fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("median latency per image, ms (log)")
    ax.set_ylabel("mean cosine to the reference" if any_acc else "(no --reference: accuracy not measured)")
    ax.set_title("edge_embedder variants: latency vs accuracy (colour = threads; dashed = alternatives)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    for i, t in enumerate(threads):
        ax.scatter([], [], color=colors[i % len(colors)], label=f"{t} thread(s)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)
    return None


def finish(report: Any, outputs: list[str], plot: Optional[str]) -> int:
    """Print the Markdown report, write the files and the plot; the exit code."""
    data = report.to_json()
    print(to_markdown(data))
    write_outputs(data, outputs)
    if plot:
        why = write_plot(data, plot)
        if why:
            print(f"edge-embedder: plot not written: {why}", file=sys.stderr)
    if report.interrupted:
        print("edge-embedder: interrupted; the report above has what was measured so far", file=sys.stderr)
        return ExitCode.INTERRUPTED
    failed = report.failed_models
    if failed:
        print(f"edge-embedder: {len(failed)} model row(s) failed: "
              + "; ".join(f"{r['model']}: {r['error']}" for r in failed[:3]), file=sys.stderr)
        return ExitCode.PARTIAL
    return ExitCode.OK
