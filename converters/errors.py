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

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown architecture {name!r}: expected one of {', '.join(self.known)}")


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
    """The exported model's embeddings differ from the reference beyond the floor.

    Attributes:
      failures: ``[(image, cosine, max_abs_diff), ...]`` for every failing image.
      floor: the cosine floor that was applied.
      report: the full parity report (a dict, as saved to JSON).
    """

    def __init__(
        self,
        what: str,
        floor: float,
        failures: Sequence[tuple[str, float, float]],
        report: dict | None = None,
    ) -> None:
        self.floor = floor
        self.failures = list(failures)
        self.report = report
        items = "; ".join(f"{n}: cosine {c:.6f}, max abs diff {d:.3g}" for n, c, d in self.failures)
        super().__init__(
            f"{what}: parity failed on {len(self.failures)} image(s), "
            f"expected cosine >= {floor}: {items}"
        )
