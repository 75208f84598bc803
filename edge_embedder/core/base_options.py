"""``BaseOptions``: where a task's model comes from and how it runs (MediaPipe's name).

A frozen dataclass validated in ``__post_init__``: a bad option raises
:class:`~edge_embedder.errors.OptionsError` when it is made, never later and
never silently "corrected". Shared by every task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from ..errors import OptionsError

__all__ = ["BaseOptions", "default_num_threads", "usable_cores"]

MAX_DEFAULT_THREADS = 4


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_num_threads() -> int:
    """The machine's usable cores, capped at 4.

    LiteRT's own default is a single thread, which on a 2-core board roughly
    doubles latency; more than 4 threads rarely helps a batch-1 model.
    """
    return min(MAX_DEFAULT_THREADS, usable_cores())


@dataclass(frozen=True)
class BaseOptions:
    """Where the model comes from and how it runs.

    Attributes:
      model_asset_path: path of a ``.tflite`` (or ``.onnx``) model file.
      model_asset_buffer: the model file's bytes; exactly one of path / buffer.
      num_threads: interpreter threads; None means :func:`default_num_threads`.
      providers: ONNX Runtime execution providers (ONNX models only).
    """

    model_asset_path: Optional[Union[str, "os.PathLike[str]"]] = None
    model_asset_buffer: Optional[bytes] = None
    num_threads: Optional[int] = None
    providers: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        has_path = self.model_asset_path is not None
        has_buf = self.model_asset_buffer is not None
        if has_path == has_buf:
            raise OptionsError(
                "BaseOptions: expected exactly one of model_asset_path or model_asset_buffer, "
                f"got {'both' if has_path else 'neither'}"
            )
        if has_buf and not isinstance(self.model_asset_buffer, (bytes, bytearray, memoryview)):
            raise OptionsError(
                f"model_asset_buffer: expected bytes, got {type(self.model_asset_buffer).__name__}"
            )
        if self.num_threads is not None:
            if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1:
                raise OptionsError(f"num_threads: expected an integer >= 1 or None, got {self.num_threads!r}")
        if self.providers is not None:
            if isinstance(self.providers, str):
                object.__setattr__(self, "providers", (self.providers,))
            else:
                object.__setattr__(self, "providers", tuple(self.providers))

    @property
    def resolved_num_threads(self) -> int:
        return self.num_threads if self.num_threads is not None else default_num_threads()
