"""LiteRT (TFLite) backend.

The interpreter is found in this order: ``ai_edge_litert.interpreter`` (the
maintained runtime, wheels for x86_64 and aarch64), ``tflite_runtime.interpreter``
(the classic runtime: its last release, 2.14, is built for NumPy 1.x and only
works with numpy<2), ``tensorflow.lite``. Under tflite_runtime, dynamic-range
int8 models are refused (they return garbage there) and full-integer int8
models get a one-time warning (no fast int8 kernels: measured 25x slower).

The interpreter's native start-up chatter on stderr ("INFO: Created TensorFlow
Lite XNNPACK delegate for CPU.") goes to the ``edge_embedder`` debug log
instead; any other native output is passed through to stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ...errors import BackendUnavailableError, ModelLoadError, first_line
from ...metadata import read_tflite_metadata
from ...metadata.flatbuffer import FlatTable
from .base import BackendBase, TensorSpec

__all__ = ["LiteRTBackend", "find_interpreter_class", "dynamic_range_ops", "RuntimePerformanceWarning"]

log = logging.getLogger("edge_embedder")
_CHATTER = re.compile(r"^INFO: (Created|Initialized|Replacing) .*(TensorFlow Lite|XNNPACK|delegate)")


class RuntimePerformanceWarning(UserWarning):
    """The installed interpreter is known to run this kind of model much slower than LiteRT does."""


_WARNED: set[str] = set()

# TFLite schema enums (schema.fbs).
_TT_FLOAT32, _TT_INT8 = 0, 9
_HYBRID_CAPABLE = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED", 126: "BATCH_MATMUL"}

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow.lite", "Interpreter"),
)


def _tflite_runtime_under_numpy2() -> Optional[str]:
    """Why the installed tflite_runtime cannot work here (built for NumPy 1.x, numpy 2 installed), or None.

    Checked without importing it: the import itself prints NumPy's "compiled using
    NumPy 1.x" banner and tracebacks, and creating an interpreter then fails with
    ``SystemError ... returned a result with an exception set``.
    """
    from importlib import metadata

    if int(np.__version__.split(".")[0]) < 2:
        return None
    try:
        if importlib.util.find_spec("tflite_runtime") is None:
            return None
        version = metadata.version("tflite-runtime")
    except (ImportError, ValueError, metadata.PackageNotFoundError):
        return None
    major_minor = tuple(int(v) for v in re.findall(r"\d+", version)[:2])
    if major_minor > (2, 14):  # a release newer than the last one built for NumPy 1.x: let it try
        return None
    return (f"tflite-runtime {version} is built for NumPy 1.x and cannot run with numpy {np.__version__}: "
            "pip install 'numpy<2' (tflite-runtime's route) or pip install ai-edge-litert")


def find_interpreter_class() -> tuple[type, str]:
    """The first usable interpreter class and its module name."""
    problems = []
    for module_name, attr in _CANDIDATES:
        if module_name.startswith("tflite_runtime"):
            why = _tflite_runtime_under_numpy2()
            if why is not None:
                problems.append(why)
                continue
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr), module_name
        except ImportError as exc:
            problems.append(f"{module_name}: {exc}")
        except Exception as exc:  # e.g. tflite_runtime built for numpy 1 under numpy 2
            problems.append(f"{module_name}: {type(exc).__name__}: {exc}")
    numpy2 = [p for p in problems if p.startswith("tflite-runtime ")]
    if numpy2:
        raise BackendUnavailableError(numpy2[0])
    raise BackendUnavailableError(
        "no TFLite interpreter is installed: pip install ai-edge-litert "
        "(tflite-runtime also works but only with numpy<2). Tried: " + "; ".join(problems)
    )


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Capture file descriptor 2 while an interpreter sets itself up (see the module docstring)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            for line in text.splitlines():
                if _CHATTER.match(line):
                    log.debug("interpreter: %s", line)
                elif line.strip():
                    print(line, file=sys.stderr)


class LiteRTBackend(BackendBase):
    """Runs a ``.tflite`` model with a LiteRT interpreter."""

    name = "litert"

    def __init__(self, model: bytes, *, num_threads: int, source: str = "<buffer>") -> None:
        interpreter_cls, self.runtime_module = find_interpreter_class()
        self._model = model
        try:
            with native_stderr_to_log():
                self._interp: Any = interpreter_cls(model_content=model, num_threads=num_threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{source}: not a loadable TFLite model ({first_line(exc)})") from None
        if self.runtime_module.startswith("tflite_runtime"):
            hybrid = dynamic_range_ops(model)
            if hybrid:
                raise BackendUnavailableError(
                    f"{source}: dynamic-range int8 ops ({', '.join(sorted(set(hybrid)))}) return wrong results "
                    "under tflite_runtime (measured: cosine 0.03 for ViT, NaN for CLIP); "
                    "pip install ai-edge-litert to run this model"
                )
            if has_int8_tensors(model) and "tflite_runtime-int8" not in _WARNED:
                _WARNED.add("tflite_runtime-int8")
                warnings.warn(RuntimePerformanceWarning(
                    f"{source}: an int8 model under tflite_runtime runs without LiteRT's fast int8 kernels "
                    "(the shipped int8 model: 70.8 ms vs 2.9 ms per photo under ai-edge-litert); "
                    "pip install ai-edge-litert where it has a wheel"), stacklevel=2)
        self._metadata = read_tflite_metadata(model)
        self._inputs = tuple(_spec(d) for d in self._interp.get_input_details())
        self._outputs = tuple(_spec(d) for d in self._interp.get_output_details())
        self._input_index = self._inputs[0].index if self._inputs else None
        self.num_threads = num_threads
        self.runtime = _runtime_name(self.runtime_module)

    @property
    def input_layout(self) -> Optional[str]:
        # TFLite image models are NHWC; the contract refuses anything else.
        return "NHWC" if self._inputs and len(self._inputs[0].shape) == 4 else None

    @property
    def dynamic_batch(self) -> bool:
        return False  # TFLite files have a fixed batch of 1 (litert-torch exports them so)

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        interp = self._interp
        view = interp.tensor(self._input_index)()
        try:
            write_input(view)
        finally:
            del view  # the interpreter refuses to invoke while views are alive
        interp.invoke()
        return [interp.get_tensor(o.index) for o in self._outputs]

    def run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        """One item at a time (batch 1 is fixed); outputs stacked on a leading axis."""
        rows = []
        for x in batch:

            def write(buf: np.ndarray, x: np.ndarray = x) -> None:
                buf[...] = x[None]

            rows.append(self.run(write))
        return [np.concatenate([r[i] for r in rows]) for i in range(len(self._outputs))]

    def invoke_only(self) -> None:
        """Bare ``invoke()`` on whatever the input holds (for benchmarks)."""
        self._interp.invoke()

    def close(self) -> None:
        self._interp = None


def _runtime_name(module_name: str) -> str:
    """``"<package> <version>"`` of the interpreter module in use."""
    from importlib import metadata

    package = module_name.split(".")[0]
    dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(package, package)
    try:
        return f"{package} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return package


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


def has_int8_tensors(model: bytes) -> bool:
    """True when the model's first subgraph has int8 tensors (a quantized model)."""
    from flatbuffers import number_types as nt

    for sg in FlatTable.root(model).tables(2)[:1]:
        if any(t.scalar(1, nt.Int8Flags) == _TT_INT8 for t in sg.tables(0)):
            return True
    return False


