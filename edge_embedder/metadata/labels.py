"""Label and score-calibration files: the text formats of TFLite Support's associated files.

* ``TENSOR_AXIS_LABELS``: one label per line, UTF-8. Read as MediaPipe reads
  it: lines split on ``"\\n"``, a ``"\\r"`` before it stripped, trailing empty
  lines ignored (so the final newline is optional); an empty line in the
  middle is an empty name. :func:`format_label_file` writes one name a line
  with a final newline, and refuses names that cannot be a line.
* ``TENSOR_AXIS_SCORE_CALIBRATION``: one line per class, ``scale,slope,offset``
  or ``scale,slope,offset,min_score``, or empty (the class gets the default
  score). The calibrated score is
  ``scale / (1 + exp(-(slope * g(x) + offset)))`` with ``g`` the tensor's
  transformation (identity, log, or ``log(x) - log(1 - x)``), and
  ``default_score`` when ``x <= min_score``. :func:`format_score_calibration`
  writes no final newline: MediaPipe 1.2.2 counts a trailing newline as one
  more (empty) line, i.e. one more class, and then refuses the file.
  :func:`parse_score_calibration` reads lines the same way; given the number
  of classes it also accepts such a final newline (N classes, N + 1 lines, the
  last one empty), where it can only be a line terminator.

Malformed files raise :class:`~edge_embedder.errors.MetadataError` naming the
file, the line and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import MetadataError

__all__ = ["parse_label_file", "format_label_file", "CalibrationParams", "parse_score_calibration",
           "format_score_calibration"]


def _lines(data: bytes, name: str) -> list[str]:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{name}: expected UTF-8 text, got undecodable bytes at offset {exc.start}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def parse_label_file(data: bytes, name: str = "label file") -> list[str]:
    """The labels of a ``TENSOR_AXIS_LABELS`` file, one per line (see the module docstring)."""
    lines = _lines(data, name)
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def format_label_file(labels: Sequence[str], name: str = "label file") -> bytes:
    """One label per line, UTF-8, final newline. Refuses names containing a line break."""
    out = []
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise MetadataError(f"{name}: label {i} expected a string, got {label!r}")
        if "\n" in label or "\r" in label:
            raise MetadataError(f"{name}: label {i} {label!r} contains a line break; one label per line")
        out.append(label)
    if out and out[-1] == "":
        raise MetadataError(f"{name}: the last label is empty; readers ignore trailing empty lines")
    return ("\n".join(out) + "\n").encode("utf-8") if out else b""


@dataclass(frozen=True)
class CalibrationParams:
    """One class's sigmoid parameters; ``min_score`` is None when the line has three values."""

    scale: float
    slope: float
    offset: float
    min_score: Optional[float] = None


def parse_score_calibration(data: bytes, name: str = "score calibration file",
                            num_classes: Optional[int] = None) -> list[Optional[CalibrationParams]]:
    """One entry per line (None for an empty line), split on ``"\\n"`` like MediaPipe.

    With ``num_classes``, ``num_classes + 1`` lines whose last is empty are read
    as ``num_classes`` lines and a final newline.
    """
    lines = _lines(data, name)
    if num_classes is not None and len(lines) == num_classes + 1 and lines[-1] == "":
        lines.pop()
    if lines == [""]:
        return []
    out: list[Optional[CalibrationParams]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            out.append(None)
            continue
        parts = line.split(",")
        if len(parts) not in (3, 4):
            raise MetadataError(
                f"{name} line {n}: expected 'scale,slope,offset[,min_score]' (3 or 4 values), got {line!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise MetadataError(f"{name} line {n}: expected numbers, got {line!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise MetadataError(f"{name} line {n}: expected finite numbers, got {line!r}")
        if values[0] < 0:
            raise MetadataError(f"{name} line {n}: expected a scale >= 0, got {values[0]}")
        out.append(CalibrationParams(values[0], values[1], values[2], values[3] if len(values) == 4 else None))
    return out


def format_score_calibration(params: Sequence[Optional[CalibrationParams]]) -> bytes:
    """The CSV text, one line per class, no final newline (see the module docstring)."""

    def num(v: float) -> str:
        return repr(float(v))

    lines = []
    for p in params:
        if p is None:
            lines.append("")
            continue
        vals = [p.scale, p.slope, p.offset] + ([p.min_score] if p.min_score is not None else [])
        lines.append(",".join(num(v) for v in vals))
    return "\n".join(lines).encode("ascii")
