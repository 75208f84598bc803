"""The backend protocol: what every task needs from a model runtime.

A backend knows nothing about images, texts or tasks beyond returning the
raw metadata its file carries. It declares:

* its tensors (:class:`TensorSpec`) and metadata,
* ``input_layout``: how an image input's axes are ordered (``"NHWC"``, or
  ``"NCHW"`` for ONNX graphs exported that way; ``None`` when input 0 is not a
  rank-4 tensor). Preprocessing writes this layout; nobody transposes after.
* ``dynamic_batch``: whether :meth:`Backend.run_batch` runs a real batch in
  one call (ONNX with a dynamic batch axis) or one item at a time.
* ``input_shapes``: every shape input 0 can be run at with
  :meth:`Backend.run_input`: the file's own shape (the one ``input_specs``
  reports) first, then the others the file offers (a ``.tflite`` with several
  signatures: one shape each); ``-1`` marks an axis of any size (ONNX dynamic
  axes). A text task picks the smallest shape that holds its tokens; how a
  runtime offers several shapes (signatures sharing one copy of the weights,
  dynamic axes) stays inside the backend.

``run`` takes a *writer*: a function that fills the backend's own input
buffer in place (for LiteRT that is the interpreter's tensor memory), so
preprocessing never allocates a model-sized array per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ...metadata import ModelMetadata

__all__ = ["TensorSpec", "Backend", "BackendBase", "shape_offered"]


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
    """What a task needs from a runtime (LiteRT, ONNX Runtime, or a test double)."""

    #: The backend family: ``"litert"`` or ``"onnxruntime"``.
    name: str
    #: The interpreter actually in use, e.g. ``"ai_edge_litert 2.3.0"`` or ``"tflite_runtime 2.14.0"``.
    runtime: str
    #: Interpreter / intra-op threads.
    num_threads: int

    @property
    def input_specs(self) -> Sequence[TensorSpec]: ...

    @property
    def output_specs(self) -> Sequence[TensorSpec]: ...

    @property
    def metadata(self) -> Optional[ModelMetadata]: ...

    @property
    def input_layout(self) -> Optional[str]:
        """``"NHWC"``, ``"NCHW"`` or None (input 0 is not rank 4)."""
        ...

    @property
    def dynamic_batch(self) -> bool:
        """True when :meth:`run_batch` runs the whole batch in one call."""
        ...

    @property
    def model_bytes(self) -> bytes:
        """The model file's bytes (for hashing: the embedding-space id, resume checks)."""
        ...

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        """Fill input 0 with ``write_input(buffer)``, invoke, return copies of the outputs."""
        ...

    def run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run ``[B, ...]`` inputs (input-0 layout); return outputs with a leading batch axis."""
        ...

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes :meth:`run_input` accepts for input 0 (``-1``: any size on that axis); the file's own first."""
        ...

    def run_input(self, x: np.ndarray) -> list[np.ndarray]:
        """Run input 0 = ``x`` in one call (its shape one of :attr:`input_shapes`); return copies of the outputs.

        Raises ``ValueError`` for a shape the model does not offer.
        """
        ...

    def invoke_only(self) -> None:
        """Run once on whatever the input holds (bare-invoke benchmarks)."""
        ...

    def close(self) -> None: ...


class BackendBase:
    """What every concrete backend stores once it has loaded a model: the protocol's plain properties.

    Subclasses set ``_model``, ``_metadata``, ``_inputs`` and ``_outputs`` in
    their constructor and implement the rest of :class:`Backend`.
    """

    _model: bytes
    _metadata: Optional[ModelMetadata]
    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[TensorSpec, ...]

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


def shape_offered(shape: Sequence[int], offered: Sequence[Sequence[int]]) -> bool:
    """True when ``shape`` fits one of ``offered`` (``-1`` there: any size on that axis)."""
    return any(len(o) == len(shape) and all(d == -1 or d == s for d, s in zip(o, shape)) for o in offered)
