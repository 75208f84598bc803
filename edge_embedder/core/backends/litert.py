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

Several signatures (text towers: one per ``[batch, length]`` shape, sharing
one copy of the weights): every signature's input shape is in
:attr:`LiteRTBackend.input_shapes` and :meth:`LiteRTBackend.run_input` runs
the one whose shape the array has. XNNPACK packs the weights of each
subgraph it prepares; so that the signatures share one packed copy, such
files run on ai_edge_litert's ``CompiledModel`` with XNNPACK's in-memory
weight cache (CLIP B/32 text tower, fp32, 10 signatures: peak RSS
docs/text.md). Where ``CompiledModel`` is missing (tflite_runtime, older
LiteRT) or cannot run (aarch64 CPUs without Armv8.2's atomics, fp16 and dot
product, such as the Raspberry Pi 4's Cortex-A72: an illegal instruction),
the classic interpreter's signature runners run them, each signature packing
its own copy the first time it is used.

``CompiledModel`` also makes an environment of its own that lives until the
process's static objects are destroyed, after Python has finished, and says
goodbye on stderr then ("INFO: [accelerator_registry.cc:43]
DestroyAccelerator: ..."). Once a compiled model has been opened, an exit
hook therefore routes stderr through a small filter process for the last
moments of the process (POSIX; elsewhere the lines stay): the chatter is
dropped, every other line is passed through unchanged.
"""

from __future__ import annotations

import atexit
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

__all__ = ["LiteRTBackend", "find_interpreter_class", "dynamic_range_ops", "signature_count", "RuntimePerformanceWarning"]

log = logging.getLogger("edge_embedder")
_CHATTER = re.compile(
    r"^INFO: (Created|Initialized|Replacing) .*(TensorFlow Lite|XNNPACK|delegate)"
    # CompiledModel's environment: accelerator / NPU / vendor-plugin discovery on every start.
    r"|^(INFO|WARNING|VERBOSE): \[[a-z_]+\.cc:\d+\]"
    r"|^\u2514 Could not load shared library .*(LiteRt|libopenvino|Plugin)"
)


_EXIT_FILTER = {"installed": False}


def _filter_stderr_at_exit() -> None:
    """Route file descriptor 2 through a forked filter for what is written after Python has finished.

    Runs as an ``atexit`` hook (see the module docstring). The child reads the
    pipe until the parent's last copy of its write end closes (the parent has
    exited), drops LiteRT's chatter and copies every other byte line to the
    original stderr.
    """
    if not hasattr(os, "fork"):
        return
    try:
        sys.stderr.flush()
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):
        return
    try:
        with warnings.catch_warnings():  # libraries' fork warnings (JAX, Python 3.12+) concern forks that run Python
            warnings.simplefilter("ignore")
            pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return
    if pid == 0:  # the filter: only os calls, then os._exit (no atexit hooks, no finalization twice)
        code = 0
        try:
            os.close(write_end)
            os.dup2(read_end, 0)
            os.closerange(3, 1 << 16)
            os.close(1)
            pending = b""
            while True:
                chunk = os.read(0, 65536)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not _CHATTER.match(line.decode("utf-8", "replace")):
                        os.write(2, line + b"\n")
            if pending and not _CHATTER.match(pending.decode("utf-8", "replace")):
                os.write(2, pending)
        except BaseException:  # noqa: BLE001 - the filter must never outlive or confuse its parent
            code = 1
        finally:
            os._exit(code)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)


def _install_exit_filter() -> None:
    if not _EXIT_FILTER["installed"]:
        _EXIT_FILTER["installed"] = True
        atexit.register(_filter_stderr_at_exit)


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


#: Linux AT_HWCAP bits (asm/hwcap.h, arm64) of the Armv8.2 features ai_edge_litert's CompiledModel
#: runtime executes on aarch64 (measured: SIGILL on a Cortex-A72, the Raspberry Pi 4's core, under QEMU).
_AT_HWCAP = 16
_ARMV82_HWCAPS = {"atomics": 1 << 8, "fphp": 1 << 9, "asimdhp": 1 << 10, "asimddp": 1 << 20}


def _aarch64_hwcap() -> Optional[int]:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        libc.getauxval.argtypes = [ctypes.c_ulong]
        return int(libc.getauxval(_AT_HWCAP))
    except (OSError, AttributeError, TypeError):
        return None


def compiled_model_supported(machine: Optional[str] = None, hwcap: Optional[int] = None) -> bool:
    """Whether files with several signatures may run on ``CompiledModel`` on this CPU.

    On aarch64 only where the kernel reports the Armv8.2 features (LSE atomics, fp16, dot product:
    Raspberry Pi 5, Cortex-A55/A76 and later); the Raspberry Pi 4's Armv8.0 Cortex-A72 dies with an
    illegal instruction in it, so there (and where the features cannot be read) the classic
    interpreter's signature runners run the file. Every other architecture: yes.
    """
    import platform

    machine = (machine or platform.machine()).lower()
    if machine not in ("aarch64", "arm64"):
        return True
    if hwcap is None:
        hwcap = _aarch64_hwcap()
    if hwcap is None:
        return False
    return all(hwcap & bit for bit in _ARMV82_HWCAPS.values())


class LiteRTBackend(BackendBase):
    """Runs a ``.tflite`` model with a LiteRT interpreter."""

    name = "litert"
    _input_shapes: tuple[tuple[int, ...], ...]
    _runners: dict[str, Any]

    def __init__(self, model: bytes, *, num_threads: int, source: str = "<buffer>") -> None:
        interpreter_cls, self.runtime_module = find_interpreter_class()
        self._model = model
        self.num_threads = num_threads
        self.runtime = _runtime_name(self.runtime_module)
        self._interp: Any = None
        self._compiled: Optional[_CompiledSignatures] = None
        self._signatures: dict[tuple[int, ...], str] = {}  # input shape -> signature key (files with several)
        if (signature_count(model) > 1 and self.runtime_module.startswith("ai_edge_litert")
                and compiled_model_supported()):
            self._compiled = _CompiledSignatures.open(model, num_threads, source)
        if self._compiled is not None:
            self._metadata = read_tflite_metadata(model)
            _, self._inputs, self._outputs = self._compiled.specs[0]
            self._signatures = {spec[1][0].shape: spec[0] for spec in self._compiled.specs}
            self._input_shapes = tuple(self._signatures)
            self._buffer = np.zeros(self._inputs[0].shape, self._inputs[0].dtype)
            self._input_index = None
            self._runners = {}
            return
        try:
            with native_stderr_to_log():
                self._interp = interpreter_cls(model_content=model, num_threads=num_threads)
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
        self._input_shapes = (self._inputs[0].shape,) if self._inputs else ()
        self._runners: dict[str, Any] = {}
        signatures = self._interp.get_signature_list() or {}
        if len(self._inputs) == 1 and len(signatures) > 1:
            # Several signatures: every shape, the first one's included, runs through its signature
            # runner. A runner holds a reference to the interpreter's internals, after which the
            # interpreter refuses invoke() ("at least 1 reference to internal data"): the two never mix.
            for key, sig in signatures.items():
                if len(sig.get("inputs", ())) != 1:
                    continue
                with native_stderr_to_log():
                    runner = self._interp.get_signature_runner(key)
                (detail,) = runner.get_input_details().values()
                shape = tuple(int(v) for v in detail["shape"])
                if shape not in self._signatures:
                    self._signatures[shape] = key
                    self._runners[key] = runner
            self._input_shapes += tuple(s for s in self._signatures if s != self._inputs[0].shape)

    @property
    def input_layout(self) -> Optional[str]:
        # TFLite image models are NHWC; the contract refuses anything else.
        return "NHWC" if self._inputs and len(self._inputs[0].shape) == 4 else None

    @property
    def dynamic_batch(self) -> bool:
        return False  # TFLite files have a fixed batch of 1 (litert-torch exports them so)

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Input 0's shape, then the input shape of every other signature (one-input signatures only)."""
        return self._input_shapes

    @property
    def api(self) -> str:
        """``"Interpreter"`` or ``"CompiledModel"`` (files with several signatures under ai_edge_litert)."""
        return "CompiledModel" if self._compiled is not None else "Interpreter"

    def run_input(self, x: np.ndarray) -> list[np.ndarray]:
        shape = tuple(x.shape)
        if self._compiled is not None:
            key = self._signatures.get(shape)
            if key is None:
                raise ValueError(f"input shape {list(shape)} is not one the model runs ({list(self._signatures)})")
            return self._compiled.run(key, x)
        key = self._signatures.get(shape)
        if key is None:
            if self._inputs and shape == self._inputs[0].shape:

                def write(buf: np.ndarray) -> None:
                    buf[...] = x

                return self.run(write)
            raise ValueError(f"input shape {list(shape)} is not one the model runs ({list(self._input_shapes)})")
        runner = self._runners[key]
        (name,) = runner.get_input_details()
        out = runner(**{name: np.ascontiguousarray(x, self._inputs[0].dtype)})
        return [np.array(v) for v in out.values()]

    def run(self, write_input: Callable[[np.ndarray], None]) -> list[np.ndarray]:
        if self._compiled is not None:
            write_input(self._buffer)
            return self._compiled.run(self._compiled.specs[0][0], self._buffer)
        if self._runs_on_runners():  # several signatures on the interpreter: signature runners only (__init__)
            buf = np.zeros(self._inputs[0].shape, self._inputs[0].dtype)
            write_input(buf)
            return self.run_input(buf)
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
        if self._compiled is not None:
            self._compiled.run(self._compiled.specs[0][0], self._buffer)
            return
        if self._runs_on_runners():
            self.run(lambda buf: None)
            return
        self._interp.invoke()

    def _runs_on_runners(self) -> bool:
        """The first input shape runs through its signature runner (interpreter, several signatures)."""
        return self._compiled is None and bool(self._inputs) and self._inputs[0].shape in self._signatures

    def close(self) -> None:
        self._interp = None
        self._runners = {}
        compiled, self._compiled = self._compiled, None
        if compiled is not None:
            compiled.close()


class _CompiledSignatures:
    """Every signature of a ``.tflite`` on ai_edge_litert's ``CompiledModel``, weights packed once.

    XNNPACK's in-memory weight cache (``xnnpack_weight_cache_path=":memory:"``)
    makes the subgraphs share one packed copy of the weights they share. Input
    and output buffers are made once per signature, on its first run.
    """

    _WEIGHT_CACHE = ":memory:"

    def __init__(self, cm: Any, env: Any, specs: list[tuple[str, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]) -> None:
        self._cm = cm
        self._env = env
        #: (key, input specs, output specs) per signature, in subgraph order.
        self.specs = specs
        self._index = {key: cm.get_signature_index(key) for key, _, _ in specs}
        self._specs = {spec[0]: spec for spec in specs}
        self._buffers: dict[str, tuple[Any, Any]] = {}

    @classmethod
    def open(cls, model: bytes, num_threads: int, source: str) -> Optional["_CompiledSignatures"]:
        """The compiled model, or None when this LiteRT has no usable ``CompiledModel`` or the file needs the
        interpreter (quantized inputs / outputs: ``CompiledModel`` does not report their parameters)."""
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.cpu_options import CpuOptions
            from ai_edge_litert.environment import Environment, EnvironmentOptions
            from ai_edge_litert.options import Options
        except ImportError:
            return None
        _install_exit_filter()  # the environment CompiledModel makes says goodbye after Python has finished
        try:
            with native_stderr_to_log():
                opts = Options(cpu_options=CpuOptions(num_threads=num_threads, xnnpack_weight_cache_path=cls._WEIGHT_CACHE))
                runtime_path = os.path.dirname(os.path.abspath(sys.modules[CompiledModel.__module__].__file__ or ""))
                env = Environment.create(options=EnvironmentOptions(runtime_path=runtime_path))
                cm = CompiledModel.from_buffer(model, environment=env, options=opts)
                specs = []
                for key in cm.get_signature_list():
                    ins = tuple(_compiled_spec(i, d) for i, d in enumerate(cm.get_input_tensor_details(key).values()))
                    outs = tuple(_compiled_spec(i, d) for i, d in enumerate(cm.get_output_tensor_details(key).values()))
                    specs.append((key, ins, outs))
        except (ValueError, RuntimeError, TypeError) as exc:
            log.debug("%s: CompiledModel refused the file (%s); using the interpreter", source, first_line(exc))
            return None
        plain = {np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)}
        if not specs or any(len(ins) != 1 or {t.dtype for t in ins + outs} - plain for _, ins, outs in specs):
            return None
        return cls(cm, env, specs)

    def run(self, key: str, x: np.ndarray) -> list[np.ndarray]:
        bufs = self._buffers.get(key)
        if bufs is None:  # first run of this signature: buffers, and the runtime's start-up chatter to the log
            with native_stderr_to_log():
                index = self._index[key]
                bufs = self._buffers[key] = (self._cm.create_input_buffers(index), self._cm.create_output_buffers(index))
                return self._run(key, x, *bufs)
        return self._run(key, x, *bufs)

    def _run(self, key: str, x: np.ndarray, ins: Any, outs: Any) -> list[np.ndarray]:
        _, in_specs, out_specs = self._specs[key]
        ins[0].write(np.ascontiguousarray(x, in_specs[0].dtype))
        self._cm.run_by_index(self._index[key], ins, outs)
        return [b.read(int(np.prod(o.shape)), o.dtype).reshape(o.shape) for b, o in zip(outs, out_specs)]

    def close(self) -> None:
        import gc

        with native_stderr_to_log():
            self._buffers.clear()
            self._cm = None
            env, self._env = self._env, None
            if env is not None:
                env.close()
            gc.collect()  # the environment goes with its last buffer: its goodbye chatter goes to the log too


def _compiled_spec(index: int, d: dict) -> TensorSpec:
    return TensorSpec(index=index, name=str(d.get("name", "")), dtype=np.dtype(d["dtype"]),
                      shape=tuple(int(v) for v in d["shape"]))


def signature_count(model: bytes) -> int:
    """The number of signatures the flatbuffer declares (read without an interpreter)."""
    try:
        return len(FlatTable.root(model).tables(7))  # Model: signature_defs 7
    except Exception:  # not a TFLite flatbuffer (any parse error): the interpreter will say so
        return 0


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
