"""The converters, installed as ``edge_embedder.convert`` (``pip install 'edge-embedder[convert]'``).

* :func:`convert` (``.pipeline``) and ``edge-embedder convert`` (``.cli``):
  Hugging Face ViT, CLIP, DINOv2 and SigLIP checkpoints (and the bundled
  EfficientNet-Lite0) to ``.tflite`` / ``.onnx`` files with metadata,
  quantization and a parity report; CLIP and SigLIP text towers too
  (``task="text-embedding"``, ``--tower text``: ``.text_embedding``; SigLIP's
  SentencePiece tokenizer rebuilt for ``tokenizers``: ``.sentencepiece_tokenizer``).
* ``.architectures``: one declarative config per architecture
  (:func:`get_config`, :func:`known_architectures`).
* ``python -m edge_embedder.convert.build_default_models``: the shipped models,
  built by the same :func:`convert`.
* ``python -m edge_embedder.convert.tiny_clip DIR``: a tiny random CLIP checkpoint
  with CLIP's real tokenizer, for examples and tests; ``.tiny_siglip``: a tiny
  random SigLIP checkpoint with a SentencePiece model trained offline.

Importing this package never imports torch: the toolchain (torch,
transformers, litert-torch, ai-edge-quantizer, onnx) is imported inside the
functions that use it. It depends on the runtime's public API only.
"""

from .architectures import get_config, known_architectures
from .errors import ConversionError
from .pipeline import ConversionResult, convert

__all__ = ["convert", "ConversionResult", "ConversionError", "get_config", "known_architectures"]
