"""LiteRT (TFLite) backend.

The interpreter is found in this order: ``ai_edge_litert.interpreter`` (the
maintained runtime, wheels for x86_64 and aarch64), ``tflite_runtime.interpreter``
(the classic runtime: it only works with numpy<2), ``tensorflow.lite``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

import numpy as np

from ..errors import BackendUnavailableError, ModelLoadError
from ..metadata import ModelMetadata, read_tflite_metadata
from .base import TensorSpec

__all__ = ["LiteRTBackend", "find_interpreter_class"]

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow.lite", "Interpreter"),
)


def find_interpreter_class() -> tuple[type, str]:
    """The first importable interpreter class and its module name."""
    problems = []
    for module_name, attr in _CANDIDATES:
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr), module_name
        except ImportError as exc:
            problems.append(f"{module_name}: {exc}")
        except Exception as exc:  # e.g. tflite_runtime built for numpy 1 under numpy 2
            problems.append(f"{module_name}: {type(exc).__name__}: {exc}")
    raise BackendUnavailableError(
        "no TFLite interpreter is installed: pip install ai-edge-litert "
        "(tflite-runtime also works but only with numpy<2). Tried: " + "; ".join(problems)
    )


class LiteRTBackend:
    """Runs a ``.tflite`` model with a LiteRT interpreter."""

    name = "litert"

    def __init__(self, model: bytes, *, num_threads: int, source: str = "<buffer>") -> None:
        interpreter_cls, self.runtime_module = find_interpreter_class()
        self._model = model
        try:
            self._interp: Any = interpreter_cls(model_content=model, num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{source}: not a loadable TFLite model ({msg})") from None
        self._metadata = read_tflite_metadata(model)
        self._inputs = tuple(_spec(d) for d in self._interp.get_input_details())
        self._outputs = tuple(_spec(d) for d in self._interp.get_output_details())
        self._input_index = self._inputs[0].index if self._inputs else None
        self.num_threads = num_threads

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def metadata(self) -> Optional[ModelMetadata]:
        return self._metadata

    @property
    def model_bytes(self) -> bytes:
        return self._model

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        interp = self._interp
        view = interp.tensor(self._input_index)()
        try:
            write_input(view)
        finally:
            del view  # the interpreter refuses to invoke while views are alive
        interp.invoke()
        return [interp.get_tensor(o.index) for o in self._outputs]

    def invoke_only(self) -> None:
        """Bare ``invoke()`` on whatever the input holds (for benchmarks)."""
        self._interp.invoke()

    def close(self) -> None:
        self._interp = None


def _spec(d: dict) -> TensorSpec:
    scale, zero_point = d.get("quantization", (0.0, 0))
    return TensorSpec(
        index=int(d["index"]),
        name=str(d.get("name", "")),
        dtype=np.dtype(d["dtype"]),
        shape=tuple(int(v) for v in d["shape"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )
