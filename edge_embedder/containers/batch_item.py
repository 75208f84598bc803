"""``BatchItem``: one input of a batch call, with its result or the error that stopped it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Optional, TypeVar

from ..errors import EdgeEmbedderError

__all__ = ["BatchItem"]

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class BatchItem(Generic[ResultT]):
    """One input of ``iter_embed`` (and the other batch iterators): a result or an error.

    Attributes:
      index: the input's position in the iterable given.
      source: the file path, or ``<ndarray>`` / ``<Image>`` ... for in-memory inputs.
      result: the task's result, None when ``error`` is set.
      error: the typed error that stopped this input (bad image, ...), else None.
    """

    index: int
    source: str
    result: Optional[ResultT]
    error: Optional[EdgeEmbedderError]
