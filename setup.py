"""Build hook: ship the top-level ``models/*.tflite`` inside the wheel.

Everything else is declared in pyproject.toml. The models stay in ``models/``
at the repository root (with their README and rebuild command); this copies
them to ``edge_embedder/models/`` in the build so ``pip install .`` works offline.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithModels(build_py):
    def run(self):
        super().run()
        src = Path(__file__).resolve().parent / "models"
        dst = Path(self.build_lib) / "edge_embedder" / "models"
        dst.mkdir(parents=True, exist_ok=True)
        for model in sorted(src.glob("*.tflite")):
            shutil.copy2(model, dst / model.name)


setup(cmdclass={"build_py": BuildPyWithModels})
