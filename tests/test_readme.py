"""Every Python example in README.md runs as written (in a scratch folder, offline)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, tmp_path):
    code = BLOCKS[index]
    if "efficientnet_lite0.onnx" in code:
        # The README makes it with `edge-embedder convert --arch efficientnet-lite0 --format onnx`.
        from edge_embedder.cli import main

        if main(["convert", "--arch", "efficientnet-lite0", "--format", "onnx",
                 "-o", str(tmp_path / "efficientnet_lite0.onnx")]) != 0:
            pytest.fail("the README's convert command failed")
    env_path = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": env_path})
    assert r.returncode == 0, f"README example {index} failed:\n{code}\n{r.stderr[-2000:]}"
    if "LIVE_STREAM" in code:  # the live-stream example shows every frame's result
        assert "processed=4, dropped=0" in r.stdout, r.stdout
        assert sum(line.split(" ", 1)[0] in ("0", "100", "200", "300") for line in r.stdout.splitlines()) == 4


def test_readme_examples_type_check(tmp_path):
    """Every README block passes mypy (the public types say what the examples do with them)."""
    pytest.importorskip("mypy")
    files = []
    for i, code in enumerate(BLOCKS):
        f = tmp_path / f"readme_block_{i}.py"
        f.write_text(code)
        files.append(str(f))
    # MYPYPATH: the package as source (an editable install's import hook is invisible to mypy).
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
                        "--follow-imports", "silent", "--cache-dir", str(tmp_path / ".mypy_cache"), *files],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
