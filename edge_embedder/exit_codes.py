"""The exit codes of every ``edge-embedder`` command, in one place.

=====  ======================  ===============================================================
code   name                    meaning
=====  ======================  ===============================================================
0      ``OK``                  success
1      ``PARTIAL``             finished, but something failed: inputs were skipped (and listed),
                               a model breaks the contract (``inspect``), a parity report is below
                               its floor (``convert``), a benchmark row failed (``bench``)
2      ``USAGE``               bad arguments or options; nothing was done
3      ``MODEL``               the model file is missing, unreadable, not a model, or unusable
4      ``INPUT``               no input (image, text, calibration photo, index file) could be used
5      ``MISSING_DEPENDENCY``  an optional package is not installed; the message names the extra
130    ``INTERRUPTED``         Ctrl-C; what was finished is kept (checkpoints, partial reports)
141    ``BROKEN_PIPE``         stdout was closed early (``... | head -1``): stop quietly, as Unix
                               tools do on SIGPIPE (128 + 13)
=====  ======================  ===============================================================

The tooling (``edge_embedder.convert``, ``edge_embedder.bench``) uses the same codes.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    MODEL = 3
    INPUT = 4
    MISSING_DEPENDENCY = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141
