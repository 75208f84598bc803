"""``TextEmbedder``: a thin task on the shared core (MediaPipe Tasks' API) for CLIP text towers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

import numpy as np

from ..containers import Embedding, TextEmbedderResult, VectorLike, head_embeddings
from ..containers import cosine_similarity as _cosine_similarity
from ..core.base_options import BaseOptions
from ..core.contract import TextModelSpec, check_text_embedder
from ..core.running_mode import RunningMode
from ..core.task import BaseTask, open_model
from ..core.timing import Timings
from ..errors import OptionsError, TextInputError
from .shapes import plan_calls
from .tokenizer import ClipTokenizer, Encoding, TokenizerConfig

__all__ = ["TextEmbedder", "TextEmbedderOptions"]


@dataclass(frozen=True)
class TextEmbedderOptions:
    """Options of :class:`TextEmbedder`.

    Attributes:
      base_options: the model and how to run it.
      l2_normalize: L2-normalize each embedding (as MediaPipe does it).
      quantize: scalar-quantize each embedding to int8 (after L2 when both).
    """

    base_options: BaseOptions
    l2_normalize: bool = False
    quantize: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base_options, BaseOptions):
            raise OptionsError(f"base_options: expected BaseOptions, got {type(self.base_options).__name__}")
        for name in ("l2_normalize", "quantize"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(f"{name}: expected bool, got {getattr(self, name)!r}")


class TextEmbedder(BaseTask[TextModelSpec]):
    """Embeds texts with a ``.tflite`` (or ``.onnx``) text-embedding model (a CLIP or SigLIP text tower).

    The model contract, checked once when the embedder is created:

    * one input tensor of token ids, int32 or int64, shape ``[1, L]``;
    * one or more outputs, float32 (or uint8 with quantization parameters),
      shape ``[1, N]``; each output is one embedding head;
    * the tokenizer inside the file: the custom metadata entry
      ``edge_embedder.tokenizer`` (``max_length`` = L, ``bos_id`` (or null),
      ``eos_id``, ``pad_id``, ``lowercase``, optionally ``eos_if_absent`` and
      ``padding``) and the ``tokenizer.json`` it names, packed as an
      associated file (TFLite) or a ``metadata_props`` entry (ONNX);
    * the tokenizer fits the model, checked when the file is opened: the
      model accepts the largest id the tokenizer can produce (one probe
      invoke), and the encodings recorded at conversion time
      (``known_encodings``) come out the same; else ``MetadataError``.

    Every text is tokenized as transformers' ``CLIPTokenizerFast(text,
    padding="max_length", truncation=True, max_length=L)`` makes it (with the
    file's pad id): start-of-text, the text's tokens, end-of-text, padding
    (SigLIP: ``SiglipTokenizer``'s ids, no start-of-text). Texts longer than L
    ids are cut, keeping end-of-text last, and the result says so
    (``truncated``). No attention mask is fed. CLIP's text transformer is
    causal and pools at the end-of-text token, so the padding after it does
    not change the vector, and a text runs at the shortest length the file
    offers that holds its ids (``model_spec.shapes``: the signatures of a
    ``.tflite``, any length with an ONNX dynamic sequence axis; files with one
    fixed length run at L), see :mod:`edge_embedder.text.shapes`. SigLIP's is
    not causal and was trained on text padded to L with the pad id, without a
    mask (tokenizer entry ``padding: "max_length"``): every text runs at L.

    A model that breaks a rule raises a subclass of
    :class:`~edge_embedder.errors.ModelContractError` (or
    :class:`~edge_embedder.errors.MetadataError` for a missing or bad
    tokenizer) naming the expected and the actual value. Tokenizing needs the
    ``tokenizers`` package: without it, creating an embedder raises
    :class:`~edge_embedder.errors.MissingDependencyError` naming the ``text`` extra.

    Example::

        with TextEmbedder.create_from_model_path("clip_text.tflite") as e:
            a = e.embed("a photo of a cat").embeddings[0]
            b = e.embed("a photo of a dog").embeddings[0]
            print(TextEmbedder.cosine_similarity(a, b))

    One embedder may be shared by threads: calls into the interpreter are
    serialised by a lock, so results equal serial use.
    """

    def __init__(self, options: TextEmbedderOptions, backend: Any, spec: TextModelSpec, tokenizer: ClipTokenizer) -> None:
        # Internal: use create_from_model_path / create_from_options.
        super().__init__(backend, spec, RunningMode.IMAGE)
        self._options = options
        self._tokenizer = tokenizer
        self._shapes = spec.shapes

    # -- construction ----------------------------------------------------------
    @classmethod
    def create_from_model_path(cls, model_path: Union[str, "os.PathLike[str]"]) -> "TextEmbedder":
        """Create an embedder with default options.

        Raises:
          ModelLoadError: the file is missing or not a model.
          ModelContractError, MetadataError: the model breaks the contract (no tokenizer, wrong input...).
          BackendUnavailableError: no runtime for the model is installed.
          MissingDependencyError: the ``tokenizers`` package (the ``text`` extra) is not installed.
        """
        return cls.create_from_options(TextEmbedderOptions(base_options=BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls, options: TextEmbedderOptions) -> "TextEmbedder":
        """Create an embedder from :class:`TextEmbedderOptions`.

        Raises:
          OptionsError, ModelLoadError, ModelContractError, MetadataError, BackendUnavailableError,
          MissingDependencyError.
        """
        if not isinstance(options, TextEmbedderOptions):
            raise OptionsError(f"options: expected TextEmbedderOptions, got {type(options).__name__}")
        backend, spec = open_model(options.base_options, check_text_embedder)
        try:
            tokenizer = _tokenizer(spec)
            _check_fit(tokenizer, spec, backend, options.base_options)
        except BaseException:
            backend.close()
            raise
        return cls(options, backend, spec, tokenizer)

    # -- properties ------------------------------------------------------------
    @property
    def options(self) -> TextEmbedderOptions:
        return self._options

    @property
    def tokenizer(self) -> ClipTokenizer:
        """The tokenizer built from the file's own ``tokenizer.json`` and framing."""
        return self._tokenizer

    # -- embedding -------------------------------------------------------------
    def embed(self, text: str) -> TextEmbedderResult:
        """Embed one text.

        Args:
          text: any ``str``; the empty string is embedded as start + end of text.

        Returns:
          A :class:`TextEmbedderResult`: one :class:`Embedding` per model
          output, and whether the text was truncated to the model's length.

        Raises:
          TextInputError: ``text`` is not a str (a TypeError).
          EmbedderClosedError: after ``close()``.
        """
        self._require_open()
        t0 = time.perf_counter_ns()
        enc = self._tokenizer.encode(text)
        return self._embed_one(enc, time.perf_counter_ns() - t0)

    def embed_batch(self, texts: Iterable[str], *, batch_size: int = 8) -> list[TextEmbedderResult]:
        """Embed many texts; results in input order, equal to one-by-one :meth:`embed`.

        Texts run up to ``batch_size`` per call where the file allows it: a
        dynamic batch axis (ONNX) or batch signatures (``.tflite`` files
        converted by edge_embedder), each call at the shortest length that holds
        its texts (:func:`edge_embedder.text.shapes.plan_calls`); otherwise one
        text per call, each at its own length.

        Raises:
          TextInputError: ``texts`` is a single str, or holds something that is not a str.
          OptionsError: ``batch_size`` is not an integer >= 1.
          EmbedderClosedError: after ``close()``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise OptionsError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if isinstance(texts, (str, bytes)):
            raise TextInputError(f"texts must be a sequence of str, got a single {type(texts).__name__}; use embed()")
        texts = list(texts) if isinstance(texts, Iterable) else texts
        self._require_open()
        t0 = time.perf_counter_ns()
        encodings = self._tokenizer.encode_batch(texts)  # every text is checked before any is embedded
        tokenize_ns = time.perf_counter_ns() - t0
        calls = plan_calls([e.length for e in encodings], self._shapes, batch_size)
        out: list[Optional[TextEmbedderResult]] = [None] * len(encodings)
        for k, call in enumerate(calls):
            group = [encodings[i] for i in call.rows]
            outputs = self._run_ids(self._ids(group, call.shape), tokenize_ns if k == 0 else 0)
            for row, (i, e) in enumerate(zip(call.rows, group)):
                out[i] = self._result([o[row : row + 1] for o in outputs], e)
        return [r for r in out if r is not None]

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
            f"TextEmbedder([1, {s.sequence_length}] {s.input_dtype}, lengths={self._shapes.describe()['lengths']}, heads="
            f"{[o.name or o.index for o in s.outputs]}, {state})"
        )

    # -- the task's own part -----------------------------------------------------------
    def _embed_one(self, enc: Encoding, tokenize_ns: int) -> TextEmbedderResult:
        (call,) = plan_calls([enc.length], self._shapes)
        raw = self._run_ids(self._ids([enc], call.shape), tokenize_ns)
        t0 = time.perf_counter_ns()
        result = self._result(raw, enc)
        t = self._last_timings
        if t is not None:
            self._last_timings = Timings(t.preprocess_ns, t.inference_ns, time.perf_counter_ns() - t0)
        return result

    def _ids(self, group: list[Encoding], shape: tuple[int, int]) -> np.ndarray:
        """The ``shape`` id array of ``group`` (each cut after its padding; padding rows repeat the first text)."""
        batch, length = shape
        x = np.empty(shape, self._spec.input_dtype)
        for row in range(batch):
            x[row] = group[min(row, len(group) - 1)].ids[:length]
        return x

    def _run_ids(self, x: np.ndarray, tokenize_ns: int) -> list[np.ndarray]:
        """Run one id array under the lock; record :class:`Timings` (tokenizing counts as preprocessing)."""
        with self._lock:
            backend = self._require_open()
            t0 = time.perf_counter_ns()
            raw = backend.run_input(x)
            t1 = time.perf_counter_ns()
        self._last_timings = Timings(tokenize_ns, t1 - t0, 0)
        return raw

    def _embeddings(self, raw: list[np.ndarray]) -> list[Embedding]:
        return head_embeddings(raw, self._spec.outputs, self._options.l2_normalize, self._options.quantize)

    def _result(self, raw: list[np.ndarray], enc: Encoding) -> TextEmbedderResult:
        return TextEmbedderResult(self._embeddings(raw), None, truncated=enc.truncated, token_count=enc.length)


def _check_fit(tokenizer: ClipTokenizer, spec: TextModelSpec, backend: Any, base: BaseOptions) -> None:
    """The load-time checks that the packed tokenizer fits the model (``tokenizer.check_against_model``)."""
    from ..metadata import TOKENIZER_KEY
    from .tokenizer import check_against_model

    def run(ids: np.ndarray) -> None:
        length = spec.sequence_length  # [1, L] is offered by every text file (the contract checks it)
        x = np.full((1, length), ids[-1], spec.input_dtype)
        n = min(length, ids.size)  # whatever the input's length: the probe's ids come first
        x[0, :n] = ids[:n]
        backend.run_input(x)

    entry = spec.metadata.custom_json(TOKENIZER_KEY) if spec.metadata is not None else None
    source = str(base.model_asset_path) if base.model_asset_path is not None else "<model_asset_buffer>"
    check_against_model(tokenizer, entry, spec.input_dtype, run, source)


def _tokenizer(spec: TextModelSpec) -> ClipTokenizer:
    """The file's tokenizer (``tokenizers`` imported here); its framing must agree with the file's entry."""
    t = spec.tokenizer
    try:
        config = TokenizerConfig(max_length=t.max_length, bos_id=t.bos_id, eos_id=t.eos_id, pad_id=t.pad_id,
                                 lowercase=t.lowercase, eos_if_absent=t.eos_if_absent)
    except OptionsError as exc:  # the contract checked types; this is a value the tokenizer refuses
        from ..errors import MetadataError

        raise MetadataError(f"tokenizer entry: {exc}") from None
    return ClipTokenizer(spec.tokenizer_json, config)
