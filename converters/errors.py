"""The converters' exception branch, under ``edge_embedder.EdgeEmbedderError``::

    EdgeEmbedderError
    └── ConversionError
        ├── UnknownArchitectureError  (ValueError)   --arch not registered; lists the known ones
        ├── ConversionOptionsError    (ValueError)   bad format / quantization / option combination
        ├── CheckpointError           (ValueError)   checkpoint missing, incomplete, or of another architecture
        ├── CalibrationError          (ValueError)   no readable calibration image
        ├── ExportError               (RuntimeError) the exporter / quantizer failed or wrote an unloadable file
        ├── OutputPathError           (OSError)      the output file cannot be written
        └── ParityError               (RuntimeError) the exported file does not reproduce the source model

Every message is one line (the CLI prints it as is).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from edge_embedder.errors import EdgeEmbedderError

__all__ = [
    "ConversionError",
    "UnknownArchitectureError",
    "ConversionOptionsError",
    "CheckpointError",
    "CalibrationError",
    "ExportError",
    "OutputPathError",
    "ParityError",
]


class ConversionError(EdgeEmbedderError):
    """Base class of every converter error."""


class UnknownArchitectureError(ConversionError, ValueError):
    """The architecture name is not registered."""

    def __init__(self, name: str, known: Iterable[str], task: str = "image-embedding") -> None:
        self.name = name
        self.known = sorted(known)
        self.task = task
        super().__init__(f"unknown architecture {name!r} for {task}: expected one of {', '.join(self.known)}")


class ConversionOptionsError(ConversionError, ValueError):
    """An unknown format or quantization, or options that do not go together."""


class CheckpointError(ConversionError, ValueError):
    """The checkpoint cannot be loaded, is incomplete, or is another architecture."""


class CalibrationError(ConversionError, ValueError):
    """The calibration images cannot be used."""


class ExportError(ConversionError, RuntimeError):
    """Export or quantization failed, or the written file does not load back."""


class OutputPathError(ConversionError, OSError):
    """The output file cannot be written."""


class ParityError(ConversionError, RuntimeError):
    """The exported model's outputs differ from the reference beyond the floor.

    Attributes:
      failures: ``[(input name, what was measured), ...]`` for every failing input.
      criterion: what every input had to reach (e.g. ``"cosine >= 0.9995"``).
      report: the full parity report (a dict, as saved to JSON).
    """

    def __init__(
        self,
        what: str,
        criterion: str,
        failures: Sequence[tuple[str, str]],
        report: dict | None = None,
        kind: str = "input",
    ) -> None:
        self.criterion = criterion
        self.failures = list(failures)
        self.report = report
        items = "; ".join(f"{n}: {d}" for n, d in self.failures)
        super().__init__(f"{what}: parity failed on {len(self.failures)} {kind}(s), expected {criterion}: {items}")
