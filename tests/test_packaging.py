"""What a user gets from ``pip install .``: one import root, and a CLI that works outside the checkout.

The wheel and the virtual environment it is installed into are session
fixtures (``tests/conftest.py``: ``wheel``, ``venv``, ``run_installed``).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import pytest

from .conftest import FP32_MODEL, ROOT

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

pytestmark = pytest.mark.slow


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    found = set()
    for f in (ROOT / "edge_embedder").rglob("__init__.py"):
        found.add(".".join(("edge_embedder", *f.parent.relative_to(ROOT / "edge_embedder").parts)).rstrip("."))
    for name, folder in dirs.items():
        for f in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join((name, *f.parent.relative_to(ROOT / folder).parts)).rstrip("."))
    assert listed == found, f"pyproject [tool.setuptools] packages differs from the source tree: {listed ^ found}"


def test_wheel_has_one_import_root(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        top = {n.split("/")[0] for n in names} - {dist}
        assert top == {"edge_embedder"}
        record = z.read(f"{dist}/RECORD").decode()
        top_level = z.read(f"{dist}/top_level.txt").decode().split() if f"{dist}/top_level.txt" in names else []
    assert top_level in ([], ["edge_embedder"])
    assert "edge_embedder/convert/pipeline.py" in record and "edge_embedder/bench/harness.py" in record
    assert re.search(r"edge_embedder/models/efficientnet_lite0_fp32\.tflite", record)
    assert re.search(r"edge_embedder/models/efficientnet_lite0_classifier_fp32\.tflite", record)
    assert "edge_embedder/convert/labels/imagenet_labels.txt" in record
    assert "benchmarks/results" not in record and "edge_embedder/bench/results" not in record


def test_installed_package_is_the_wheel_not_the_checkout(venv, run_installed, tmp_path):
    r = run_installed(["python", "-c", "import edge_embedder, edge_embedder.convert as c; print(edge_embedder.__file__);"
                    "print(c.__file__)"], tmp_path)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert str(venv) in line and str(ROOT) not in line


def test_installed_cli_runs_from_another_folder(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "demo", "--threads", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "chelsea_mirror" in r.stdout
    shutil.copy(FP32_MODEL, tmp_path / "m.tflite")
    r = run_installed(["edge-embedder", "inspect", "m.tflite"], tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["contract"]["ok"]


def test_installed_classify_names_the_bundled_photos_offline(venv, run_installed, tmp_path):
    """A fresh install, no network, another folder: the shipped classifier and its labels from the wheel."""
    r = run_installed(["python", "-c", "from edge_embedder.resources import sample_images as s; "
                    "print(s()['chelsea']); print(s()['coffee'])"], tmp_path)
    chelsea, coffee = r.stdout.split()
    assert str(venv) in chelsea
    r = run_installed(["edge-embedder", "classify", chelsea, coffee, "--top-k", "1", "--output", "json"], tmp_path,
             block="torch,transformers,requests,httpx,urllib3")
    assert r.returncode == 0, r.stderr
    first = [res["classifications"][0]["categories"][0] for res in json.loads(r.stdout)]
    assert [(c["index"], c["category_name"]) for c in first] == [(285, "Egyptian cat"), (967, "espresso")]
    r = run_installed(["python", "-c", "from edge_embedder.convert.efficientnet_lite0 import imagenet_labels as f; "
                    "import edge_embedder.convert as c; print(len(f()), c.__file__)"], tmp_path)
    assert r.returncode == 0 and r.stdout.split()[0] == "1000" and str(venv) in r.stdout, r.stderr


def test_installed_bench_takes_a_relative_model_path(run_installed, tmp_path):
    shutil.copy(FP32_MODEL, tmp_path / "m.tflite")
    r = run_installed(["edge-embedder", "bench", "m.tflite", "--runs", "3", "--warmup", "1", "--no-peak",
                    "--no-progress", "--latency-images", "1", "-o", "r.json"], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["status"] == "ok", rows[0]["error"]


def test_convert_without_the_toolchain_names_the_extra(run_installed, tmp_path):
    r = run_installed(["edge-embedder", "convert", "--arch", "vit", "--model", "x", "-o", "y.tflite"], tmp_path,
             block="torch,transformers,litert_torch")
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "edge-embedder[convert]" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "y.tflite").exists()
    r = run_installed(["edge-embedder", "convert", "--help"], tmp_path, block="torch,transformers,litert_torch")
    assert r.returncode == 0 and "--quantize" in r.stdout


def test_installed_text_commands_without_tokenizers_name_the_extra(run_installed, tmp_path):
    """A text model with the wheel: the templates data ships, and no `tokenizers` is one line, exit 5."""
    pytest.importorskip("onnx")
    from .text_models import onnx_text_model

    onnx_text_model(tmp_path / "text.onnx")
    r = run_installed(["python", "-c", "from edge_embedder.zero_shot import OPENAI_IMAGENET_TEMPLATES as T; print(len(T))"],
                      tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "80", r.stderr
    r = run_installed(["edge-embedder", "embed-text", "a photo of a cat", "--model", "text.onnx"], tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["token_count"] == 7, r.stderr
    r = run_installed(["edge-embedder", "embed-text", "a photo of a cat", "--model", "text.onnx"], tmp_path,
                      block="tokenizers")
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "edge-embedder[text]" in lines[0] and "Traceback" not in r.stderr
