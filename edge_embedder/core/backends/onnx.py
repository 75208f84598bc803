"""ONNX Runtime backend (``pip install 'edge-embedder[onnx]'``).

Execution providers are passed explicitly and checked against
``onnxruntime.get_available_providers()``; ``num_threads`` maps to intra-op
threads. Metadata comes from the model's ``metadata_props`` as the converters
write them. A dynamic batch axis is reported as batch 1 to the contract and
exposed as :attr:`OnnxBackend.dynamic_batch` for real batching; every
dynamic axis (text towers also have a dynamic sequence axis) is ``-1`` in
:attr:`OnnxBackend.input_shapes`, and :meth:`OnnxBackend.run_input` runs any
size there. The input
layout (NHWC or NCHW) is read from the graph's input shape.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...errors import BackendUnavailableError, ModelLoadError, OptionsError, first_line
from ...metadata import from_onnx_props
from .base import BackendBase, TensorSpec, shape_offered

__all__ = ["OnnxBackend", "DEFAULT_PROVIDERS"]

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            f"ONNX models need onnxruntime: pip install 'edge-embedder[onnx]' ({exc})"
        ) from None
    return onnxruntime


class OnnxBackend(BackendBase):
    """Runs an ``.onnx`` model with ONNX Runtime."""

    name = "onnxruntime"

    def __init__(
        self,
        model: bytes,
        *,
        num_threads: int,
        providers: Optional[Sequence[str]] = None,
        source: str = "<buffer>",
    ) -> None:
        ort = _import_ort()
        requested = tuple(providers) if providers else DEFAULT_PROVIDERS
        available = ort.get_available_providers()
        missing = [p for p in requested if p not in available]
        if missing:
            raise OptionsError(
                f"providers: {missing} not available in this onnxruntime build; available: {available}"
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = num_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 4  # errors come back as exceptions (typed by the callers); no second copy on stderr
        try:
            self._session = ort.InferenceSession(model, sess_options=so, providers=list(requested))
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise ModelLoadError(f"{source}: not a loadable ONNX model ({first_line(exc)})") from None
        self.providers = tuple(self._session.get_providers())
        self.num_threads = num_threads
        self.runtime = f"onnxruntime {ort.__version__}"
        self._model = model
        self._metadata = from_onnx_props(self._session.get_modelmeta().custom_metadata_map)
        ins = self._session.get_inputs()
        self._dynamic_batch = bool(ins) and not isinstance(ins[0].shape[0], int)
        self._input_shapes = tuple(
            tuple(d if isinstance(d, int) and d > 0 else -1 for d in ins[0].shape) for _ in ins[:1])
        self._inputs = tuple(_spec(i, t) for i, t in enumerate(ins))
        self._outputs = tuple(_spec(i, t) for i, t in enumerate(self._session.get_outputs()))
        self._input_name = ins[0].name if ins else None
        self._output_names = [t.name for t in self._session.get_outputs()]
        self._buffer = (
            np.zeros(self._inputs[0].shape, self._inputs[0].dtype)
            if self._inputs and all(d > 0 for d in self._inputs[0].shape)
            else None
        )

    @property
    def input_layout(self) -> Optional[str]:
        if not self._inputs or len(self._inputs[0].shape) != 4:
            return None
        shape = self._inputs[0].shape
        return "NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC"

    @property
    def dynamic_batch(self) -> bool:
        return self._dynamic_batch

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Input 0's shape with ``-1`` on its dynamic axes (batch, and the sequence axis of text towers)."""
        return self._input_shapes

    def run_input(self, x: np.ndarray) -> list[np.ndarray]:
        if not shape_offered(x.shape, self._input_shapes):
            raise ValueError(f"input shape {list(x.shape)} is not one the model runs ({self._input_shapes})")
        return list(self._session.run(self._output_names, {self._input_name: x}))

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        buf = self._buffer
        if buf is None:  # a dynamic axis besides the batch: the caller runs whole arrays (run_input)
            raise ValueError(f"input shape {list(self._input_shapes[0])} has a dynamic axis besides the batch; "
                             "use run_input")
        write_input(buf)
        return list(self._session.run(self._output_names, {self._input_name: buf}))

    def run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run a whole ``[B, ...]`` batch (models with a dynamic batch axis)."""
        return list(self._session.run(self._output_names, {self._input_name: batch}))

    def invoke_only(self) -> None:
        """Run on whatever the input buffer holds (for benchmarks)."""
        self._session.run(self._output_names, {self._input_name: self._buffer})

    def close(self) -> None:
        self._session = None


def _spec(index: int, t: Any) -> TensorSpec:
    dtype = _ORT_TYPES.get(t.type)
    shape = []
    for axis, d in enumerate(t.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif axis == 0:
            shape.append(1)  # dynamic batch: the embedder runs batch 1 (or real batches)
        else:
            shape.append(-1)
    return TensorSpec(
        index=index,
        name=t.name,
        dtype=np.dtype(dtype) if dtype is not None else np.dtype("O"),
        shape=tuple(shape),
    )
