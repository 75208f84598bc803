"""``ImageEmbedder``: wiring of image -> preprocess -> backend -> embeddings."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np

from .backends.base import Backend, open_backend, read_model_bytes
from .contract import ModelSpec, check_contract
from .embedding import (
    Embedding,
    ImageEmbedderResult,
    VectorLike,
    cosine_similarity as _cosine_similarity,
    dequantize,
    l2_normalize,
    quantize,
)
from .errors import EdgeEmbedderError, EmbedderClosedError, ImageError, OptionsError
from .image import Image, ImageLike, to_image
from .metadata import ModelMetadata
from .options import BaseOptions, ImageEmbedderOptions, ImageProcessingOptions, RunningMode
from .preprocess import Preprocessor
from .stream import LiveStreamStats, LiveStreamWorker

__all__ = ["ImageEmbedder"]


class ImageEmbedder:
    """Embeds images with a ``.tflite`` (or ``.onnx``) image-embedding model.

    The model contract, checked once when the embedder is created:

    * one input tensor, uint8 or float32, shape ``[1, H, W, 3]`` (RGB, NHWC;
      ONNX models may be NCHW);
    * float32 input needs NormalizationOptions (1 or 3 means / stds) in the
      model metadata, applied as ``(x - mean) / std`` to 0..255 pixels;
      uint8 input is fed raw pixels;
    * one or more outputs, uint8 or float32, shape ``[1, N]`` or
      ``[1, 1, 1, N]``; each output is one embedding head (``head_index`` is
      its position, ``head_name`` its metadata name); uint8 outputs are
      dequantized with the tensor's quantization parameters;
    * an optional preprocessing recipe in the custom metadata
      ``edge_embedder.recipe``; without one, the image is stretched to H x W
      exactly as MediaPipe does it.

    A model that breaks a rule raises a subclass of
    :class:`~edge_embedder.errors.ModelContractError` naming the expected and
    the actual value; a file that is not a model raises
    :class:`~edge_embedder.errors.ModelLoadError`.

    Example::

        with ImageEmbedder.create_from_model_path("models/efficientnet_lite0_fp32.tflite") as e:
            a = e.embed("cat.jpg").embeddings[0]
            b = e.embed("dog.jpg").embeddings[0]
            print(ImageEmbedder.cosine_similarity(a, b))

    One embedder may be shared by threads: calls into the interpreter are
    serialised by a lock, so results equal serial use.
    """

    def __init__(self, options: ImageEmbedderOptions, backend: Backend, spec: ModelSpec) -> None:
        # Internal: use create_from_model_path / create_from_options.
        self._options = options
        self._backend: Optional[Backend] = backend
        self._spec = spec
        self._pre = Preprocessor(spec.height, spec.width, spec.recipe, spec.normalization)
        self._lock = threading.Lock()
        self._last_ts: Optional[int] = None
        self._stream: Optional[LiveStreamWorker] = None
        if options.running_mode is RunningMode.LIVE_STREAM:
            self._stream = LiveStreamWorker(self._embed_frame, options.result_callback)  # type: ignore[arg-type]
        # NCHW (ONNX) models: preprocess NHWC into a scratch buffer, then transpose.
        self._nhwc = (
            np.empty((1, spec.height, spec.width, 3), spec.input_dtype) if spec.layout == "NCHW" else None
        )

    # -- construction ----------------------------------------------------------
    @classmethod
    def create_from_model_path(cls, model_path: Union[str, "os.PathLike[str]"]) -> "ImageEmbedder":
        """Create an IMAGE-mode embedder with default options.

        Raises:
          ModelLoadError: the file is missing or not a model.
          ModelContractError: the model breaks the contract.
          BackendUnavailableError: no runtime for the model is installed.
        """
        return cls.create_from_options(ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls, options: ImageEmbedderOptions) -> "ImageEmbedder":
        """Create an embedder from :class:`ImageEmbedderOptions`.

        Raises:
          OptionsError, ModelLoadError, ModelContractError, BackendUnavailableError.
        """
        if not isinstance(options, ImageEmbedderOptions):
            raise OptionsError(f"options: expected ImageEmbedderOptions, got {type(options).__name__}")
        base = options.base_options
        if base.model_asset_path is not None:
            source = os.fspath(base.model_asset_path)
            data = read_model_bytes(source)
        else:
            source, data = "<model_asset_buffer>", bytes(base.model_asset_buffer)  # type: ignore[arg-type]
        backend = open_backend(
            data, num_threads=base.resolved_num_threads, providers=base.providers, source=source
        )
        try:
            spec = check_contract(
                backend.input_specs,
                backend.output_specs,
                backend.metadata,
                allow_nchw=backend.name != "litert",
            )
        except Exception:
            backend.close()
            raise
        return cls(options, backend, spec)

    # -- properties ------------------------------------------------------------
    @property
    def model_spec(self) -> ModelSpec:
        """The checked model contract (input size, normalization, recipe, heads)."""
        return self._spec

    @property
    def metadata(self) -> Optional[ModelMetadata]:
        return self._spec.metadata

    @property
    def options(self) -> ImageEmbedderOptions:
        return self._options

    @property
    def backend(self) -> Backend:
        return self._require_open()

    # -- embedding -------------------------------------------------------------
    def embed(
        self,
        image: ImageLike,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> ImageEmbedderResult:
        """Embed one image (IMAGE running mode).

        Args:
          image: an :class:`Image`, a file path, an ``(H, W[, C])`` uint8 RGB
            array or a PIL image.
          image_processing_options: region of interest and rotation.

        Returns:
          One :class:`Embedding` per model output, in output order.

        Raises:
          ImageError: the image cannot be decoded or has an ambiguous type.
          OptionsError: wrong running mode or options type.
          EmbedderClosedError: after ``close()``.
        """
        self._check_mode(RunningMode.IMAGE, "embed")
        return self._embed(image, image_processing_options, None)

    def embed_for_video(
        self,
        image: ImageLike,
        timestamp_ms: int,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> ImageEmbedderResult:
        """Embed one video frame (VIDEO running mode).

        Raises:
          OptionsError (a ValueError): timestamps not strictly increasing, or
            the embedder is not in VIDEO mode.
        """
        self._check_mode(RunningMode.VIDEO, "embed_for_video")
        ts = self._next_timestamp(timestamp_ms)
        return self._embed(image, image_processing_options, ts)

    def embed_async(
        self,
        image: ImageLike,
        timestamp_ms: int,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> None:
        """Queue one live frame (LIVE_STREAM running mode); returns at once.

        The result goes to ``result_callback(result, image, timestamp_ms)`` on
        the embedder's worker thread. Numpy frames are copied, so the caller
        may reuse its buffer. When frames arrive faster than inference, the
        older *pending* frame is dropped (see :attr:`live_stream_stats`).

        Raises:
          OptionsError (a ValueError): not in LIVE_STREAM mode, timestamps not
            strictly increasing, bad options type.
          EmbedderClosedError: after ``close()``.
        """
        self._check_mode(RunningMode.LIVE_STREAM, "embed_async")
        _check_ipo(image_processing_options)
        self._require_open()
        ts = self._next_timestamp(timestamp_ms)
        if isinstance(image, np.ndarray):
            image = Image.create_from_array(np.array(image, copy=True))
        elif isinstance(image, Image):
            image = Image.create_from_array(np.array(image.numpy_view(), copy=True))
        stream = self._stream
        assert stream is not None  # LIVE_STREAM mode always has a worker
        stream.submit((image, image_processing_options, ts), image, ts)

    @property
    def live_stream_stats(self) -> LiveStreamStats:
        """Counters of the live stream: submitted, processed, dropped, failed, callback_errors."""
        if self._stream is None:
            raise OptionsError("live_stream_stats: only in LIVE_STREAM mode")
        return self._stream.stats

    def embed_batch(
        self,
        images: Iterable[ImageLike],
        image_processing_options: Optional[ImageProcessingOptions] = None,
        *,
        batch_size: int = 8,
    ) -> list[ImageEmbedderResult]:
        """Embed many images; results in input order, equal to one-by-one ``embed``.

        Decoding runs on background threads while the model runs, and models
        with a dynamic batch axis (ONNX) run real batches of ``batch_size``.

        Raises:
          ImageError: the first image that cannot be used (its index and
            source in the message). Use :meth:`iter_embed` to skip bad images.
        """
        out = []
        for item in self.iter_embed(images, image_processing_options, batch_size=batch_size):
            if item.error is not None:
                raise type(item.error)(f"image {item.index} ({item.source}): {item.error}") from None
            out.append(item.result)
        return out

    def iter_embed(
        self,
        images: Iterable[ImageLike],
        image_processing_options: Optional[ImageProcessingOptions] = None,
        *,
        batch_size: int = 8,
        decode_workers: int = 2,
    ) -> Iterator[BatchItem]:
        """Yield a :class:`BatchItem` per image, in input order, never raising for a bad image.

        A bad image (corrupt, truncated, unsupported) gives an item whose
        ``error`` is set; the good ones are all embedded.
        """
        self._check_mode(RunningMode.IMAGE, "iter_embed")
        ipo = _check_ipo(image_processing_options)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise OptionsError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        backend = self._require_open()
        batched = bool(getattr(backend, "dynamic_batch", False)) and batch_size > 1
        group: list[tuple[int, Any, Image]] = []
        for index, source, decoded in _decode_ahead(images, decode_workers):
            if isinstance(decoded, BaseException):
                if group:
                    yield from self._run_group(group, ipo)
                    group = []
                yield BatchItem(index, _describe(source), None, decoded)
                continue
            if not batched:
                try:
                    raw = self._run(decoded.numpy_view(), ipo)
                except ImageError as exc:
                    yield BatchItem(index, _describe(source), None, exc)
                    continue
                yield BatchItem(index, _describe(source), ImageEmbedderResult(self._postprocess(raw)), None)
                continue
            group.append((index, source, decoded))
            if len(group) == batch_size:
                yield from self._run_group(group, ipo)
                group = []
        if group:
            yield from self._run_group(group, ipo)

    @staticmethod
    def cosine_similarity(u: VectorLike, v: VectorLike) -> float:
        """Cosine similarity of two embeddings (both float or both quantized).

        Raises:
          EmbeddingMismatchError (a ValueError): mixed kinds, different sizes,
            empty or zero-norm vectors.
        """
        return _cosine_similarity(u, v)

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Stop the live stream (if any) and release the interpreter. Idempotent.

        In LIVE_STREAM mode the pending frame is dropped, the frame in flight
        finishes, and no callback fires after ``close()`` returns.
        """
        if self._stream is not None:
            self._stream.close()
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def __enter__(self) -> "ImageEmbedder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._spec
        state = "closed" if self._backend is None else self._backend.name
        return (
            f"ImageEmbedder({s.width}x{s.height} {s.input_dtype}, heads="
            f"{[o.name or o.index for o in s.outputs]}, {state})"
        )

    # -- internals -------------------------------------------------------------
    def _require_open(self) -> Backend:
        backend = self._backend
        if backend is None:
            raise EmbedderClosedError("the embedder is closed; create a new one")
        return backend

    def _check_mode(self, mode: RunningMode, method: str) -> None:
        if self._options.running_mode is not mode:
            raise OptionsError(
                f"{method}() needs running_mode {mode.name}, the embedder was created with "
                f"{self._options.running_mode.name}"
            )

    def _next_timestamp(self, timestamp_ms: object) -> int:
        ts = _check_timestamp(timestamp_ms)
        with self._lock:
            if self._last_ts is not None and ts <= self._last_ts:
                raise OptionsError(f"timestamp_ms: expected > {self._last_ts} (strictly increasing), got {ts}")
            self._last_ts = ts
        return ts

    def _embed_frame(self, frame: tuple) -> ImageEmbedderResult:
        image, ipo, ts = frame
        return self._embed(image, ipo, ts)

    def _embed(
        self,
        image: ImageLike,
        ipo: Optional[ImageProcessingOptions],
        timestamp_ms: Optional[int],
    ) -> ImageEmbedderResult:
        _check_ipo(ipo)
        self._require_open()
        pixels = to_image(image).numpy_view()
        raw = self._run(pixels, ipo)
        return ImageEmbedderResult(self._postprocess(raw), timestamp_ms)

    def _run(self, pixels: np.ndarray, ipo: Optional[ImageProcessingOptions]) -> list[np.ndarray]:
        with self._lock:
            backend = self._require_open()
            if self._nhwc is None:
                return backend.run(lambda buf: self._pre.write(pixels, ipo, buf))
            return backend.run(lambda buf: self._write_nchw(pixels, ipo, buf))

    def _run_group(self, group: list, ipo: Optional[ImageProcessingOptions]) -> Iterator[BatchItem]:
        """One real batch through a dynamic-batch backend."""
        spec = self._spec
        n = len(group)
        nhwc = np.empty((n, spec.height, spec.width, 3), spec.input_dtype)
        for i, (_, _, image) in enumerate(group):
            self._pre.write(image.numpy_view(), ipo, nhwc[i : i + 1])
        batch = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)) if spec.layout == "NCHW" else nhwc
        with self._lock:
            backend = self._require_open()
            outputs = backend.run_batch(batch)  # type: ignore[attr-defined]
        for i, (index, source, _) in enumerate(group):
            raw = [o[i : i + 1] for o in outputs]
            yield BatchItem(index, _describe(source), ImageEmbedderResult(self._postprocess(raw)), None)

    def _write_nchw(self, pixels: np.ndarray, ipo: Optional[ImageProcessingOptions], buf: np.ndarray) -> None:
        nhwc = self._nhwc
        assert nhwc is not None  # internal invariant, not input validation
        self._pre.write(pixels, ipo, nhwc)
        buf[...] = nhwc.transpose(0, 3, 1, 2)

    def _postprocess(self, raw: list[np.ndarray]) -> list[Embedding]:
        out = []
        for head in self._spec.outputs:
            t = raw[head.index]
            if head.dtype == np.uint8:
                v = dequantize(t, head.scale, head.zero_point)
            else:
                v = t.reshape(-1).astype(np.float32, copy=False)
            if self._options.l2_normalize:
                v = l2_normalize(v)
            if self._options.quantize:
                v = quantize(v)
            out.append(Embedding(v, head.index, head.name))
        return out


