"""Running modes (MediaPipe's): how inputs reach a task, and the rules every task shares.

* ``IMAGE``: one call per input, results returned (``embed``, ``classify``).
* ``VIDEO``: frames with strictly increasing timestamps, results returned
  (``embed_for_video``, ``classify_for_video``).
* ``LIVE_STREAM``: frames queued with timestamps, results delivered to a
  ``result_callback`` on the task's worker thread (``embed_async``,
  ``classify_async``; see :mod:`.live_stream` for the drop policy).
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Optional

import numpy as np

from ..errors import OptionsError

__all__ = ["RunningMode", "check_running_mode_options", "check_timestamp"]


class RunningMode(enum.Enum):
    """How inputs reach a task (MediaPipe's running modes)."""

    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    LIVE_STREAM = "LIVE_STREAM"


def check_running_mode_options(running_mode: object, result_callback: Optional[Callable[..., Any]]) -> None:
    """The rules every task's options share: a RunningMode, and a callback exactly in LIVE_STREAM mode."""
    if not isinstance(running_mode, RunningMode):
        raise OptionsError(f"running_mode: expected a RunningMode, got {running_mode!r}")
    live = running_mode is RunningMode.LIVE_STREAM
    if live and result_callback is None:
        raise OptionsError("result_callback: expected a callable in LIVE_STREAM mode, got None")
    if not live and result_callback is not None:
        raise OptionsError(f"result_callback: only allowed in LIVE_STREAM mode, running_mode is {running_mode.name}")
    if result_callback is not None and not callable(result_callback):
        raise OptionsError(f"result_callback: expected a callable, got {result_callback!r}")


def check_timestamp(ts: object) -> int:
    """A timestamp in milliseconds as an int; OptionsError for anything but an integer."""
    if isinstance(ts, bool) or not isinstance(ts, (int, np.integer)):
        raise OptionsError(f"timestamp_ms: expected an integer, got {ts!r}")
    return int(ts)
