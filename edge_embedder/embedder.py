"""``ImageEmbedder``: wiring of image -> preprocess -> backend -> embeddings."""

from __future__ import annotations

import os
import threading
from typing import Optional, Union

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
from .errors import EmbedderClosedError, OptionsError
from .image import ImageLike, to_image
from .metadata import ModelMetadata
from .options import BaseOptions, ImageEmbedderOptions, ImageProcessingOptions, RunningMode
from .preprocess import Preprocessor

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
        self._last_video_ts: Optional[int] = None
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
        ts = _check_timestamp(timestamp_ms)
        with self._lock:
            if self._last_video_ts is not None and ts <= self._last_video_ts:
                raise OptionsError(
                    f"timestamp_ms: expected > {self._last_video_ts} (strictly increasing), got {ts}"
                )
            self._last_video_ts = ts
        return self._embed(image, image_processing_options, ts)

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
        """Release the interpreter. Idempotent."""
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

    def _embed(
        self,
        image: ImageLike,
        ipo: Optional[ImageProcessingOptions],
        timestamp_ms: Optional[int],
    ) -> ImageEmbedderResult:
        if ipo is not None and not isinstance(ipo, ImageProcessingOptions):
            raise OptionsError(
                f"image_processing_options: expected ImageProcessingOptions, got {type(ipo).__name__}"
            )
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


def _check_timestamp(ts: object) -> int:
    if isinstance(ts, bool) or not isinstance(ts, (int, np.integer)):
        raise OptionsError(f"timestamp_ms: expected an integer, got {ts!r}")
    return int(ts)
