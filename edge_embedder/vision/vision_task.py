"""What every vision task shares: image -> preprocessing -> backend, in every running mode.

:class:`VisionTask` adds to :class:`~edge_embedder.core.task.BaseTask` the
path of one image (decode once, ROI / rotation / resize / normalize straight
into the backend's input buffer, in the layout the backend declares), the
three running modes over that path, and batch iteration with decoding on
background threads. A subclass (``ImageEmbedder``, ``ImageClassifier``)
defines only :meth:`VisionTask._postprocess` and :meth:`VisionTask._result`,
and names its public methods.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import numpy as np

from ..containers import BatchItem
from ..core.contract import ModelSpec
from ..core.running_mode import RunningMode
from ..core.task import BaseTask, interpreter_errors
from ..core.timing import Timings
from ..errors import ImageError, ModelOutputError, OptionsError
from .image import DEFAULT_MAX_IMAGE_PIXELS, Image, ImageLike, to_image
from .preprocess import Preprocessor, ReducedDecode
from .processing_options import ImageProcessingOptions, check_processing_options
from .shrink import decode_for_model, decode_tag, recommended_safety, target_hw_for

#: Decoded pixels, and how they were reduced (None: full resolution).
_Pixels = tuple[np.ndarray, Optional[ReducedDecode]]

__all__ = ["VisionTask"]


class VisionTask(BaseTask[ModelSpec]):
    """Shared base of the vision tasks (see the module docstring). Not used directly."""

    def __init__(
        self,
        backend: Any,
        spec: ModelSpec,
        running_mode: RunningMode,
        result_callback: Optional[Callable[..., Any]] = None,
        max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
        shrink_on_load: bool = False,
    ) -> None:
        super().__init__(backend, spec, running_mode, result_callback)
        self._pre = Preprocessor(spec.height, spec.width, spec.recipe, spec.normalization, layout=spec.layout)
        self._max_pixels = max_image_pixels
        self._shrink = shrink_on_load
        # None: this recipe decodes fully even when shrink-on-load is asked for (it cannot meet the
        # accuracy floor reduced: the MediaPipe recipe; see .shrink).
        self._shrink_safety = recommended_safety(spec.recipe, exact=True)
        self._shrink_target = target_hw_for(spec.height, spec.width, spec.recipe)

    def decode_tag(self, shrink_on_load: Optional[bool] = None) -> str:
        """How image files are decoded (``"full"``, or the shrink-on-load recipe and its safety factor).

        Output files record it, and a resumed run refuses to mix two decodes.
        ``shrink_on_load`` None: the task's own option.
        """
        shrink = self._shrink if shrink_on_load is None else shrink_on_load
        return decode_tag(self._shrink_safety if shrink else None, exact=True)

    # -- what a subclass defines ----------------------------------------------------------
    def _postprocess(self, raw: list[np.ndarray]) -> Any:  # pragma: no cover - abstract
        """The model's raw outputs (batch 1) -> the task's payload (embeddings, classifications)."""
        raise NotImplementedError

    def _result(self, payload: Any, timestamp_ms: Optional[int]) -> Any:  # pragma: no cover - abstract
        """The payload -> the task's result object."""
        raise NotImplementedError

    # -- the three running modes -------------------------------------------------------------
    def _image_mode(self, method: str, image: ImageLike, ipo: Optional[ImageProcessingOptions]) -> Any:
        self._check_mode(RunningMode.IMAGE, method)
        return self._process(image, ipo, None)

    def _video_mode(self, method: str, image: ImageLike, timestamp_ms: int,
                    ipo: Optional[ImageProcessingOptions]) -> Any:
        self._check_mode(RunningMode.VIDEO, method)
        check_processing_options(ipo)
        ts = self._next_timestamp(timestamp_ms)
        return self._process(image, ipo, ts)

    def _live_mode(self, method: str, image: ImageLike, timestamp_ms: int,
                   ipo: Optional[ImageProcessingOptions]) -> None:
        self._check_mode(RunningMode.LIVE_STREAM, method)
        check_processing_options(ipo)
        self._require_open()
        ts = self._next_timestamp(timestamp_ms)
        # The caller may reuse its buffer as soon as we return: keep a copy.
        if isinstance(image, np.ndarray):
            image = Image.create_from_array(np.array(image, copy=True))
        elif isinstance(image, Image):
            image = Image.create_from_array(np.array(image.numpy_view(), copy=True))
        self._submit_live((image, ipo, ts), image, ts)

    def _process_live_frame(self, frame: Any) -> Any:
        image, ipo, ts = frame
        return self._process(image, ipo, ts)

    # -- one image -----------------------------------------------------------------------------
    def _process(self, image: ImageLike, ipo: Optional[ImageProcessingOptions], timestamp_ms: Optional[int]) -> Any:
        check_processing_options(ipo)
        self._require_open()
        pixels, reduced = self._load(image, ipo, self._shrink)
        return self._result(self._infer(pixels, ipo, reduced), timestamp_ms)

    def _load(self, image: ImageLike, ipo: Optional[ImageProcessingOptions], shrink: bool) -> _Pixels:
        """The pixels of ``image``, decoded reduced when ``shrink`` and the recipe allow (JPEG files)."""
        if shrink and self._shrink_safety is not None and isinstance(image, (str, os.PathLike, bytes)):
            roi = ipo.region_of_interest if ipo is not None else None
            rotation = ipo.rotation_degrees if ipo is not None else 0
            pixels, info = decode_for_model(image, self._shrink_target, roi, rotation, safety=self._shrink_safety,
                                            max_pixels=self._max_pixels)
            return pixels, (info if info.shrunk else None)
        return to_image(image, max_pixels=self._max_pixels).numpy_view(), None

    def _infer(self, pixels: np.ndarray, ipo: Optional[ImageProcessingOptions],
               reduced: Optional[ReducedDecode] = None) -> Any:
        pre = self._pre
        return self._run_timed(lambda buf: pre.write(pixels, ipo, buf, reduced), self._postprocess)

    # -- many images ---------------------------------------------------------------------------
    def _iter(
        self,
        method: str,
        images: Iterable[ImageLike],
        ipo: Optional[ImageProcessingOptions],
        batch_size: int,
        decode_workers: int,
        shrink_on_load: bool = False,
    ) -> Iterator[BatchItem[Any]]:
        """A :class:`BatchItem` per image, in input order; a bad image is an item with ``error`` set.

        So is an image whose outputs the model made NaN or infinite (:class:`ModelOutputError`).
        """
        self._check_mode(RunningMode.IMAGE, method)
        check_processing_options(ipo)
        for name, value in (("batch_size", batch_size), ("decode_workers", decode_workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionsError(f"{name}: expected an integer >= 1, got {value!r}")
        backend = self._require_open()
        batched = backend.dynamic_batch and batch_size > 1
        group: list[tuple[int, object, _Pixels]] = []

        def load(src: ImageLike) -> _Pixels:
            return self._load(src, ipo, shrink_on_load)

        for index, source, decoded in _decode_ahead(images, decode_workers, load):
            if isinstance(decoded, ImageError):
                if group:
                    yield from self._run_group(group, ipo)
                    group = []
                yield BatchItem(index, describe_source(source), None, decoded)
                continue
            if not batched:
                try:
                    payload = self._infer(decoded[0], ipo, decoded[1])
                except (ImageError, ModelOutputError) as exc:
                    yield BatchItem(index, describe_source(source), None, exc)
                    continue
                yield BatchItem(index, describe_source(source), self._result(payload, None), None)
                continue
            group.append((index, source, decoded))
            if len(group) == batch_size:
                yield from self._run_group(group, ipo)
                group = []
        if group:
            yield from self._run_group(group, ipo)

    def _run_group(self, group: list[tuple[int, object, _Pixels]],
                   ipo: Optional[ImageProcessingOptions]) -> Iterator[BatchItem[Any]]:
        """One real batch through a dynamic-batch backend."""
        t0 = time.perf_counter_ns()
        backend = self._require_open()
        shape = backend.input_specs[0].shape
        batch = np.empty((len(group), *shape[1:]), self._spec.input_dtype)
        for i, (_, _, (pixels, reduced)) in enumerate(group):
            self._pre.write(pixels, ipo, batch[i : i + 1], reduced)
        t1 = time.perf_counter_ns()
        try:
            with self._lock, interpreter_errors():
                outputs = self._require_open().run_batch(batch)
        except ModelOutputError as exc:  # the interpreter failed on the batch: every image of it is reported
            for index, source, _ in group:
                yield BatchItem(index, describe_source(source), None, exc)
            return
        t2 = time.perf_counter_ns()
        items: list[BatchItem[Any]] = []
        for i, (index, source, _) in enumerate(group):
            try:
                payload = self._postprocess([o[i : i + 1] for o in outputs])
            except ModelOutputError as exc:
                items.append(BatchItem(index, describe_source(source), None, exc))
                continue
            items.append(BatchItem(index, describe_source(source), self._result(payload, None), None))
        self._last_timings = Timings(t1 - t0, t2 - t1, time.perf_counter_ns() - t2)
        yield from items


def describe_source(source: object) -> str:
    """How a batch item names its input: the path, or ``<ndarray>`` etc. for in-memory inputs."""
    if isinstance(source, (str, os.PathLike)):
        return str(os.fspath(source))
    if isinstance(source, Image) and source.source:
        return source.source
    return f"<{type(source).__name__}>"


def _decode_ahead(images: Iterable[ImageLike], workers: int,
                  load: Callable[[ImageLike], _Pixels]) -> Iterator[tuple[int, object, Union[_Pixels, ImageError]]]:
    """Decode images with ``load`` on ``workers`` threads, a bounded window ahead, yielding in order.

    Pillow releases the GIL while it decodes, so decoding overlaps inference.
    """

    def decode(src: ImageLike) -> Union[_Pixels, ImageError]:
        try:
            return load(src)
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
