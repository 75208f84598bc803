"""What every task shares: model file -> backend -> checked spec, running modes, lifecycle.

A task (``ImageEmbedder``, ``ImageClassifier``, ...) is a thin subclass of
:class:`BaseTask`: it names its options type, its contract check and what it
makes of the model's raw outputs. :class:`BaseTask` owns the rest:

* opening the model (:func:`open_model`): read the file or buffer, open the
  backend its content calls for, run the task's contract check, and close the
  backend again when the check fails;
* the lock that serialises calls into the interpreter, so one task object
  may be shared by threads and results equal serial use;
* running modes: the mode check of every method, strictly increasing
  timestamps (VIDEO, LIVE_STREAM), and the LIVE_STREAM worker;
* ``last_timings``, ``close()`` (idempotent), the context manager.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from ..errors import EdgeEmbedderError, EmbedderClosedError, ModelOutputError, OptionsError, first_line
from ..metadata import ModelMetadata
from ..metadata.checksum import verify_checksum
from .backends import Backend, open_backend, read_model_bytes
from .base_options import BaseOptions
from .live_stream import LiveStreamStats, LiveStreamWorker
from .running_mode import RunningMode, check_timestamp
from .timing import Timings

__all__ = ["BaseTask", "open_model", "embedding_space_id", "interpreter_errors"]

SpecT = TypeVar("SpecT")
TaskT = TypeVar("TaskT", bound="BaseTask[Any]")


def embedding_space_id(model_sha256: str, declared: Optional[str], head: int = 0) -> str:
    """The embedding-space id of head ``head`` of a model: the one rule every task and index uses.

    ``declared`` is the model's ``edge_embedder.embedding_space`` metadata
    (the converters write the same one into both towers of a CLIP checkpoint);
    without it the model is a space of its own, ``sha256:<model_sha256>``.
    Head 0 is the model's space; another head ``h`` is ``<that id>#h``.
    """
    base = declared or f"sha256:{model_sha256}"
    return base if head == 0 else f"{base}#{head}"


@contextlib.contextmanager
def interpreter_errors() -> Iterator[None]:
    """Turn an interpreter's own exception during a run (LiteRT's RuntimeError, ONNX Runtime's types) into
    :class:`~edge_embedder.errors.ModelOutputError`; the project's own errors pass through."""
    try:
        yield
    except EdgeEmbedderError:
        raise
    except Exception as exc:
        reason = f"the model failed to run ({type(exc).__name__}: {first_line(exc)})"
        raise ModelOutputError(reason, reason=reason) from exc


def open_model(base: BaseOptions, check: Callable[[Backend], SpecT]) -> tuple[Backend, SpecT]:
    """Open ``base``'s model and check it with ``check(backend) -> spec``.

    The checksum the file carries (``edge_embedder.metadata.checksum``) is
    verified while the interpreter is built and before anything runs on it;
    files without one load as they are.

    Raises:
      ModelLoadError, ModelContractError (and subclasses), BackendUnavailableError, OptionsError.
    """
    if base.model_asset_path is not None:
        source = os.fspath(base.model_asset_path)
        data = read_model_bytes(source)
    else:
        source, data = "<model_asset_buffer>", bytes(base.model_asset_buffer or b"")
    verifier = _ChecksumVerifier(data, source)
    try:
        backend = open_backend(data, num_threads=base.resolved_num_threads, providers=base.providers, source=source)
    except BaseException:
        verifier.result()  # a damaged file: say so, rather than what the interpreter made of it
        raise
    try:
        verifier.result()  # before the contract check, any inference or any result
        return backend, check(backend)
    except BaseException:
        backend.close()
        raise


