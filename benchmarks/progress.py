"""Progress of a benchmark run on stderr: tqdm when installed, else one line per row."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """tqdm when installed (and wanted), else a line per row on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.enabled = enabled
        self.last_desc = None
        self.tqdm = None
        if enabled:
            try:
                from tqdm import tqdm

                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None

    def total(self, n: int) -> None:
        if self.enabled and self.tqdm is not None:
            self.bar = self.tqdm(total=n, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(self, desc: str, n: int, _unused: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            if desc != self.last_desc:
                self.bar.set_description(desc[:60], refresh=False)
            self.bar.update(n)
        elif desc != self.last_desc:
            print(f"bench: {desc}", file=sys.stderr, flush=True)
        self.last_desc = desc

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
