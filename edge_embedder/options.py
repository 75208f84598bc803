"""Options value types, named as in MediaPipe Tasks.

All are frozen dataclasses validated in ``__post_init__``: a bad option raises
:class:`~edge_embedder.errors.OptionsError` when it is made, never later and
never silently "corrected".
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from .errors import OptionsError

__all__ = [
    "BaseOptions",
    "ImageEmbedderOptions",
    "ImageProcessingOptions",
    "RectF",
    "RunningMode",
    "default_num_threads",
]

MAX_DEFAULT_THREADS = 4


def default_num_threads() -> int:
    """The machine's usable cores, capped at 4.

    LiteRT's own default is a single thread, which on a 2-core board roughly
    doubles latency; more than 4 threads rarely helps a batch-1 model.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_THREADS, cores))


class RunningMode(enum.Enum):
    """How images reach the embedder (MediaPipe's running modes)."""

    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    LIVE_STREAM = "LIVE_STREAM"


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


@dataclass(frozen=True)
class ImageEmbedderOptions:
    """Options of :class:`~edge_embedder.ImageEmbedder`.

    Attributes:
      base_options: the model and how to run it.
      running_mode: IMAGE (``embed``), VIDEO (``embed_for_video``) or
        LIVE_STREAM (``embed_async`` + ``result_callback``).
      l2_normalize: L2-normalize each embedding (as MediaPipe does it).
      quantize: scalar-quantize each embedding to int8 (after L2 when both).
      result_callback: ``f(result, image, timestamp_ms)``; LIVE_STREAM only.
    """

    base_options: BaseOptions
    running_mode: RunningMode = RunningMode.IMAGE
    l2_normalize: bool = False
    quantize: bool = False
    result_callback: Optional[Callable[..., Any]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.base_options, BaseOptions):
            raise OptionsError(
                f"base_options: expected BaseOptions, got {type(self.base_options).__name__}"
            )
        if not isinstance(self.running_mode, RunningMode):
            raise OptionsError(f"running_mode: expected a RunningMode, got {self.running_mode!r}")
        for name in ("l2_normalize", "quantize"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(f"{name}: expected bool, got {getattr(self, name)!r}")
        live = self.running_mode is RunningMode.LIVE_STREAM
        if live and self.result_callback is None:
            raise OptionsError("result_callback: expected a callable in LIVE_STREAM mode, got None")
        if not live and self.result_callback is not None:
            raise OptionsError(
                f"result_callback: only allowed in LIVE_STREAM mode, running_mode is {self.running_mode.name}"
            )
        if self.result_callback is not None and not callable(self.result_callback):
            raise OptionsError(f"result_callback: expected a callable, got {self.result_callback!r}")


@dataclass(frozen=True)
class RectF:
    """A rectangle in normalized image coordinates, each edge in [0, 1]."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise OptionsError(f"RectF.{name}: expected a finite number, got {v!r}")
            if not 0.0 <= v <= 1.0:
                raise OptionsError(f"RectF.{name}: expected a value in [0, 1], got {v}")
            object.__setattr__(self, name, float(v))
        if not self.left < self.right:
            raise OptionsError(f"RectF: expected left < right, got left={self.left} right={self.right}")
        if not self.top < self.bottom:
            raise OptionsError(f"RectF: expected top < bottom, got top={self.top} bottom={self.bottom}")

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class ImageProcessingOptions:
    """Per-call geometry: a region of interest, then a rotation of that crop.

    Attributes:
      region_of_interest: the part of the (unrotated) image to embed; None is
        the whole image.
      rotation_degrees: a multiple of 90; positive turns the crop clockwise,
        as MediaPipe does (+90 gives ``np.rot90(crop, -1)``).
    """

    region_of_interest: Optional[RectF] = None
    rotation_degrees: int = 0

    def __post_init__(self) -> None:
        roi = self.region_of_interest
        if roi is not None and not isinstance(roi, RectF):
            raise OptionsError(f"region_of_interest: expected RectF or None, got {type(roi).__name__}")
        r = self.rotation_degrees
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r % 90 != 0:
            raise OptionsError(f"rotation_degrees: expected a multiple of 90, got {r!r}")
        object.__setattr__(self, "rotation_degrees", int(r))

    @property
    def quarter_turns(self) -> int:
        """Clockwise quarter turns in 0..3."""
        return (self.rotation_degrees // 90) % 4