@dataclass(frozen=True)
class BatchItem:
    """One image of :meth:`ImageEmbedder.iter_embed`: a result or the error that stopped it."""

    index: int
    source: str
    result: Optional[ImageEmbedderResult]
    error: Optional[EdgeEmbedderError]


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)  # type: ignore[return-value]
    if isinstance(source, Image) and source.source:
        return source.source
    return f"<{type(source).__name__}>"


def _decode_ahead(images: Iterable[ImageLike], workers: int) -> Iterator[tuple[int, object, object]]:
    """Decode images on ``workers`` threads, a bounded window ahead, yielding in order.

    Pillow releases the GIL while it decodes, so decoding overlaps inference.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def decode(src: ImageLike) -> object:
        try:
            return to_image(src)
        except ImageError as exc:
            return exc

    window: deque = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="edge_embedder-decode") as pool:
        try:
            for index, src in enumerate(images):
                window.append((index, src, pool.submit(decode, src)))
                if len(window) > 2 * max(1, workers):
                    i, s, fut = window.popleft()
                    yield i, s, fut.result()
            while window:
                i, s, fut = window.popleft()
                yield i, s, fut.result()
        finally:
            for _, _, fut in window:
                fut.cancel()


def _check_ipo(ipo: object) -> Optional[ImageProcessingOptions]:
    if ipo is not None and not isinstance(ipo, ImageProcessingOptions):
        raise OptionsError(f"image_processing_options: expected ImageProcessingOptions, got {type(ipo).__name__}")
    return ipo


def _check_timestamp(ts: object) -> int:
    if isinstance(ts, bool) or not isinstance(ts, (int, np.integer)):
        raise OptionsError(f"timestamp_ms: expected an integer, got {ts!r}")
    return int(ts)
