"""Progress of a benchmark run on stderr: a bar on a terminal, else one line per row."""

from __future__ import annotations

import sys
from typing import Optional

from edge_embedder.progress import ProgressBar

__all__ = ["Progress"]


class Progress:
    """The harness's progress callbacks: ``total(n)``, ``update(desc, n, 0)``, ``close()``.

    On a terminal, a bar (``edge_embedder.progress.ProgressBar``); otherwise one
    plain line each time a new row starts, never ``\\r`` updates.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Optional[ProgressBar] = None
        self.last_desc: Optional[str] = None

    def total(self, n: int) -> None:
        if self.enabled:
            bar = ProgressBar(n, "bench", "step")
            self.bar = bar if bar.active else None

    def update(self, desc: str, n: int, _unused: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            if desc != self.last_desc:
                self.bar.desc = desc[:60]
            self.bar.update(n)
        elif desc != self.last_desc:
            print(f"bench: {desc}", file=sys.stderr, flush=True)
        self.last_desc = desc

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
