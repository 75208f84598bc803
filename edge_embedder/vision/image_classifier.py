"""``ImageClassifier``: a thin task on the shared vision core (MediaPipe Tasks' API)."""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Callable, Optional, Sequence, Union, cast

import numpy as np

from ..containers import Category, ClassificationResult, Classifications, check_finite_output, dequantize
from ..core.base_options import BaseOptions
from ..core.contract import ClassificationHeadSpec, ClassifierSpec, check_image_classifier
from ..core.running_mode import RunningMode, check_running_mode_options
from ..core.task import open_model
from ..errors import OptionsError
from .image import DEFAULT_MAX_IMAGE_PIXELS, ImageLike
from .processing_options import ImageProcessingOptions, check_pixel_budget
from .vision_task import VisionTask

__all__ = ["ImageClassifier", "ImageClassifierOptions"]

_new_category = tuple.__new__  # Category(*fields) at C speed: see containers/classification_result.py


def _name_list(value: object, name: str) -> Optional[tuple[str, ...]]:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise OptionsError(f"{name}: expected a list of category names or None, got {value!r}")
    items = tuple(value)
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise OptionsError(f"{name}: expected category names (str), got {bad[0]!r}")
    return items


@dataclass(frozen=True)
class ImageClassifierOptions:
    """Options of :class:`ImageClassifier` (MediaPipe's names and defaults).

    Attributes:
      base_options: the model and how to run it.
      running_mode: IMAGE (``classify``), VIDEO (``classify_for_video``) or
        LIVE_STREAM (``classify_async`` + ``result_callback``).
      display_names_locale: which label file gives ``display_name``: the first
        one whose locale is exactly this string (case-sensitive, no language
        fallback); ``""`` means the first label file; None means ``"en"``.
        No such file: ``display_name`` is None.
      max_results: the number of top categories per head; -1 (or None) keeps
        them all. 0 is refused.
      score_threshold: keep categories whose score is >= this value. None uses
        the model's own default threshold (its metadata), if any. Any number,
        zero and negative ones included, *replaces* the model's threshold
        (MediaPipe 1.2.2 ignores a value <= 0 when the model has one).
      category_allowlist: keep only these category names (the first label
        file's names). Every name must be one of the model's.
      category_denylist: drop these category names. Not together with an allowlist.
      result_callback: ``f(result, image, timestamp_ms)``; LIVE_STREAM only.
      max_image_pixels, shrink_on_load: as for ``ImageEmbedderOptions`` (the
        pixel budget of image files; decoding JPEG files reduced, off by default).

    Raises:
      OptionsError (a ValueError): a value out of its range, both lists given.
    """

    base_options: BaseOptions
    running_mode: RunningMode = RunningMode.IMAGE
    display_names_locale: Optional[str] = "en"
    max_results: Optional[int] = -1
    score_threshold: Optional[float] = None
    category_allowlist: Optional[Sequence[str]] = None
    category_denylist: Optional[Sequence[str]] = None
    result_callback: Optional[Callable[..., Any]] = None
    max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS
    shrink_on_load: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base_options, BaseOptions):
            raise OptionsError(f"base_options: expected BaseOptions, got {type(self.base_options).__name__}")
        loc = self.display_names_locale
        if loc is None:
            object.__setattr__(self, "display_names_locale", "en")
        elif not isinstance(loc, str):
            raise OptionsError(f"display_names_locale: expected a string such as 'en', got {loc!r}")
        k = self.max_results
        if k is None:
            object.__setattr__(self, "max_results", -1)
        elif isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (k == -1 or k >= 1):
            raise OptionsError(f"max_results: expected -1 (all categories) or an integer >= 1, got {k!r}")
        else:
            object.__setattr__(self, "max_results", int(k))
        t = self.score_threshold
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t):
                raise OptionsError(f"score_threshold: expected a finite number or None, got {t!r}")
            object.__setattr__(self, "score_threshold", float(t))
        allow = _name_list(self.category_allowlist, "category_allowlist")
        deny = _name_list(self.category_denylist, "category_denylist")
        if allow is not None and deny is not None:
            raise OptionsError("category_allowlist and category_denylist are mutually exclusive, got both")
        if allow is not None and not allow:
            raise OptionsError("category_allowlist: expected at least one category name (None keeps every category)")
        object.__setattr__(self, "category_allowlist", allow)
        object.__setattr__(self, "category_denylist", deny)
        check_running_mode_options(self.running_mode, self.result_callback)
        check_pixel_budget(self.max_image_pixels)
        if not isinstance(self.shrink_on_load, bool):
            raise OptionsError(f"shrink_on_load: expected bool, got {self.shrink_on_load!r}")


