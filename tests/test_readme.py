"""Every Python example in README.md runs as written (in a scratch folder, offline)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
BASH = "\n".join(re.findall(r"```bash\n(.*?)```", README, flags=re.S))


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


def test_readme_builds_the_tiny_clip_pair_as_the_tests_do():
    """The README's text-tower step is the one conftest's ``clip_pair`` runs (tests/text_models.py)."""
    from .text_models import README_COMMANDS

    for cmd in README_COMMANDS:
        line = ("python -m edge_embedder.convert." if cmd[0] == "tiny_clip" else "edge-embedder ") + " ".join(cmd)
        assert line in BASH, f"README lacks the step: {line}"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, tmp_path, request):
    code = BLOCKS[index]
    if "tiny-clip-text.tflite" in code:
        # The README makes them with the tiny_clip + convert --tower image / --tower text step (conftest's clip_pair).
        import shutil

        pair = request.getfixturevalue("clip_pair")
        for key in ("image", "text"):
            shutil.copy(pair[key], tmp_path / pair[key].name)
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
