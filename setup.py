"""Build hook: ship the top-level ``models/*.tflite`` inside the wheel.

Everything else is declared in pyproject.toml. The models stay in ``models/``
at the repository root (with their README and rebuild command); this copies
them to ``edge_embedder/models/`` in the build so ``pip install .`` works offline,
and the ImageNet label list (with its licences) to ``edge_embedder/convert/labels/``
for ``edge-embedder convert --arch efficientnet-lite0 --task image-classification``.
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
        labels = Path(self.build_lib) / "edge_embedder" / "convert" / "labels"
        labels.mkdir(parents=True, exist_ok=True)
        for name in ("imagenet_labels.txt", "LICENSE-WordNet.txt", "LICENSE-timm.txt", "README.md"):
            shutil.copy2(src / "labels" / name, labels / name)


setup(cmdclass={"build_py": BuildPyWithModels})