class _Head:
    """What one head's postprocessing needs, computed once from the spec and the options."""

    def __init__(self, spec: ClassificationHeadSpec, options: ImageClassifierOptions) -> None:
        out = spec.output
        n = out.size
        self.index, self.name, self.uint8 = out.index, out.name, out.dtype == np.uint8
        self.scale, self.zero_point = out.scale, out.zero_point
        labels = spec.labels
        display = spec.display_names(options.display_names_locale or "")
        self.category_names = np.array([x or None for x in labels] if labels else [None] * n, dtype=object)
        self.display_names = np.array([x or None for x in display] if display else [None] * n, dtype=object)
        self.threshold = options.score_threshold if options.score_threshold is not None else spec.score_threshold
        self.calibration = _calibration_arrays(spec)
        self.mask: Optional[np.ndarray] = None
        wanted = options.category_allowlist if options.category_allowlist is not None else options.category_denylist
        if wanted is not None:
            chosen = set(wanted)
            hit = np.array([x in chosen for x in labels] if labels else [False] * n, dtype=bool)
            self.mask = hit if options.category_allowlist is not None else ~hit
        self.max_results = options.max_results if options.max_results is not None and options.max_results > 0 else None

    def classify(self, raw: np.ndarray) -> Classifications:
        if self.uint8:
            x = dequantize(raw, self.scale, self.zero_point)
        else:
            x = raw.reshape(-1).astype(np.float32, copy=False)
            check_finite_output(x, self.index, self.name, "scores")
        if self.calibration is not None:
            x = _calibrate(self.calibration, x)
            check_finite_output(x, self.index, self.name, "calibrated scores",
                                f"its {self.calibration[0]} score calibration is undefined for some raw scores (LOG "
                                "needs scores > 0, INVERSE_LOGISTIC scores in (0, 1)): the model and its metadata disagree")
        keep = None
        if self.threshold is not None:
            keep = x >= np.float32(self.threshold)
        if self.mask is not None:
            keep = self.mask if keep is None else keep & self.mask
        if keep is None:
            order = np.argsort(-x, kind="stable")
        else:
            kept = np.flatnonzero(keep)
            order = kept[np.argsort(-x[kept], kind="stable")]
        if self.max_results is not None:
            order = order[: self.max_results]
        cats = list(map(_new_category, repeat(Category), zip(
            order.tolist(), x[order].tolist(), self.display_names[order].tolist(),
            self.category_names[order].tolist())))
        return Classifications(cats, self.index, self.name)


