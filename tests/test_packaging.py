"""What a user gets from ``pip install .``: one import root, and a CLI that works outside the checkout.

The wheel is built once per session from this checkout and installed (not
editable) into a virtual environment that sees this machine's packages
(``--system-site-packages``: no network), then its ``edge-embedder`` runs from
a temporary folder, as a user's shell would. A missing optional dependency is
simulated by a ``sitecustomize`` that makes its import fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import FP32_MODEL, ROOT

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

pytestmark = pytest.mark.slow

BLOCKER = """
import importlib.abc, sys
BLOCKED = set(filter(None, __import__('os').environ.get('EE_TEST_BLOCK', '').split(',')))
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("edge_embedder-*.whl")
    return whl


@pytest.fixture(scope="session")
def venv(tmp_path_factory, wheel) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True, timeout=300)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    blocker = tmp_path_factory.mktemp("blocker")
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return env_dir


def _run(venv: Path, args: list[str], cwd: Path, block: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if block:
        env["PYTHONPATH"] = str(next(venv.parent.glob("blocker*")))
        env["EE_TEST_BLOCK"] = block
    exe = venv / "bin" / args[0]
    return subprocess.run([str(exe), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


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
    assert "benchmarks/results" not in record and "edge_embedder/bench/results" not in record


def test_installed_package_is_the_wheel_not_the_checkout(venv, tmp_path):
    r = _run(venv, ["python", "-c", "import edge_embedder, edge_embedder.convert as c; print(edge_embedder.__file__);"
                    "print(c.__file__)"], tmp_path)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert str(venv) in line and str(ROOT) not in line


def test_installed_cli_runs_from_another_folder(venv, tmp_path):
    r = _run(venv, ["edge-embedder", "demo", "--threads", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "chelsea_mirror" in r.stdout
    shutil.copy(FP32_MODEL, tmp_path / "m.tflite")
    r = _run(venv, ["edge-embedder", "inspect", "m.tflite"], tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["contract"]["ok"]


def test_installed_bench_takes_a_relative_model_path(venv, tmp_path):
    shutil.copy(FP32_MODEL, tmp_path / "m.tflite")
    r = _run(venv, ["edge-embedder", "bench", "m.tflite", "--runs", "3", "--warmup", "1", "--no-peak",
                    "--no-progress", "--latency-images", "1", "-o", "r.json"], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["status"] == "ok", rows[0]["error"]


def test_convert_without_the_toolchain_names_the_extra(venv, tmp_path):
    r = _run(venv, ["edge-embedder", "convert", "--arch", "vit", "--model", "x", "-o", "y.tflite"], tmp_path,
             block="torch,transformers,litert_torch")
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "edge-embedder[convert]" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "y.tflite").exists()
    r = _run(venv, ["edge-embedder", "convert", "--help"], tmp_path, block="torch,transformers,litert_torch")
    assert r.returncode == 0 and "--quantize" in r.stdout


def test_installed_text_commands_without_tokenizers_name_the_extra(venv, tmp_path):
    """A text model with the wheel: the templates data ships, and no `tokenizers` is one line, exit 5."""
    pytest.importorskip("onnx")
    from .text_models import onnx_text_model

    onnx_text_model(tmp_path / "text.onnx")
    r = _run(venv, ["python", "-c", "from edge_embedder.zero_shot import OPENAI_IMAGENET_TEMPLATES as T; print(len(T))"],
             tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "80", r.stderr
    r = _run(venv, ["edge-embedder", "embed-text", "a photo of a cat", "--model", "text.onnx"], tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["token_count"] == 7, r.stderr
    r = _run(venv, ["edge-embedder", "embed-text", "a photo of a cat", "--model", "text.onnx"], tmp_path,
             block="tokenizers")
    assert r.returncode == 5, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "edge-embedder[text]" in lines[0] and "Traceback" not in r.stderr
