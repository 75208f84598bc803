"""LIVE_STREAM mode: one worker thread and a one-frame pending slot.

Policy (documented and observable): ``submit()`` only enqueues, it never waits
for inference. If a frame is still *pending* (not yet started) when a newer
one arrives, the older pending frame is dropped and ``dropped`` is counted:
a live stream wants the freshest frame, not a growing backlog. Results reach
the user's ``result_callback(result, image, timestamp_ms)`` on the worker
thread, in timestamp order. A callback that raises is logged and counted; the
stream goes on.

``close()`` works as MediaPipe's does (it waits until the graph has finished
what it was given): every frame already accepted (the one in flight and the
one pending) is processed and its callback has run before ``close()``
returns; no callback fires after that, and a frame submitted once ``close()``
has begun is refused with ``EmbedderClosedError``. Every submitted frame ends
up counted once: ``submitted == processed + dropped + failed`` after
``close()`` (a refused frame is not submitted). ``close()`` called from
inside a callback cannot wait for its own thread: it returns at once, the
frame still pending is dropped (counted), and the stream stops after that
callback.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

log = logging.getLogger("edge_embedder")

__all__ = ["LiveStreamStats", "LiveStreamWorker"]


@dataclass(frozen=True)
class LiveStreamStats:
    """Counters of a live stream (a snapshot)."""

    submitted: int = 0
    processed: int = 0  # frames whose callback was called with a result
    dropped: int = 0  # older pending frames replaced by newer ones (or cancelled by close() from a callback)
    failed: int = 0  # frames whose embedding raised (bad image); logged
    callback_errors: int = 0  # callbacks that raised; logged


class LiveStreamWorker:
    """Runs ``process(frame)`` for the newest pending frame, then ``callback``."""

    def __init__(self, process: Callable[[Any], Any], callback: Callable[..., Any]) -> None:
        self._process = process
        self._callback = callback
        self._cond = threading.Condition()
        self._pending: Optional[tuple[Any, Any, int]] = None  # (frame, image, timestamp)
        self._closing = False
        self._counts = {"submitted": 0, "processed": 0, "dropped": 0, "failed": 0, "callback_errors": 0}
        self._thread = threading.Thread(target=self._loop, name="edge_embedder-live-stream", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> LiveStreamStats:
        with self._cond:
            return LiveStreamStats(**self._counts)

    def submit(self, frame: Any, image: Any, timestamp_ms: int) -> None:
        """Queue a frame (replacing a pending one); EmbedderClosedError once close() has begun."""
        with self._cond:
            if self._closing:
                from ..errors import EmbedderClosedError

                raise EmbedderClosedError("the live stream is closed (close() has begun); create a new task")
            self._counts["submitted"] += 1
            if self._pending is not None:
                self._counts["dropped"] += 1
            self._pending = (frame, image, timestamp_ms)
            self._cond.notify()

    def close(self) -> None:
        """Deliver every accepted frame's result, then stop; idempotent (see the module docstring)."""
        inside = threading.current_thread() is self._thread
        with self._cond:
            self._closing = True
            if inside and self._pending is not None:  # cannot be delivered before this close() returns
                self._pending = None
                self._counts["dropped"] += 1
            self._cond.notify()
        if inside:
            return  # close() from inside a callback: the loop ends after it returns
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:  # closing, and nothing left to deliver
                    return
                frame, image, ts = self._pending
                self._pending = None
            try:
                result = self._process(frame)
            except Exception as exc:  # a bad frame must not end the stream
                log.warning("live stream: frame at %d ms failed: %s", ts, exc)
                with self._cond:
                    self._counts["failed"] += 1
                continue
            with self._cond:
                self._counts["processed"] += 1
            try:
                self._callback(result, image, ts)
            except Exception as exc:
                log.warning("live stream: result_callback raised at %d ms: %r", ts, exc)
                with self._cond:
                    self._counts["callback_errors"] += 1
