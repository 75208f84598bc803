"""Shared test fixtures: paths of committed fixture models and bundled photos."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONTRACT = FIXTURES / "contract"
IDENTITY = FIXTURES / "identity"
REFERENCE = FIXTURES / "reference_metadata"
DATA = ROOT / "edge_embedder" / "data" / "samples"
MODELS = ROOT / "models"
FP32_MODEL = MODELS / "efficientnet_lite0_fp32.tflite"
INT8_MODEL = MODELS / "efficientnet_lite0_int8.tflite"


def photo(name: str) -> np.ndarray:
    """A bundled sample photo (scikit-image's chelsea, coffee, astronaut, rocket) as RGB uint8."""
    return np.asarray(PILImage.open(DATA / f"{name}.png").convert("RGB"))


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return photo("chelsea")


@pytest.fixture(scope="session")
def fp32_embedder():
    from edge_embedder import ImageEmbedder

    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        yield e


@pytest.fixture(scope="session")
def int8_embedder():
    from edge_embedder import ImageEmbedder

    with ImageEmbedder.create_from_model_path(INT8_MODEL) as e:
        yield e


# -- the installed package (a wheel of this checkout in a virtual environment) ------------------

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
    # Built from a clean copy: a build/ folder left in the checkout could carry stale modules into the wheel.
    src = tmp_path_factory.mktemp("src") / "edge_embedder_src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".ci"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("edge_embedder-*.whl")
    return whl


@pytest.fixture(scope="session")
def venv(tmp_path_factory, wheel) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    py = env_dir / "bin" / "python"
    # The dependencies are the running environment's (which may itself be a venv, as the README's
    # test step makes it): its site-packages go on the new venv's path as plain entries, after the
    # venv's own. Plain entries do not run that folder's .pth files, so an editable install of this
    # checkout there stays invisible, and the wheel installed below is what gets imported.
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    # (Every site-packages folder on the running path: the environment's own, and any a .pth file added.)
    outer = [p for p in dict.fromkeys([*site.getsitepackages(), site.getusersitepackages(), *sys.path])
             if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    Path(purelib, "_edge_embedder_test_deps.pth").write_text("".join(f"{p}\n" for p in outer))
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    blocker = tmp_path_factory.mktemp("blocker")
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return env_dir


@pytest.fixture(scope="session")
def run_installed(venv):
    """``run_installed(["edge-embedder", ...], cwd, block="torch,...", pythonpath=[...], env={...})``.

    Runs a command of the installed venv, with a clean environment (no PYTHON*
    variables); ``block`` makes those top-level packages fail to import (as if
    not installed); ``pythonpath`` puts folders in front (e.g. an alternative
    interpreter package).
    """

    def run(args: list[str], cwd: Path, block: str = "", pythonpath: Sequence[str] = (), timeout: int = 300,
            env: Optional[dict[str, str]] = None, **kw: Any) -> subprocess.CompletedProcess:
        e = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        paths = list(pythonpath)
        if block:
            paths.insert(0, str(next(venv.parent.glob("blocker*"))))
            e["EE_TEST_BLOCK"] = block
        if paths:
            e["PYTHONPATH"] = os.pathsep.join(paths)
        e.update(env or {})
        exe = venv / "bin" / args[0]
        return subprocess.run([str(exe), *args[1:]], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout,
                              **kw)

    return run
# --------------------------------------------------------------------------- #
# The tiny random CLIP pair (image + text towers of one checkpoint), built once
# per session by the commands docs/text.md shows, and shared by the text, zero-shot,
# CLI and docs tests. Other formats / quantizations convert lazily from one
# loaded checkpoint (``clip_file``).
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def clip_pair(tmp_path_factory) -> dict:
    """{"dir", "checkpoint", "image", "text"}: docs/text.md's tiny CLIP checkpoint and its two .tflite towers."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("litert_torch")
    pytest.importorskip("tokenizers")
    import os

    from edge_embedder.convert import tiny_clip

    from edge_embedder.cli import main

    from .text_models import README_COMMANDS

    folder = tmp_path_factory.mktemp("readme_clip")
    old = os.getcwd()
    os.chdir(folder)
    try:
        for cmd in README_COMMANDS:
            if cmd[0] == "tiny_clip":
                assert tiny_clip.main(cmd[1:]) == 0, "docs/text.md command failed: python -m edge_embedder.convert.tiny_clip"
            else:
                assert main(cmd) == 0, f"docs/text.md command failed: edge-embedder {' '.join(cmd)}"
    finally:
        os.chdir(old)
    return {"dir": folder, "checkpoint": folder / "tiny-clip", "image": folder / "tiny-clip-image.tflite",
            "text": folder / "tiny-clip-text.tflite"}


@pytest.fixture(scope="session")
def clip_file(clip_pair, tmp_path_factory):
    """``get(tower, fmt, quant) -> path``: the tiny CLIP's towers in every format and quantization (lazy, cached)."""
    from edge_embedder.convert import convert, get_config

    out = tmp_path_factory.mktemp("clip_files")
    loaded: dict = {}
    refs: dict = {}
    cache = {("image", "tflite", "none"): clip_pair["image"], ("text", "tflite", "none"): clip_pair["text"]}

    def get(tower: str, fmt: str = "tflite", quant: str = "none"):
        key = (tower, fmt, quant)
        if key not in cache:
            task = {"image": "image-embedding", "text": "text-embedding"}[tower]
            if tower not in loaded:
                loaded[tower] = get_config("clip", task).load(str(clip_pair["checkpoint"]))
                refs[tower] = {}
            path = out / f"{tower}_{quant}.{fmt}"
            convert("clip", None, output=path, task=task, fmt=fmt, quantize=quant, loaded=loaded[tower],
                    reference_cache=refs[tower], progress=lambda m: None)
            cache[key] = path
        return cache[key]

    def loaded_model(tower: str):
        """The loaded checkpoint behind ``get`` (its float exports are cached on it)."""
        if tower not in loaded:
            get(tower, "onnx")
        return loaded[tower]

    get.loaded = loaded_model  # type: ignore[attr-defined]
    return get
