"""Every Python example in README.md runs as written (in a scratch folder, offline)."""

from __future__ import annotations

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
                       env={**__import__("os").environ, "PYTHONPATH": env_path})
    assert r.returncode == 0, f"README example {index} failed:\n{code}\n{r.stderr[-2000:]}"
