"""Every Python example in README.md runs as written (in a scratch folder, offline)."""

from __future__ import annotations

import os
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
