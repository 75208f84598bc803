"""Model runtimes behind one protocol (:mod:`.base`), and the loader that picks one.

The format is sniffed from the file's content, not its name; the LiteRT and
ONNX Runtime modules are imported only when a model of their format is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from ...errors import ModelLoadError, OptionsError
from .base import Backend, TensorSpec

__all__ = ["Backend", "TensorSpec", "open_backend", "read_model_bytes", "sniff_format"]


def sniff_format(data: bytes) -> str:
    """``"tflite"`` or ``"onnx"`` from the file's content, not its name."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    # An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if len(data) >= 2 and data[0] == 0x08 and data[1] < 0x80:
        return "onnx"
    raise ModelLoadError(
        "unrecognised model file: expected a TFLite flatbuffer (identifier 'TFL3' at byte 4) "
        f"or an ONNX protobuf, got first bytes {bytes(data[:8])!r}"
    )


def read_model_bytes(path: Union[str, "os.PathLike[str]"]) -> bytes:
    """The bytes of a model file; ModelLoadError for a missing, unreadable or empty one."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{p}: no such model file") from None
    except IsADirectoryError:
        raise ModelLoadError(f"{p}: is a directory, expected a model file") from None
    except OSError as exc:
        raise ModelLoadError(f"{p}: cannot read model file ({exc.strerror or exc})") from None
    if not data:
        raise ModelLoadError(f"{p}: model file is empty (0 bytes)")
    return data


def open_backend(
    data: bytes,
    *,
    num_threads: int,
    providers: Optional[Sequence[str]] = None,
    source: str = "<buffer>",
) -> Backend:
    """Open ``data`` with the backend its content calls for.

    Raises:
      ModelLoadError: not a model of a known format, or the runtime refuses it.
      BackendUnavailableError: the runtime for its format is not installed.
      OptionsError: ``providers`` given for a TFLite model, or not available.
    """
    fmt = sniff_format(data)
    if fmt == "tflite":
        if providers:
            raise OptionsError(f"providers: only for ONNX models, {source} is a TFLite model")
        from .litert import LiteRTBackend

        return LiteRTBackend(data, num_threads=num_threads, source=source)
    from .onnx import OnnxBackend

    return OnnxBackend(data, num_threads=num_threads, providers=providers, source=source)
