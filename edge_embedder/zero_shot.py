"""Zero-shot image classification with an image tower and a text tower of one embedding space (CLIP).

:class:`ZeroShotImageClassifier` reproduces transformers'
``pipeline("zero-shot-image-classification")`` on device: each candidate
label becomes ``hypothesis_template.format(label)`` (default
``"This is a photo of {}."``), both towers embed, both vectors are
L2-normalized, and the scores are ``softmax(logit_scale * cosine)`` over the
labels, returned as ``[{"score", "label"}]`` sorted by score, highest first
(ties keep the labels' order), as the pipeline returns them.

Prompt ensembles (open_clip's and OpenAI's recipe): with ``templates``, every
template is embedded for every label, the normalized vectors are averaged and
the mean is normalized again. :data:`OPENAI_IMAGENET_TEMPLATES` (80) and
:data:`SIMPLE_IMAGENET_TEMPLATES` (7) are shipped as data
(``edge_embedder/data/imagenet_templates.json``, MIT, provenance inside).

Label embeddings are computed once per (templates, label) and cached (LRU of
``label_cache_size`` entries); an image then costs one image embedding and
one small matrix product. The two models must share an embedding space
(equal ``embedding_space_id``), else :class:`~edge_embedder.errors.EmbeddingSpaceMismatchError`.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .containers import Embedding
from .core.base_options import BaseOptions
from .errors import EmbeddingMismatchError, EmbeddingSpaceMismatchError, MetadataError, OptionsError
from .text.text_embedder import TextEmbedder, TextEmbedderOptions
from .text.tokenizer import check_text
from .vision import ImageEmbedder, ImageEmbedderOptions, ImageLike, ImageProcessingOptions

__all__ = [
    "ZeroShotImageClassifier",
    "ZeroShotImageClassifierOptions",
    "DEFAULT_HYPOTHESIS_TEMPLATE",
    "OPENAI_IMAGENET_TEMPLATES",
    "SIMPLE_IMAGENET_TEMPLATES",
    "zero_shot_scores",
]

#: transformers' ``zero-shot-image-classification`` pipeline default.
DEFAULT_HYPOTHESIS_TEMPLATE = "This is a photo of {}."

_TEMPLATES = json.loads((Path(__file__).resolve().parent / "data" / "imagenet_templates.json").read_text(encoding="utf-8"))
#: OpenAI's 80 ImageNet prompt templates (open_clip's ``OPENAI_IMAGENET_TEMPLATES``), ``str.format`` patterns.
OPENAI_IMAGENET_TEMPLATES: tuple[str, ...] = tuple(_TEMPLATES["openai_imagenet_templates"])
#: open_clip's 7-template subset (``SIMPLE_IMAGENET_TEMPLATES``).
SIMPLE_IMAGENET_TEMPLATES: tuple[str, ...] = tuple(_TEMPLATES["simple_imagenet_templates"])


def _check_templates(templates: Any, what: str) -> tuple[str, ...]:
    if isinstance(templates, str) or not isinstance(templates, Sequence) or not templates:
        raise OptionsError(f"{what}: expected a non-empty sequence of str, got {templates!r}")
    out = []
    for t in templates:
        if not isinstance(t, str):
            raise OptionsError(f"{what}: expected str templates, got {type(t).__name__} {t!r}")
        check_text(t, what)
        try:
            filled = t.format("\x00")
        except (IndexError, KeyError, ValueError) as exc:
            raise OptionsError(f"{what}: {t!r} is not a str.format pattern with one {{}} ({exc})") from None
        if filled.count("\x00") != 1:
            raise OptionsError(f"{what}: expected exactly one {{}} slot for the label in {t!r}")
        out.append(t)
    return tuple(out)


def _check_labels(labels: Any) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise OptionsError(f"candidate_labels: expected a non-empty sequence of str, got {labels!r}")
    bad = [x for x in labels if not isinstance(x, str)]
    if bad:
        raise OptionsError(f"candidate_labels: expected str labels, got {bad[:3]!r}")
    for i, label in enumerate(labels):
        check_text(label, f"candidate_labels[{i}]")
    return list(labels)


def _check_logit_scale(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OptionsError(f"{what}: expected a finite number > 0, got {value!r}")
    return float(value)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).reshape(-1)
    n = float(np.linalg.norm(v))
    if n == 0.0 or not math.isfinite(n):
        raise EmbeddingMismatchError(f"cannot normalize an embedding with norm {n}")
    return v / n


def zero_shot_scores(image_embedding: Union[Embedding, np.ndarray], label_embeddings: np.ndarray,
                     logit_scale: float) -> np.ndarray:
    """``softmax(logit_scale * cosine)`` of one image vector against ``[n_labels, N]`` label vectors.

    Raises:
      EmbeddingMismatchError: sizes differ, or a vector has zero norm.
    """
    v = image_embedding.embedding if isinstance(image_embedding, Embedding) else image_embedding
    v = np.asarray(v)
    if v.dtype in (np.int8, np.uint8):  # uint8: MediaPipe's quantized embeddings are int8 values in uint8 arrays
        raise EmbeddingMismatchError(f"zero-shot scores need a float image embedding, got {v.dtype} "
                                     "(a quantized one?)")
    if v.ndim != 1 and not (v.ndim == 2 and v.shape[0] == 1):
        raise EmbeddingMismatchError(f"image_embedding: expected one vector, got shape {v.shape}")
    img = _unit(v)
    labels = np.asarray(label_embeddings, np.float64)
    if labels.ndim != 2 or labels.shape[1] != img.size:
        raise EmbeddingMismatchError(
            f"label embeddings have shape {list(labels.shape)}, expected [n_labels, {img.size}] (the image embedding's size)"
        )
    norms = np.linalg.norm(labels, axis=1, keepdims=True)
    if (norms == 0).any():
        raise EmbeddingMismatchError("a label embedding has zero norm")
    logits = float(logit_scale) * ((labels / norms) @ img)
    logits -= logits.max()
    e = np.exp(logits)
    return e / e.sum()


@dataclass(frozen=True)
class ZeroShotImageClassifierOptions:
    """Options of :class:`ZeroShotImageClassifier` (both models, prompts, scale, cache).

    Attributes:
      image_base_options: the image tower (``.tflite`` / ``.onnx``).
      text_base_options: the text tower of the same embedding space.
      hypothesis_template: ``str.format`` pattern with one ``{}`` (the pipeline's default).
      templates: a prompt ensemble (e.g. :data:`OPENAI_IMAGENET_TEMPLATES`); when set, it is
        used instead of ``hypothesis_template``.
      logit_scale: multiplies the cosines before the softmax; None takes the
        models' own (``edge_embedder.logit_scale`` metadata: exp of CLIP's parameter).
      label_cache_size: label embeddings kept (LRU); 0 disables the cache.
    """

    image_base_options: BaseOptions
    text_base_options: BaseOptions
    hypothesis_template: str = DEFAULT_HYPOTHESIS_TEMPLATE
    templates: Optional[Sequence[str]] = None
    logit_scale: Optional[float] = None
    label_cache_size: int = 1024

    def __post_init__(self) -> None:
        for name in ("image_base_options", "text_base_options"):
            if not isinstance(getattr(self, name), BaseOptions):
                raise OptionsError(f"{name}: expected BaseOptions, got {type(getattr(self, name)).__name__}")
        _check_templates([self.hypothesis_template], "hypothesis_template")
        if self.templates is not None:
            object.__setattr__(self, "templates", _check_templates(self.templates, "templates"))
        if self.logit_scale is not None:
            _check_logit_scale(self.logit_scale, "logit_scale")
        size = self.label_cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise OptionsError(f"label_cache_size: expected an integer >= 0, got {size!r}")


class ZeroShotImageClassifier:
    """Scores images against free-text labels with a CLIP image tower and text tower (see the module docstring).

    Example::

        with ZeroShotImageClassifier.create_from_model_paths("clip_image.tflite", "clip_text.tflite") as zs:
            print(zs.classify("cat.jpg", ["cat", "dog", "car"]))
            # [{'score': 0.98, 'label': 'cat'}, {'score': 0.01, 'label': 'dog'}, ...]

    Built from two embedders (``ZeroShotImageClassifier(image_embedder, text_embedder)``)
    it uses them as they are and leaves closing them to the caller; built from
    paths or options it owns them and :meth:`close` closes them. The image
    embedder must return float vectors (``quantize=False``); the first head of
    each model is used. Safe to share between threads.
    """

    def __init__(
        self,
        image_embedder: ImageEmbedder,
        text_embedder: TextEmbedder,
        *,
        hypothesis_template: str = DEFAULT_HYPOTHESIS_TEMPLATE,
        templates: Optional[Sequence[str]] = None,
        logit_scale: Optional[float] = None,
        label_cache_size: int = 1024,
    ) -> None:
        """Pairs two embedders of one embedding space.

        Raises:
          EmbeddingSpaceMismatchError: the models' ``embedding_space_id`` differ.
          EmbeddingMismatchError: their embedding sizes differ.
          OptionsError: bad template, logit scale or cache size; a quantizing
            image embedder; no logit scale in either file and none given.
          MetadataError: the two files carry different logit scales.
        """
        self._owned: tuple[Any, ...] = ()
        self._init(image_embedder, text_embedder, hypothesis_template, templates, logit_scale, label_cache_size)

    def _init(self, image: Any, text: Any, hypothesis_template: str, templates: Optional[Sequence[str]],
              logit_scale: Optional[float], label_cache_size: int) -> None:
        if not hasattr(image, "embed") or not hasattr(image, "embedding_space_id"):
            raise OptionsError(f"image_embedder: expected an ImageEmbedder, got {type(image).__name__}")
        if not isinstance(text, TextEmbedder):
            raise OptionsError(f"text_embedder: expected a TextEmbedder, got {type(text).__name__}")
        opts = getattr(image, "options", None)
        if getattr(opts, "quantize", False):
            raise OptionsError("image_embedder: zero-shot scores need float embeddings, the embedder was created "
                               "with quantize=True")
        if image.embedding_space_id != text.embedding_space_id:
            raise EmbeddingSpaceMismatchError(
                f"the image model and the text model are from different embedding spaces: image "
                f"{image.embedding_space_id!r}, text {text.embedding_space_id!r} (use both towers of one checkpoint, "
                "converted by edge-embedder convert --tower image / --tower text)"
            )
        image_dim = image.model_spec.outputs[0].size
        text_dim = text.model_spec.outputs[0].size
        if image_dim != text_dim:
            raise EmbeddingMismatchError(f"image embeddings are {image_dim}-d but text embeddings are {text_dim}-d")
        self._hypothesis = _check_templates([hypothesis_template], "hypothesis_template")
        self._templates = _check_templates(templates, "templates") if templates is not None else None
        self._logit_scale = self._resolve_logit_scale(logit_scale, image, text)
        if isinstance(label_cache_size, bool) or not isinstance(label_cache_size, int) or label_cache_size < 0:
            raise OptionsError(f"label_cache_size: expected an integer >= 0, got {label_cache_size!r}")
        self._image = image
        self._text = text
        self._cache: OrderedDict[tuple[tuple[str, ...], str], np.ndarray] = OrderedDict()
        self._cache_size = label_cache_size
        self._cache_lock = threading.Lock()
        self._hits = self._misses = 0

    @staticmethod
    def _resolve_logit_scale(explicit: Optional[float], image: Any, text: TextEmbedder) -> float:
        if explicit is not None:
            return _check_logit_scale(explicit, "logit_scale")
        from_text, from_image = text.logit_scale, getattr(image, "logit_scale", None)
        if from_text is not None and from_image is not None and not math.isclose(from_text, from_image, rel_tol=1e-6):
            raise MetadataError(f"the two models carry different logit scales: image {from_image}, text {from_text}")
        scale = from_text if from_text is not None else from_image
        if scale is None:
            raise OptionsError("logit_scale: neither model file carries one (edge_embedder.logit_scale); pass "
                               "logit_scale= (exp of the checkpoint's logit_scale parameter, 100 for trained CLIP)")
        return scale

    # -- construction ----------------------------------------------------------
    @classmethod
    def create_from_options(cls, options: ZeroShotImageClassifierOptions) -> "ZeroShotImageClassifier":
        """Open both models; the classifier owns them (:meth:`close` closes them).

        Raises:
          everything ``ImageEmbedder.create_from_options`` and ``TextEmbedder.create_from_options``
          raise, and what the constructor raises.
        """
        if not isinstance(options, ZeroShotImageClassifierOptions):
            raise OptionsError(f"options: expected ZeroShotImageClassifierOptions, got {type(options).__name__}")
        image = ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=options.image_base_options))
        try:
            text = TextEmbedder.create_from_options(TextEmbedderOptions(base_options=options.text_base_options))
        except BaseException:
            image.close()
            raise
        self = cls.__new__(cls)
        self._owned = (image, text)
        try:
            self._init(image, text, options.hypothesis_template, options.templates, options.logit_scale,
                       options.label_cache_size)
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def create_from_model_paths(
        cls,
        image_model_path: Union[str, "os.PathLike[str]"],
        text_model_path: Union[str, "os.PathLike[str]"],
        **kwargs: Any,
    ) -> "ZeroShotImageClassifier":
        """Open both model files with default base options; ``kwargs`` are the other options' fields."""
        return cls.create_from_options(ZeroShotImageClassifierOptions(
            image_base_options=BaseOptions(model_asset_path=image_model_path),
            text_base_options=BaseOptions(model_asset_path=text_model_path),
            **kwargs,
        ))

    # -- properties ------------------------------------------------------------
    @property
    def image_embedder(self) -> ImageEmbedder:
        return self._image

    @property
    def text_embedder(self) -> TextEmbedder:
        return self._text

    @property
    def logit_scale(self) -> float:
        return self._logit_scale

    @property
    def embedding_space_id(self) -> str:
        return self._text.embedding_space_id

    def cache_info(self) -> dict[str, int]:
        """``hits``, ``misses`` (label embeddings computed), ``size`` and ``max_size`` of the label cache."""
        with self._cache_lock:
            return {"hits": self._hits, "misses": self._misses, "size": len(self._cache), "max_size": self._cache_size}

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    # -- classification --------------------------------------------------------
    def classify(
        self,
        image: ImageLike,
        candidate_labels: Sequence[str],
        *,
        hypothesis_template: Optional[str] = None,
        templates: Optional[Sequence[str]] = None,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> list[dict[str, Any]]:
        """Score ``image`` against ``candidate_labels``.

        Args:
          image: anything ``ImageEmbedder.embed`` takes.
          candidate_labels: the labels (free text), at least one.
          hypothesis_template, templates: override the classifier's prompts for this call.
          image_processing_options: region of interest and rotation of the image.

        Returns:
          ``[{"score": float, "label": str}, ...]``, one per label, sorted by
          score (highest first); the scores sum to 1.

        Raises:
          OptionsError: bad labels or templates.
          ImageError: the image cannot be used.
          EmbedderClosedError: after ``close()``.
        """
        labels = _check_labels(candidate_labels)
        table = self.label_embeddings(labels, hypothesis_template=hypothesis_template, templates=templates)
        vec = self._image.embed(image, image_processing_options).embeddings[0]
        return self._ranked(vec, labels, table)

    def classify_embedding(
        self,
        image_embedding: Union[Embedding, np.ndarray],
        candidate_labels: Sequence[str],
        *,
        hypothesis_template: Optional[str] = None,
        templates: Optional[Sequence[str]] = None,
    ) -> list[dict[str, Any]]:
        """:meth:`classify` for an image vector already computed by this classifier's image model."""
        labels = _check_labels(candidate_labels)
        table = self.label_embeddings(labels, hypothesis_template=hypothesis_template, templates=templates)
        return self._ranked(image_embedding, labels, table)

    def label_embeddings(
        self,
        candidate_labels: Sequence[str],
        *,
        hypothesis_template: Optional[str] = None,
        templates: Optional[Sequence[str]] = None,
    ) -> np.ndarray:
        """The normalized ``[n_labels, N]`` float32 text vectors of the labels (cached).

        One template: the normalized embedding of ``template.format(label)``.
        An ensemble: the normalized mean of the normalized embeddings of every template.
        """
        labels = _check_labels(candidate_labels)
        prompts = self._prompts(hypothesis_template, templates)
        rows: dict[str, np.ndarray] = {}
        missing: dict[str, None] = {}  # ordered set
        with self._cache_lock:
            for label in labels:
                hit = self._cache.get((prompts, label))
                if hit is not None:
                    self._cache.move_to_end((prompts, label))
                    rows[label] = hit
                    self._hits += 1
                elif label not in rows:
                    missing[label] = None
        if missing:
            texts = [p.format(label) for label in missing for p in prompts]
            results = self._text.embed_batch(texts, batch_size=16)
            n = len(prompts)
            for i, label in enumerate(list(missing)):
                vecs = [_unit(r.embeddings[0].embedding) for r in results[i * n : (i + 1) * n]]
                rows[label] = _unit(np.mean(vecs, axis=0)).astype(np.float32)
            with self._cache_lock:
                self._misses += len(missing)
                if self._cache_size:
                    for label in missing:
                        self._cache[(prompts, label)] = rows[label]
                        self._cache.move_to_end((prompts, label))
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return np.stack([rows[label] for label in labels])

    def _prompts(self, hypothesis_template: Optional[str], templates: Optional[Sequence[str]]) -> tuple[str, ...]:
        if templates is not None:
            return _check_templates(templates, "templates")
        if hypothesis_template is not None:
            return _check_templates([hypothesis_template], "hypothesis_template")
        return self._templates if self._templates is not None else self._hypothesis

    def _ranked(self, image_embedding: Union[Embedding, np.ndarray], labels: list[str],
                table: np.ndarray) -> list[dict[str, Any]]:
        scores = zero_shot_scores(image_embedding, table, self._logit_scale)
        order = sorted(range(len(labels)), key=lambda i: -scores[i])
        return [{"score": float(scores[i]), "label": labels[i]} for i in order]

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Close the embedders this classifier opened (not ones it was given). Idempotent."""
        owned, self._owned = self._owned, ()
        for e in owned:
            e.close()

    def __enter__(self) -> "ZeroShotImageClassifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        prompts = f"{len(self._templates)} templates" if self._templates else repr(self._hypothesis[0])
        return f"ZeroShotImageClassifier(logit_scale={self._logit_scale:g}, prompts={prompts}, space={self.embedding_space_id!r})"
