"""The backend protocol: load, input spec, output specs, run, close.

A backend knows nothing about images or metadata beyond returning the raw
metadata it carries; the embedder holds no backend-specific code. ``run``
takes a *writer*: a function that fills the backend's own input buffer in
place (for LiteRT that is the interpreter's tensor memory), so preprocessing
never allocates a model-sized array per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ModelLoadError
from ..metadata import ModelMetadata

__all__ = ["TensorSpec", "Backend", "open_backend", "sniff_format"]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as the runtime sees it."""

    index: int
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    scale: float = 0.0  # quantization scale (0 when not quantized)
    zero_point: int = 0


@runtime_checkable
class Backend(Protocol):
    """What the embedder needs from a runtime."""

    name: str

    @property
    def input_specs(self) -> Sequence[TensorSpec]: ...

    @property
    def output_specs(self) -> Sequence[TensorSpec]: ...

    @property
    def metadata(self) -> Optional[ModelMetadata]: ...

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        """Fill input 0 with ``write_input(buffer)``, invoke, return output copies."""
        ...

    def close(self) -> None: ...


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


def read_model_bytes(path: str | Path) -> bytes:
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
    """Open ``data`` with the backend its content calls for."""
    fmt = sniff_format(data)
    if fmt == "tflite":
        if providers:
            from ..errors import OptionsError

            raise OptionsError(f"providers: only for ONNX models, {source} is a TFLite model")
        from .litert import LiteRTBackend

        return LiteRTBackend(data, num_threads=num_threads, source=source)
    from .onnx import OnnxBackend

    return OnnxBackend(data, num_threads=num_threads, providers=providers, source=source)
