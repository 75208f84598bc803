"""A progress bar for long CLI work: count, rate and ETA, drawn only on a terminal.

No dependency (tqdm is not needed), and nothing at all is written when the
stream is not a terminal: a redirected stderr (a log file, CI) never gets
``\\r`` updates. Redraws are throttled to 10 per second.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar = ProgressBar(total, "embed-dir"); bar.update(1) ...; bar.close()``.

    Args:
      total: the number of steps (0 or None: unknown, no percentage or ETA).
      desc: a short label in front of the bar.
      unit: what a step is ("img", "step").
      stream: where to draw (default ``sys.stderr``).
      enabled: False draws nothing (``--no-progress``).
    """

    def __init__(self, total: Optional[int], desc: str = "", unit: str = "it", *,
                 stream: Optional[TextIO] = None, enabled: bool = True) -> None:
        self.total = total or 0
        self.desc = desc
        self.unit = unit
        self.n = 0
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self._on = bool(enabled and callable(isatty) and isatty())
        self._t0 = time.monotonic()
        self._last = 0.0
        self._width = 0

    @property
    def active(self) -> bool:
        """True when the bar is drawn (enabled and on a terminal)."""
        return self._on

    def set_description(self, desc: str) -> None:
        self.desc = desc
        self._draw(force=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw()

    def close(self) -> None:
        if self._on:
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()
            self._on = False

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, force: bool = False) -> None:
        if not self._on:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1 and self.n != self.total:
            return
        self._last = now
        elapsed = now - self._t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.n / self.total)
            filled = int(frac * 24)
            eta = (self.total - self.n) / rate if rate > 0 else 0.0
            text = (f"{self.desc} {frac * 100:3.0f}%|{'#' * filled}{'.' * (24 - filled)}| {self.n}/{self.total} "
                    f"[{_clock(elapsed)}<{_clock(eta)}, {rate:.1f} {self.unit}/s]")
        else:
            text = f"{self.desc} {self.n} {self.unit} [{_clock(elapsed)}, {rate:.1f} {self.unit}/s]"
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"
