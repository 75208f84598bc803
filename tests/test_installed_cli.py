"""What a new user hits, tried the way they would: the installed CLI, from a folder outside the checkout.

Each test runs the ``edge-embedder`` of a virtual environment where this
checkout's wheel is installed (``run_installed`` in conftest.py). The
tflite-runtime routes need that package (and, for its numpy<2 route, numpy<2
with an OpenCV built for it) in folders that ``tests/install_test_runtimes.py``
prepares (part of the README's test step); the folders are found through
``$EDGE_EMBEDDER_TEST_SITES`` (default ``~/.cache/edge_embedder_test_sites``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .conftest import DATA, FP32_MODEL, INT8_MODEL

pytestmark = pytest.mark.slow

SITES = Path(os.environ.get("EDGE_EMBEDDER_TEST_SITES", Path.home() / ".cache" / "edge_embedder_test_sites"))
TFLITE_RUNTIME = SITES / "tflite_runtime"  # tflite-runtime 2.14.0 (--no-deps)
NUMPY1 = SITES / "numpy1"  # numpy<2 and opencv-python-headless 4.10 (--no-deps)


def _site(path: Path) -> str:
    if not path.is_dir():
        pytest.skip(f"{path} is missing: run `python tests/install_test_runtimes.py` (the README's test step does)")
    return str(path)


def test_tflite_runtime_under_numpy2_is_one_typed_line(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "demo"], tmp_path, block="ai_edge_litert", pythonpath=[_site(TFLITE_RUNTIME)])
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "tflite-runtime 2.14.0 is built for NumPy 1.x" in lines[0] and "numpy<2" in lines[0]
    assert "ai-edge-litert" in lines[0]
    assert "Traceback" not in r.stderr and "compiled using NumPy 1.x" not in r.stderr and "SystemError" not in r.stderr


def test_tflite_runtime_route_names_the_interpreter_and_warns_once(run_installed, tmp_path):
    sites = [_site(NUMPY1), _site(TFLITE_RUNTIME)]
    shutil.copy(INT8_MODEL, tmp_path / "int8.tflite")
    r = run_installed(["python", "-c", "import numpy; print(numpy.__version__)"], tmp_path, pythonpath=sites)
    assert r.stdout.startswith("1."), r.stdout + r.stderr
    r = run_installed(["edge-embedder", "inspect", "int8.tflite"], tmp_path, block="ai_edge_litert", pythonpath=sites)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["runtime"] == "tflite_runtime 2.14.0"
    code = ("from edge_embedder import ImageEmbedder\n"
            "e = ImageEmbedder.create_from_model_path('int8.tflite'); f = ImageEmbedder.create_from_model_path('int8.tflite')\n"
            "print(repr(e))\n")
    r = run_installed(["python", "-c", code], tmp_path, block="ai_edge_litert", pythonpath=sites)
    assert r.returncode == 0, r.stderr
    assert "tflite_runtime 2.14.0" in r.stdout and "litert" not in r.stdout.replace("tflite_runtime", "")
    assert r.stderr.count("RuntimePerformanceWarning") == 1  # two embedders, one warning
    r = run_installed(["edge-embedder", "similarity", str(DATA / "chelsea.png"), str(DATA / "coffee.png"),
                       "--model", "int8.tflite"], tmp_path, block="ai_edge_litert", pythonpath=sites)
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("edge-embedder: warning:")]
    assert len(warnings) == 1 and "ai-edge-litert" in warnings[0] and r.stderr.count("\n") == 1


def test_no_interpreter_chatter_unless_verbose(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "embed", str(DATA / "chelsea.png")], tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run_installed(["edge-embedder", "--verbose", "embed", str(DATA / "chelsea.png")], tmp_path)
    assert r.returncode == 0 and "XNNPACK delegate" in r.stderr


def test_progress_bar_never_writes_carriage_returns_into_a_redirected_stderr(run_installed, tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("chelsea", "coffee"):
        shutil.copy(DATA / f"{name}.png", pics / f"{name}.png")
    (pics / "empty.png").write_bytes(b"")
    r = run_installed(["edge-embedder", "embed-dir", "pics", "-o", "out.npz"], tmp_path)
    assert r.returncode == 1  # one file skipped
    assert "\r" not in r.stderr and "embedded 2 images" in r.stderr
    # the skipped file's reason, without its path repeated
    assert (tmp_path / "out.npz.skipped.tsv").read_text().splitlines() == ["path\treason", "pics/empty.png\tempty file (0 bytes)"]
    (pics / "empty.png").unlink()
    r = run_installed(["edge-embedder", "embed-dir", "pics", "-o", "clean.npz"], tmp_path)
    assert r.returncode == 0 and not (tmp_path / "clean.npz.skipped.tsv").exists()  # no header-only report


def test_closed_stdout_ends_quietly_like_unix_tools(run_installed, tmp_path):
    # `edge-embedder embed ... | head -c 10`: the reader closes the pipe after 10 bytes of a large output.
    images = [str(DATA / f"{n}.png") for n in ("chelsea", "coffee", "astronaut", "rocket")] * 3
    r = run_installed(["python", "-c", (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-m', 'edge_embedder', 'embed', *sys.argv[1:]],"
        " stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "p.stdout.read(10); p.stdout.close()\n"
        "err = p.stderr.read().decode(); print(p.wait()); print(repr(err))\n")] + images, tmp_path)
    code, err = r.stdout.splitlines()
    assert code == "141" and err == "''", r.stdout + r.stderr


def test_bench_cleans_up_its_temporary_folder(run_installed, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    shutil.copy(FP32_MODEL, tmp_path / "m.tflite")
    r = run_installed(["edge-embedder", "bench", "m.tflite", "--runs", "2", "--warmup", "0", "--no-peak",
                       "--no-progress", "--latency-images", "1", "--images", str(DATA)], tmp_path,
                      env={"TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr
    assert not list(tmp.glob("edge_embedder_bench_*")), list(tmp.iterdir())
    work = tmp_path / "work"
    r = run_installed(["edge-embedder", "bench", "m.tflite", "--runs", "2", "--warmup", "0", "--no-peak",
                       "--no-progress", "--latency-images", "1", "--images", str(DATA), "--work-dir", str(work)],
                      tmp_path, env={"TMPDIR": str(tmp)})
    assert r.returncode == 0 and list(work.glob("*.json"))  # kept when asked for


def test_convert_without_model_is_a_usage_error(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "convert", "--arch", "vit", "-o", "x.tflite"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == ["edge-embedder: error: --arch vit needs --model HUB_ID_OR_LOCAL_DIR"]


def test_output_folder_is_not_created(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "embed-dir", str(DATA), "-o", "nonexistent_dir/x.npz"], tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not (tmp_path / "nonexistent_dir").exists()


def test_pixel_budget_from_the_cli(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "embed", str(DATA / "chelsea.png"), "--max-pixels", "1000"], tmp_path)
    assert r.returncode == 4
    assert "over the pixel budget" in r.stderr and "Warning" not in r.stderr


def test_quantize_without_l2_warns_in_the_installed_cli(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "embed", str(DATA / "chelsea.png"), "--quantize"], tmp_path)
    assert r.returncode == 0 and "without --l2-normalize" in r.stderr
    help_text = run_installed(["edge-embedder", "embed", "--help"], tmp_path).stdout
    assert "saturate" in help_text


def test_inspect_exit_codes_agree(run_installed, tmp_path):
    (tmp_path / "garbage.tflite").write_bytes(b"garbage" * 20)
    (tmp_path / "empty.tflite").write_bytes(b"")
    for name in ("garbage.tflite", "empty.tflite", "missing.tflite"):
        r = run_installed(["edge-embedder", "inspect", name], tmp_path)
        assert r.returncode == 3 and r.stderr.count("\n") == 1, (name, r.stderr)


def test_help_lists_the_exit_codes(run_installed, tmp_path):
    out = run_installed(["edge-embedder", "--help"], tmp_path).stdout
    assert "5 missing optional dependency" in out and "141" in out