class _ChecksumVerifier:
    """Verifies the file's checksum on a thread while the interpreter is built (both release the GIL).

    The interpreter parses the bytes with its own flatbuffer / protobuf verifier
    meanwhile, but nothing runs on them until :meth:`result` has passed: a
    damaged file is a ModelLoadError before any contract check or inference.
    Files under 1 MiB are verified on the spot.
    """

    def __init__(self, data: bytes, source: str) -> None:
        self._error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        if len(data) < (1 << 20):
            verify_checksum(data, source)
            return

        def run() -> None:
            try:
                verify_checksum(data, source)
            except BaseException as exc:  # handed to the caller's thread by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="edge_embedder-verify", daemon=True)
        self._thread.start()

    def result(self) -> None:
        """Wait for the verification; raise its ModelLoadError (once)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error


class BaseTask(Generic[SpecT]):
    """The shared part of every task (see the module docstring). Not used directly."""

    def __init__(
        self,
        backend: Backend,
        spec: SpecT,
        running_mode: RunningMode,
        result_callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        self._backend: Optional[Backend] = backend
        self._spec = spec
        self._running_mode = running_mode
        self._lock = threading.Lock()
        self._last_ts: Optional[int] = None
        self._last_timings: Optional[Timings] = None
        self._stream: Optional[LiveStreamWorker] = None
        self._sha256: Optional[str] = None
        if running_mode is RunningMode.LIVE_STREAM:
            if result_callback is None:  # the options' own validation makes this unreachable
                raise OptionsError("result_callback: expected a callable in LIVE_STREAM mode, got None")
            self._stream = LiveStreamWorker(self._process_live_frame, result_callback)

    # -- public ------------------------------------------------------------------
    @property
    def model_spec(self) -> SpecT:
        """The checked model contract."""
        return self._spec

    @property
    def backend(self) -> Backend:
        """The runtime this task runs on (raises after ``close()``)."""
        return self._require_open()

    @property
    def model_sha256(self) -> str:
        """The sha256 (hex) of the model file's bytes, computed on first use (EmbedderClosedError if that is after close)."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self._require_open().model_bytes).hexdigest()
        return self._sha256

    @property
    def metadata(self) -> Optional[ModelMetadata]:
        """The model's ``ModelMetadata`` (None for a file without metadata)."""
        return getattr(self._spec, "metadata", None)

    @property
    def embedding_space_id(self) -> str:
        """The embedding space of this model's vectors (of head 0; :func:`embedding_space_id`).

        The file's ``edge_embedder.embedding_space`` metadata (both towers of a
        CLIP checkpoint converted by edge_embedder carry the same one), else
        ``sha256:<the model file's sha256>``: a space of its own. Vectors of
        models with different ids must not be compared.
        """
        return embedding_space_id(self.model_sha256, getattr(self._spec, "embedding_space", None))

    @property
    def logit_scale(self) -> Optional[float]:
        """The contrastive model's logit scale from the metadata (CLIP towers), None when absent."""
        return getattr(self._spec, "logit_scale", None)

    @property
    def last_timings(self) -> Optional[Timings]:
        """How the last call's time was spent (preprocess / inference / postprocess); None before any call."""
        return self._last_timings

    @property
    def live_stream_stats(self) -> LiveStreamStats:
        """Counters of the live stream: submitted, processed, dropped, failed, callback_errors."""
        if self._stream is None:
            raise OptionsError("live_stream_stats: only in LIVE_STREAM mode")
        return self._stream.stats

    def close(self) -> None:
        """Stop the live stream (if any) and release the interpreter. Idempotent.

        In LIVE_STREAM mode, as MediaPipe's ``close()``: every frame already
        accepted (the one in flight and the one still pending) is processed
        and its callback has run before ``close()`` returns; no callback fires
        after that, and a frame sent once ``close()`` has begun raises
        ``EmbedderClosedError``. (Called from inside a callback, ``close()``
        cannot wait for its own thread: the pending frame is dropped and
        counted in ``live_stream_stats.dropped``.)
        """
        if self._stream is not None:
            self._stream.close()
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def __enter__(self: TaskT) -> TaskT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses ----------------------------------------------------------------
    def _require_open(self) -> Backend:
        backend = self._backend
        if backend is None:
            raise EmbedderClosedError(f"the {type(self).__name__} is closed; create a new one")
        return backend

    def _check_mode(self, mode: RunningMode, method: str) -> None:
        if self._running_mode is not mode:
            raise OptionsError(
                f"{method}() needs running_mode {mode.name}, the {type(self).__name__} was created with "
                f"{self._running_mode.name}"
            )

    def _next_timestamp(self, timestamp_ms: object) -> int:
        ts = check_timestamp(timestamp_ms)
        with self._lock:
            if self._last_ts is not None and ts <= self._last_ts:
                raise OptionsError(f"timestamp_ms: expected > {self._last_ts} (strictly increasing), got {ts}")
            self._last_ts = ts
        return ts

    def _submit_live(self, frame: Any, original: Any, timestamp_ms: int) -> None:
        """Queue ``frame`` for :meth:`_process_live_frame`; the callback gets ``original``."""
        stream = self._stream
        if stream is None:  # _check_mode(LIVE_STREAM) ran first: unreachable
            raise OptionsError("live stream: not in LIVE_STREAM mode")
        stream.submit(frame, original, timestamp_ms)

    def _process_live_frame(self, frame: Any) -> Any:  # pragma: no cover - overridden by live-capable tasks
        raise NotImplementedError

    def _run_timed(self, write_input: Callable[[Any], None], postprocess: Callable[[list], Any]) -> Any:
        """Write and invoke under the lock, then postprocess; record :class:`Timings`."""
        marks = [0]

        def write(buf: Any) -> None:
            write_input(buf)
            marks[0] = time.perf_counter_ns()

        with self._lock:
            backend = self._require_open()
            t0 = time.perf_counter_ns()
            with interpreter_errors():
                raw = backend.run(write)
            t2 = time.perf_counter_ns()
        result = postprocess(raw)
        t3 = time.perf_counter_ns()
        t1 = marks[0] or t0
        self._last_timings = Timings(t1 - t0, t2 - t1, t3 - t2)
        return result