_Calibration = tuple[str, np.float64, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _calibration_arrays(spec: ClassificationHeadSpec) -> Optional[_Calibration]:
    cal = spec.calibration
    if cal is None:
        return None
    p = cal.params

    def column(attr: str, default: float) -> np.ndarray:
        vals = [getattr(c, attr) if c is not None and getattr(c, attr) is not None else default for c in p]
        return np.array(vals, np.float64)

    has = np.array([c is not None for c in p], dtype=bool)
    return (cal.transformation, np.float64(cal.default_score), has, column("scale", 0.0), column("slope", 0.0),
            column("offset", 0.0), column("min_score", -np.inf))


def _calibrate(cal: _Calibration, x: np.ndarray) -> np.ndarray:
    """TFLite Support's sigmoid calibration (see :mod:`edge_embedder.metadata.labels`), in float64."""
    transformation, default, has, scale, slope, offset, min_score = cal
    v = x.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if transformation == "LOG":
            g = np.log(v)
        elif transformation == "INVERSE_LOGISTIC":
            g = np.log(v) - np.log1p(-v)
        else:
            g = v
        f = scale / (1.0 + np.exp(-(slope * g + offset)))
    return np.where(has & (v > min_score), f, default).astype(np.float32)


class ImageClassifier(VisionTask):
    """Classifies images with a ``.tflite`` (or ``.onnx``) image-classification model.

    The model contract, checked once when the classifier is created (the image
    input rules are the embedder's, see :class:`~edge_embedder.ImageEmbedder`):

    * one or more outputs, uint8 or float32, shape ``[1, N]`` or
      ``[1, 1, 1, N]``; each output is one classification head; uint8
      outputs are dequantized with the tensor's quantization parameters;
    * the scores are the output values as they are: the model applies its
      own activation (softmax / sigmoid in the graph), as MediaPipe expects;
    * labels: the output tensor's ``TENSOR_AXIS_LABELS`` files, each with
      exactly N lines. The first gives ``category_name``; ``display_name``
      comes from the first file whose locale is ``display_names_locale``;
    * score calibration (``ScoreCalibrationOptions`` with a
      ``TENSOR_AXIS_SCORE_CALIBRATION`` file of N lines) is applied before
      thresholding; the metadata's score threshold is the default one.

    Results: one :class:`~edge_embedder.containers.Classifications` per head,
    categories sorted by descending score (ties: lower index first), then
    filtered (threshold, inclusive; allow / deny list) and cut to
    ``max_results``.

    Example::

        with ImageClassifier.create_from_model_path(default_classifier_path()) as c:
            top = c.classify("cat.jpg").classifications[0].categories[0]
            print(top.index, top.category_name, top.score)

    One classifier may be shared by threads: calls into the interpreter are
    serialised by a lock, so results equal serial use.
    """

    def __init__(self, options: ImageClassifierOptions, backend: Any, spec: ClassifierSpec) -> None:
        # Internal: use create_from_model_path / create_from_options.
        super().__init__(backend, spec, options.running_mode, options.result_callback, options.max_image_pixels,
                         options.shrink_on_load)
        self._options = options
        self._heads = [_Head(h, options) for h in spec.heads]

    # -- construction ----------------------------------------------------------
    @classmethod
    def create_from_model_path(cls, model_path: Union[str, "os.PathLike[str]"]) -> "ImageClassifier":
        """Create an IMAGE-mode classifier with default options.

        Raises:
          ModelLoadError: the file is missing or not a model.
          ModelContractError: the model breaks the contract.
          MetadataError: its label or calibration files cannot be read.
          BackendUnavailableError: no runtime for the model is installed.
        """
        return cls.create_from_options(ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls, options: ImageClassifierOptions) -> "ImageClassifier":
        """Create a classifier from :class:`ImageClassifierOptions`.

        Raises:
          OptionsError: bad options, or allow / deny list names the model does not have.
          ModelLoadError, ModelContractError, MetadataError, BackendUnavailableError.
        """
        if not isinstance(options, ImageClassifierOptions):
            raise OptionsError(f"options: expected ImageClassifierOptions, got {type(options).__name__}")
        backend, spec = open_model(options.base_options, check_image_classifier)
        try:
            _check_category_lists(options, spec)
            return cls(options, backend, spec)
        except BaseException:
            backend.close()
            raise

    # -- properties ------------------------------------------------------------
    @property
    def options(self) -> ImageClassifierOptions:
        return self._options

    @property
    def model_spec(self) -> ClassifierSpec:
        """The checked contract: input, and one ``ClassificationHeadSpec`` (labels, calibration) per head."""
        return cast(ClassifierSpec, self._spec)

    # -- classification -----------------------------------------------------------
    def classify(
        self,
        image: ImageLike,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> ClassificationResult:
        """Classify one image (IMAGE running mode).

        Args:
          image: an :class:`Image`, a file path, an ``(H, W[, C])`` uint8 RGB
            array or a PIL image.
          image_processing_options: region of interest and rotation (as for the embedder).

        Returns:
          One :class:`Classifications` per model output, in output order.

        Raises:
          ImageError: the image cannot be decoded or has an ambiguous type.
          OptionsError: wrong running mode or options type.
          EmbedderClosedError: after ``close()``.
        """
        return self._image_mode("classify", image, image_processing_options)

    def classify_for_video(
        self,
        image: ImageLike,
        timestamp_ms: int,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> ClassificationResult:
        """Classify one video frame (VIDEO running mode).

        Raises:
          OptionsError (a ValueError): timestamps not strictly increasing, or
            the classifier is not in VIDEO mode.
          ImageError, EmbedderClosedError: as :meth:`classify`.
        """
        return self._video_mode("classify_for_video", image, timestamp_ms, image_processing_options)

    def classify_async(
        self,
        image: ImageLike,
        timestamp_ms: int,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> None:
        """Queue one live frame (LIVE_STREAM running mode); returns at once.

        The result goes to ``result_callback(result, image, timestamp_ms)`` on
        the classifier's worker thread; numpy frames are copied. When frames
        arrive faster than inference, the older *pending* frame is dropped
        (see :attr:`live_stream_stats`).

        Raises:
          OptionsError (a ValueError): not in LIVE_STREAM mode, timestamps not
            strictly increasing, bad options type.
          EmbedderClosedError: after ``close()``.
        """
        self._live_mode("classify_async", image, timestamp_ms, image_processing_options)

    def __repr__(self) -> str:
        s = self._spec
        state = "closed" if self._backend is None else self._backend.runtime
        return f"ImageClassifier({s.width}x{s.height} {s.input_dtype}, classes={[o.size for o in s.outputs]}, {state})"

    # -- the task's own part -----------------------------------------------------------
    def _postprocess(self, raw: list[np.ndarray]) -> list[Classifications]:
        return [h.classify(raw[h.index]) for h in self._heads]

    def _result(self, payload: list[Classifications], timestamp_ms: Optional[int]) -> ClassificationResult:
        return ClassificationResult(payload, timestamp_ms)


def _check_category_lists(options: ImageClassifierOptions, spec: ClassifierSpec) -> None:
    """Allow / deny list names must be category names of the model (typos are errors, not silence)."""
    for attr in ("category_allowlist", "category_denylist"):
        names = getattr(options, attr)
        if names is None:
            continue
        known: set[str] = set()
        for h in spec.heads:
            if h.labels is None:
                raise OptionsError(f"{attr}: output {h.output.index} ({h.output.name!r}) has no label file, "
                                   "so categories cannot be selected by name")
            known.update(h.labels)
        unknown = [n for n in names if n not in known]
        if unknown:
            hints = difflib.get_close_matches(unknown[0], sorted(known), n=3)
            hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
            raise OptionsError(f"{attr}: expected category names of the model, got unknown {unknown[:5]}{hint}")
