"""Classification results (MediaPipe Tasks' names and field order).

``Category`` is an immutable named tuple rather than a frozen dataclass: a
classifier returns up to one per class on every call (1000 for an ImageNet
model with the default ``max_results=-1``), and building 1000 frozen
dataclasses costs about 1.5 ms in Python, more than the rest of the
postprocessing; named tuples are built at C speed (about 0.2 ms for 1000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

__all__ = ["Category", "Classifications", "ClassificationResult", "ImageClassifierResult"]


class Category(NamedTuple):
    """One class of a classification head.

    Attributes:
      index: the class index in the model output.
      score: the (calibrated, when the model calibrates) score.
      display_name: the name in the requested ``display_names_locale``, None
        when the model has no label file of that locale.
      category_name: the name from the model's first label file, None without labels.
    """

    # A field named ``index`` replaces the tuple method of that name (allowed for named tuples).
    index: int  # type: ignore[assignment]
    score: float
    display_name: Optional[str] = None
    category_name: Optional[str] = None


@dataclass(frozen=True)
class Classifications:
    """The categories of one head, sorted by descending score.

    Attributes:
      categories: kept categories (threshold, allow/deny lists, ``max_results`` applied).
      head_index: the model output index.
      head_name: the output tensor's metadata name, None when absent.
    """

    categories: list[Category]
    head_index: int
    head_name: Optional[str] = None


@dataclass(frozen=True)
class ClassificationResult:
    """All heads of one classified input.

    ``timestamp_ms`` is the caller's timestamp in VIDEO / LIVE_STREAM mode and
    None in IMAGE mode (no timestamps are invented).
    """

    classifications: list[Classifications]
    timestamp_ms: Optional[int] = None


#: MediaPipe's name for the image classifier's result.
ImageClassifierResult = ClassificationResult
