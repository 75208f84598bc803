"""``ImageEmbedder``: a thin task on the shared vision core (MediaPipe Tasks' API)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import numpy as np

from ..containers import BatchItem, Embedding, EmbeddingResult, VectorLike, head_embeddings
from ..containers import cosine_similarity as _cosine_similarity
from ..core.base_options import BaseOptions
from ..core.contract import check_image_embedder
from ..core.running_mode import RunningMode, check_running_mode_options
from ..core.task import open_model
from ..errors import OptionsError
from .image import DEFAULT_MAX_IMAGE_PIXELS, ImageLike
from .processing_options import ImageProcessingOptions, check_pixel_budget
from .vision_task import VisionTask

__all__ = ["ImageEmbedder", "ImageEmbedderOptions"]


@dataclass(frozen=True)
class ImageEmbedderOptions:
    """Options of :class:`ImageEmbedder`.

    Attributes:
      base_options: the model and how to run it.
      running_mode: IMAGE (``embed``), VIDEO (``embed_for_video``) or
        LIVE_STREAM (``embed_async`` + ``result_callback``).
      l2_normalize: L2-normalize each embedding (as MediaPipe does it).
      quantize: scalar-quantize each embedding to int8 (after L2 when both;
        without L2, values beyond +-127/128 saturate at the int8 limits).
      result_callback: ``f(result, image, timestamp_ms)``; LIVE_STREAM only.
      max_image_pixels: the pixel budget of image *files* (width x height),
        checked from the header before decoding; a larger file is an
        ``ImageDecodeError`` naming its size and the limit. None: no budget.
        With shrink-on-load it bounds the reduced decode.
      shrink_on_load: decode JPEG *files* at the smallest DCT scale the
        model's recipe still needs (several times faster on phone photos,
        a fraction of the memory). It changes pixels, so it is off by default
        (``embed()`` on a path then equals MediaPipe's pixels); recipes that
        cannot stay within cosine 0.99 of the full decode (the MediaPipe
        recipe) decode fully anyway (see ``decode_tag()``).
    """

    base_options: BaseOptions
    running_mode: RunningMode = RunningMode.IMAGE
    l2_normalize: bool = False
    quantize: bool = False
    result_callback: Optional[Callable[..., Any]] = None
    max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS
    shrink_on_load: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base_options, BaseOptions):
            raise OptionsError(f"base_options: expected BaseOptions, got {type(self.base_options).__name__}")
        for name in ("l2_normalize", "quantize", "shrink_on_load"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(f"{name}: expected bool, got {getattr(self, name)!r}")
        check_running_mode_options(self.running_mode, self.result_callback)
        check_pixel_budget(self.max_image_pixels)


class ImageEmbedder(VisionTask):
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

    def __init__(self, options: ImageEmbedderOptions, backend: Any, spec: Any) -> None:
        # Internal: use create_from_model_path / create_from_options.
        super().__init__(backend, spec, options.running_mode, options.result_callback, options.max_image_pixels,
                         options.shrink_on_load)
        self._options = options

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
        backend, spec = open_model(options.base_options, check_image_embedder)
        return cls(options, backend, spec)

    # -- properties ------------------------------------------------------------
    @property
    def options(self) -> ImageEmbedderOptions:
        return self._options

    # -- embedding -------------------------------------------------------------
    def embed(
        self,
        image: ImageLike,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> EmbeddingResult:
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
        return self._image_mode("embed", image, image_processing_options)

    def embed_for_video(
        self,
        image: ImageLike,
        timestamp_ms: int,
        image_processing_options: Optional[ImageProcessingOptions] = None,
    ) -> EmbeddingResult:
        """Embed one video frame (VIDEO running mode).

        Raises:
          OptionsError (a ValueError): timestamps not strictly increasing, or
            the embedder is not in VIDEO mode.
        """
        return self._video_mode("embed_for_video", image, timestamp_ms, image_processing_options)

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
        self._live_mode("embed_async", image, timestamp_ms, image_processing_options)

    def embed_batch(
        self,
        images: Iterable[ImageLike],
        image_processing_options: Optional[ImageProcessingOptions] = None,
        *,
        batch_size: int = 8,
    ) -> list[EmbeddingResult]:
        """Embed many images; results in input order, equal to one-by-one ``embed``.

        Decoding runs on background threads while the model runs, and models
        with a dynamic batch axis (ONNX) run real batches of ``batch_size``.

        Raises:
          ImageError: the first image that cannot be used (its index and
            source in the message). Use :meth:`iter_embed` to skip bad images.
        """
        out: list[EmbeddingResult] = []
        items = self.iter_embed(images, image_processing_options, batch_size=batch_size,
                                shrink_on_load=self._options.shrink_on_load)
        for item in items:
            if item.error is not None:
                raise type(item.error)(f"image {item.index} ({item.source}): {item.error}") from None
            if item.result is not None:
                out.append(item.result)
        return out

    def iter_embed(
        self,
        images: Iterable[ImageLike],
        image_processing_options: Optional[ImageProcessingOptions] = None,
        *,
        batch_size: int = 8,
        decode_workers: int = 2,
        shrink_on_load: bool = True,
    ) -> Iterator[BatchItem[EmbeddingResult]]:
        """Yield a :class:`BatchItem` per image, in input order, never raising for a bad image.

        A bad image (corrupt, truncated, unsupported) gives an item whose
        ``error`` is set; the good ones are all embedded. Image *files* are
        decoded on ``decode_workers`` threads, with shrink-on-load by default
        (a folder of phone photos is decode-bound; see
        ``ImageEmbedderOptions.shrink_on_load``): pass ``shrink_on_load=False``
        for the pixels ``embed()`` uses by default.
        """
        return self._iter("iter_embed", images, image_processing_options, batch_size, decode_workers,
                          shrink_on_load)

    @staticmethod
    def cosine_similarity(u: VectorLike, v: VectorLike) -> float:
        """Cosine similarity of two embeddings (both float or both quantized).

        Raises:
          EmbeddingMismatchError (a ValueError): mixed kinds, different sizes,
            empty or zero-norm vectors.
        """
        return _cosine_similarity(u, v)

    def __repr__(self) -> str:
        s = self._spec
        state = "closed" if self._backend is None else self._backend.runtime
        return (
            f"ImageEmbedder({s.width}x{s.height} {s.input_dtype}, heads="
            f"{[o.name or o.index for o in s.outputs]}, {state})"
        )

    # -- the task's own part -----------------------------------------------------------
    def _postprocess(self, raw: list[np.ndarray]) -> list[Embedding]:
        return head_embeddings(raw, self._spec.outputs, self._options.l2_normalize, self._options.quantize)

    def _result(self, payload: list[Embedding], timestamp_ms: Optional[int]) -> EmbeddingResult:
        return EmbeddingResult(payload, timestamp_ms)