def dynamic_range_ops(model: bytes) -> list[str]:
    """Names of "hybrid" ops: int8 weights feeding a float32 result (dynamic-range quantization).

    Read from the flatbuffer itself, so delegates cannot hide them.
    """
    from flatbuffers import number_types as nt

    root = FlatTable.root(model)
    # OperatorCode: deprecated_builtin_code 0 (int8), custom_code 1, version 2, builtin_code 3 (int32)
    codes = [max(c.scalar(0, nt.Int8Flags), c.scalar(3, nt.Int32Flags)) for c in root.tables(1)]
    found = []
    for sg in root.tables(2):  # SubGraph: tensors 0, inputs 1, outputs 2, operators 3
        types = [t.scalar(1, nt.Int8Flags) for t in sg.tables(0)]  # Tensor: shape 0, type 1
        for op in sg.tables(3):  # Operator: opcode_index 0, inputs 1, outputs 2
            code = codes[op.scalar(0, nt.Uint32Flags)]
            if code not in _HYBRID_CAPABLE:
                continue
            ins = [i for i in (op.scalars(1, nt.Int32Flags) or []) if i >= 0]
            outs = [i for i in (op.scalars(2, nt.Int32Flags) or []) if i >= 0]
            if any(types[i] == _TT_INT8 for i in ins) and any(types[o] == _TT_FLOAT32 for o in outs):
                found.append(_HYBRID_CAPABLE[code])
    return found
