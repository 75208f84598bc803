"""Model converters (``pip install '.[convert]'``; needs torch, transformers, litert-torch, onnx).

* ``edge-embedder convert`` (``converters.cli``) / :func:`converters.convert.convert`:
  Hugging Face ViT and CLIP checkpoints (and EfficientNet-Lite0) to ``.tflite`` /
  ``.onnx`` image embedders with metadata, quantization and a parity report.
* ``converters.registry``: one declarative config per architecture (``converters.architectures``).
* ``python -m converters.build_default_models``: the shipped EfficientNet-Lite0 models.

Importing this package (or ``converters.cli`` / ``converters.registry``) never imports torch.
"""
