"""Architecture registry: one small declarative config per architecture.

An architecture is a subclass of :class:`ArchConfig` decorated with
:func:`register`; nothing else in the package names architectures, so adding
one touches one place (``.architectures``, plus its test:
``tests/test_converters.py`` fails when a registered architecture has none).
Like Optimum's export configs, the class says *what* to load and which output
is the embedding; the generic pipeline in ``.convert`` does the export,
quantization, metadata and parity. Look configs up with
``.architectures.get_config`` (importing that module registers the built-in ones).

Nothing heavy is imported here: ``load`` imports torch / transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np

from .errors import UnknownArchitectureError

__all__ = [
    "QUANTIZATIONS",
    "FORMATS",
    "ArchConfig",
    "LoadedModel",
    "LoadedTextModel",
    "TextReference",
    "register",
    "registered",
    "lookup",
]

#: Quantization modes, in CLI spelling. ``auto`` resolves to the config's measured default.
QUANTIZATIONS = ("none", "fp16", "dynamic-int8", "int8")
FORMATS = ("tflite", "onnx")

_REGISTRY: dict[tuple[str, str], type["ArchConfig"]] = {}


@dataclass
class LoadedModel:
    """A checkpoint loaded once; export and reference use this same instance.

    Attributes:
      module: torch module, NCHW float32 normalized ``pixel_values`` ``[B, 3, H, W]``
        -> embedding ``[B, N]`` (the head named ``head_name``).
      reference: list of HxWx3 uint8 RGB images -> ``[n, N]`` float32 embeddings by the
        source library's own route (its image processor included).
      height, width: model input size.
      mean, std: per-channel normalization in pixel units (0..255 input).
      recipe: ``edge_embedder.vision.Recipe`` reproducing the source processor.
      source: provenance written into the metadata (checkpoint, model type, revision...).
      license: licence text for the metadata, or None when unknown.
      warnings: things the user should know (e.g. randomly initialized pooler).
      labels: classifiers: the class names in output order (``config.id2label``).
      activation: classifiers: what the graph applies to the logits (``softmax``,
        ``sigmoid`` or ``none``), by transformers' image-classification rule.
      embedding_space: the embedding-space id written into the file (contrastive
        models: the same for both towers of one checkpoint), None for none.
      logit_scale: ``exp`` of a contrastive checkpoint's logit scale, None for none.
      logit_bias: a sigmoid-trained contrastive checkpoint's logit bias (SigLIP), None for none.
    """

    module: Any
    reference: Callable[[Sequence[np.ndarray]], np.ndarray]
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    recipe: Any
    embedding_dim: int
    source: dict[str, Any] = field(default_factory=dict)
    license: Optional[str] = None
    warnings: list[str] = field(default_factory=list)
    labels: Optional[list[str]] = None
    activation: Optional[str] = None
    embedding_space: Optional[str] = None
    logit_scale: Optional[float] = None
    logit_bias: Optional[float] = None


@dataclass
class TextReference:
    """What the source library makes of the parity texts: vectors, and the ids its tokenizer gives.

    Attributes:
      vectors: ``[n, N]`` float32 embeddings (the source tokenizer, unpadded, with its attention mask).
      ids: per text, the ``max_length`` ids the source tokenizer gives with
        ``truncation=True`` and padding to ``max_length`` with the file's pad id.
    """

    vectors: np.ndarray
    ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class LoadedTextModel:
    """A text checkpoint loaded once (the text tower of a contrastive model).

    Attributes:
      module: torch module, int32 token ids ``[B, L]`` -> embedding ``[B, N]``.
      reference: list of texts -> ``TextReference`` (the source library's vectors
        and token ids, its own tokenizer included).
      max_length: the model's sequence length L.
      tokenizer_json: the ``tokenizer.json`` bytes that travel in the file.
      tokenizer: the framing entry (``max_length``, ``bos_id`` (None: no start of text),
        ``eos_id``, ``pad_id``, ``lowercase``, ``pooling``, and for towers that read every
        position ``padding: "max_length"``, ``eos_if_absent``) written as ``edge_embedder.tokenizer``.
      embedding_dim, source, license, warnings, embedding_space, logit_scale, logit_bias: as in
        :class:`LoadedModel`.
      float_exports: the float32 export per format, kept so that converting one loaded
        model to several quantizations exports it once.
    """

    module: Any
    reference: Callable[[Sequence[str]], Any]
    max_length: int
    tokenizer_json: bytes
    tokenizer: dict[str, Any]
    embedding_dim: int
    source: dict[str, Any] = field(default_factory=dict)
    license: Optional[str] = None
    warnings: list[str] = field(default_factory=list)
    embedding_space: Optional[str] = None
    logit_scale: Optional[float] = None
    logit_bias: Optional[float] = None
    float_exports: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def full_length(self) -> bool:
        """The tower reads every position (SigLIP): texts run at ``max_length`` only, no shorter shapes."""
        return self.tokenizer.get("padding") == "max_length"


class ArchConfig:
    """Declarative description of one architecture.

    Class attributes:
      name: registry key, the ``--arch`` value.
      title: human name used in the model metadata.
      head_name: the output tensor / embedding head name (also the ONNX output name).
      head_description: what the embedding is, for the output tensor metadata.
      default_quantization: the recipe ``--quantize auto`` picks, chosen from measurement.
      quantization_rationale: why (one sentence, shown in ``--help`` and the docs).
      parity_floors: minimum cosine vs the fp32 reference, per quantization mode.
      requires_checkpoint: whether ``--model`` is needed.
    """

    name: ClassVar[str]
    #: What the converted file does (a task of ``.tasks``); one architecture may have a config per task.
    task: ClassVar[str] = "image-embedding"
    title: ClassVar[str]
    head_name: ClassVar[str]
    head_description: ClassVar[str]
    default_quantization: ClassVar[str] = "none"
    quantization_rationale: ClassVar[str] = ""
    parity_floors: ClassVar[dict[str, float]] = {
        "none": 0.9995,
        "fp16": 0.999,
        "dynamic-int8": 0.99,
        "int8": 0.9,
    }
    requires_checkpoint: ClassVar[bool] = True
    #: Import names the config's ``load`` needs beyond torch (checked before loading).
    requires_modules: ClassVar[tuple[str, ...]] = ()

    def load(self, model: Optional[str]) -> LoadedModel:
        """Load ``model`` (hub id or local folder); raise ``CheckpointError``."""
        raise NotImplementedError

    def floor(self, quantization: str) -> float:
        return self.parity_floors[quantization]


def register(cls: type[ArchConfig]) -> type[ArchConfig]:
    """Class decorator: register an :class:`ArchConfig` under ``(cls.name, cls.task)``."""
    key = (cls.name, cls.task)
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"architecture {cls.name!r} is already registered for {cls.task}")
    missing = set(QUANTIZATIONS) - set(cls.parity_floors)
    if missing or cls.default_quantization not in QUANTIZATIONS:
        raise ValueError(f"{cls.__name__}: incomplete parity floors or bad default quantization")
    _REGISTRY[key] = cls
    return cls


def registered(task: str | None = None) -> dict[str, type[ArchConfig]]:
    """The registered configs of ``task`` (all tasks when None) by name.

    The built-in ones register when ``.architectures`` is imported.
    """
    return {n: c for (n, t), c in _REGISTRY.items() if task is None or t == task}


def lookup(name: str, task: str = "image-embedding") -> ArchConfig:
    """The config of ``name`` for ``task``; raises :class:`UnknownArchitectureError` listing the known ones."""
    try:
        return _REGISTRY[(name, task)]()
    except KeyError:
        raise UnknownArchitectureError(name, registered(task), task) from None
