"""CLIP text tokenization for exported CLIP text towers.

A CLIP text tower exported to ``.tflite`` / ``.onnx`` takes one int32
``[1, max_length]`` tensor of token ids. Its tokenizer travels inside the model
file as the bytes of a Hugging Face ``tokenizer.json`` plus a small
:class:`TokenizerConfig`; :class:`ClipTokenizer` turns text into exactly the ids
that ``transformers.CLIPTokenizerFast(text, padding="max_length",
truncation=True, max_length=77)`` gives for the same ``tokenizer.json``, with a
configurable pad id.

The ``tokenizers`` package (the ``text`` extra) is imported when a
:class:`ClipTokenizer` is built, never at import time of this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from ..errors import MetadataError, MissingDependencyError, OptionsError, TextInputError

__all__ = ["ClipTokenizer", "Encoding", "TokenizerConfig", "TextInputError", "TEXT_EXTRA_HINT", "check_text",
           "KNOWN_ENCODING_TEXTS", "known_encodings", "check_against_model"]

TEXT_EXTRA_HINT = "pip install 'edge-embedder[text]'"

# OpenAI CLIP's special ids (vocabulary of 49408: 49406 <|startoftext|>, 49407 <|endoftext|>).
_CLIP_BOS_ID = 49406
_CLIP_EOS_ID = 49407


@dataclass(frozen=True)
class TokenizerConfig:
    """How token ids are framed for the model; stored next to ``tokenizer.json``.

    Attributes:
      max_length: the model's sequence length (CLIP: 77). Every encoding has
        exactly this many ids; longer texts are truncated with EOS kept last.
      bos_id: id the tokenizer puts first (CLIP ``<|startoftext|>``, 49406).
      eos_id: id the tokenizer puts last (CLIP ``<|endoftext|>``, 49407).
      pad_id: id written after EOS up to ``max_length``. Hugging Face CLIP pads
        with EOS (49407). Checkpoints whose text config has
        ``eos_token_id == 2`` pool at ``argmax(input_ids)``, so they need a pad
        id lower than EOS (e.g. 0, as OpenAI's reference tokenizer pads);
        first-EOS pooling is indifferent to the pad id.
      lowercase: lowercase the text with ``str.lower()`` before the
        tokenizer's own normalizer runs. For ``tokenizer.json`` files whose
        normalizer does not lowercase; CLIP's does, so the default is False.

    Raises:
      OptionsError: a field has the wrong type or is out of range.
    """

    max_length: int = 77
    bos_id: int = _CLIP_BOS_ID
    eos_id: int = _CLIP_EOS_ID
    pad_id: int = _CLIP_EOS_ID
    lowercase: bool = False

    def __post_init__(self) -> None:
        for name in ("max_length", "bos_id", "eos_id", "pad_id"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise OptionsError(f"TokenizerConfig.{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 0:
                raise OptionsError(f"TokenizerConfig.{name} must be >= 0, got {value}")
            object.__setattr__(self, name, int(value))
        if self.max_length < 2:
            raise OptionsError(f"TokenizerConfig.max_length must be >= 2 (room for BOS and EOS), got {self.max_length}")
        if not isinstance(self.lowercase, (bool, np.bool_)):
            raise OptionsError(f"TokenizerConfig.lowercase must be a bool, got {type(self.lowercase).__name__}")
        object.__setattr__(self, "lowercase", bool(self.lowercase))


@dataclass(frozen=True, eq=False)
class Encoding:
    """One tokenized text.

    Attributes:
      ids: int32 array of shape ``[max_length]``: BOS, the text's tokens, EOS,
        then ``pad_id`` up to ``max_length``.
      length: number of ids before the padding (BOS and EOS included), so
        ``ids[length - 1]`` is the EOS.
      truncated: True when the text had more tokens than fit and was cut
        (EOS is still the last non-pad id).
    """

    ids: np.ndarray
    length: int
    truncated: bool


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDependencyError(
            f"CLIP text tokenization needs the 'tokenizers' package, which is not installed: {TEXT_EXTRA_HINT}"
        ) from exc
    return tokenizers


def check_text(text: Any, where: str = "text") -> str:
    """``text`` itself when it is a ``str`` of valid Unicode; else :class:`TextInputError`.

    A surrogate code point (U+D800..U+DFFF) cannot be tokenized: it is what
    Python makes of bytes that are not UTF-8 (``errors="surrogateescape"``: a
    command-line argument, a file name) or half of a UTF-16 pair. Such text is
    refused, not replaced: two different byte strings would otherwise become
    one text and one vector.
    """
    if not isinstance(text, str):
        raise TextInputError(f"{where} must be a str, got {type(text).__name__}")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        code = ord(bad)
        if 0xDC80 <= code <= 0xDCFF:
            why = (f"undecodable byte 0x{code - 0xDC00:02x} (bytes that are not UTF-8, decoded with "
                   "errors='surrogateescape': a command-line argument or file name in another encoding?)")
        elif 0xD800 <= code <= 0xDBFF and exc.start + 1 < len(text) and 0xDC00 <= ord(text[exc.start + 1]) <= 0xDFFF:
            why = ("half of a UTF-16 surrogate pair (join the pair first: "
                   "s.encode('utf-16', 'surrogatepass').decode('utf-16'))")
        else:
            why = "a lone surrogate: not a character"
        context = text[max(0, exc.start - 10) : exc.start + 10].encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise TextInputError(f"{where} is not valid Unicode text: U+{code:04X} at position {exc.start} is {why}; "
                             f"near {context!r}. Decode the bytes with their real encoding (or with errors='replace') "
                             "before embedding") from None
    return text


_check_text = check_text


class ClipTokenizer:
    """Tokenizer of a CLIP text tower, built from ``tokenizer.json`` bytes.

    Contract, checked once at construction:

    * ``tokenizer_json`` parses as a Hugging Face ``tokenizers`` file;
    * ``bos_id``, ``eos_id`` and ``pad_id`` are inside its vocabulary;
    * its post-processor frames text as ``[bos_id, ..., eos_id]`` (the empty
      string encodes to exactly ``[bos_id, eos_id]``).

    Every encoding then has ``config.max_length`` ids. Texts that are too long
    keep their first ``max_length - 2`` tokens between BOS and EOS, as
    ``CLIPTokenizerFast(..., truncation=True, max_length=...)`` does. Special
    token strings inside the text (``"<|endoftext|>"``) are matched as the
    special tokens, as transformers does by default.

    An instance can be shared by threads.
    """

    def __init__(self, tokenizer_json: Union[bytes, bytearray, memoryview, str], config: TokenizerConfig | None = None):
        """Builds the tokenizer.

        Args:
          tokenizer_json: the content of a ``tokenizer.json`` (bytes, or str).
          config: framing and padding; ``TokenizerConfig()`` (CLIP, 77) when None.

        Raises:
          MissingDependencyError: ``tokenizers`` is not installed (an ImportError).
          MetadataError: the bytes are not a tokenizer, or they disagree with ``config``.
          OptionsError: ``config`` is not a TokenizerConfig.
        """
        if config is None:
            config = TokenizerConfig()
        if not isinstance(config, TokenizerConfig):
            raise OptionsError(f"config must be a TokenizerConfig, got {type(config).__name__}")
        if isinstance(tokenizer_json, str):
            tokenizer_json = tokenizer_json.encode("utf-8")
        if not isinstance(tokenizer_json, (bytes, bytearray, memoryview)):
            raise MetadataError(f"tokenizer_json must be bytes or str, got {type(tokenizer_json).__name__}")
        tokenizers = _import_tokenizers()
        try:
            tok = tokenizers.Tokenizer.from_buffer(bytes(tokenizer_json))
        except Exception as exc:  # the Rust side raises a bare Exception
            raise MetadataError(f"tokenizer.json cannot be parsed: {exc}") from exc

        vocab_size = tok.get_vocab_size(with_added_tokens=True)
        ids = tok.get_vocab(with_added_tokens=True).values()
        max_id = max(ids, default=-1)
        if max_id >= 2**31:
            raise MetadataError(f"the tokenizer's ids go up to {max_id}: beyond the int32 token ids the runtime feeds "
                                "(at most 2147483647); the tokenizer.json is damaged or not a text model's")
        for name in ("bos_id", "eos_id", "pad_id"):
            value = getattr(config, name)
            if value >= vocab_size:
                raise MetadataError(f"{name} {value} is outside the tokenizer's vocabulary of {vocab_size}")
        tok.no_truncation()
        tok.no_padding()
        framing = tok.encode("").ids
        if framing != [config.bos_id, config.eos_id]:
            raise MetadataError(
                f"the tokenizer frames the empty text as {framing}, expected [bos_id, eos_id] = "
                f"[{config.bos_id}, {config.eos_id}]"
            )
        tok.enable_truncation(max_length=config.max_length)
        tok.enable_padding(direction="right", pad_id=config.pad_id, pad_token=tok.id_to_token(config.pad_id),
                           length=config.max_length)
        self._tok = tok
        self._config = config
        self._vocab_size = vocab_size
        self._max_id = max(max_id, config.pad_id)

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], config: TokenizerConfig | None = None) -> "ClipTokenizer":
        """Builds the tokenizer from a ``tokenizer.json`` file (see ``__init__``)."""
        with open(path, "rb") as f:
            return cls(f.read(), config)

    @property
    def config(self) -> TokenizerConfig:
        return self._config

    @property
    def vocab_size(self) -> int:
        """Vocabulary size, special tokens included (CLIP: 49408)."""
        return self._vocab_size

    @property
    def max_id(self) -> int:
        """The largest id an encoding can hold (CLIP: 49407): the model's token table needs more rows than that."""
        return self._max_id

    def encode(self, text: str) -> Encoding:
        """Tokenizes one text.

        Args:
          text: any ``str``; the empty string gives ``[bos, eos, pad...]``.

        Returns:
          An :class:`Encoding` with ``config.max_length`` int32 ids.

        Raises:
          TextInputError: ``text`` is not a str, or not valid Unicode (a lone
            surrogate: see :func:`check_text`).
        """
        text = _check_text(text, "text")
        if self._config.lowercase:
            text = text.lower()
        return self._to_encoding(self._tok.encode(text))

    def encode_batch(self, texts: Sequence[str]) -> list[Encoding]:
        """Tokenizes several texts; the same as ``[encode(t) for t in texts]``.

        Args:
          texts: a sequence (list, tuple...) of ``str``; not a single str.

        Returns:
          One :class:`Encoding` per text, in order.

        Raises:
          TextInputError: ``texts`` is a str, or not iterable, or holds a non-str
            or a str that is not valid Unicode.
        """
        if isinstance(texts, (str, bytes)):
            raise TextInputError(f"texts must be a sequence of str, got a single {type(texts).__name__}; use encode()")
        if not isinstance(texts, Iterable):
            raise TextInputError(f"texts must be a sequence of str, got {type(texts).__name__}")
        batch = [_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
        if self._config.lowercase:
            batch = [t.lower() for t in batch]
        if not batch:
            return []
        return [self._to_encoding(e) for e in self._tok.encode_batch(batch)]

    def _to_encoding(self, enc: Any) -> Encoding:
        return Encoding(
            ids=np.asarray(enc.ids, dtype=np.int32),
            length=int(sum(enc.attention_mask)),
            truncated=bool(enc.overflowing),
        )

    def __repr__(self) -> str:
        c = self._config
        return (f"ClipTokenizer(vocab_size={self._vocab_size}, max_length={c.max_length}, bos_id={c.bos_id}, "
                f"eos_id={c.eos_id}, pad_id={c.pad_id}, lowercase={c.lowercase})")


#: Texts whose ids the converters record in the tokenizer entry (``known_encodings``) and the runtime
#: re-encodes when it opens the file: merges, case and whitespace folding, punctuation, digits,
#: accents, CJK and emoji (byte-level fallback). A tokenizer.json that is not the one the model
#: was trained with (other merges, an empty merge list, another normalizer) encodes them differently.
KNOWN_ENCODING_TEXTS = (
    "a photo of a cat",
    "A Photo  OF\tTwo Dogs, running!",
    "naïve café: 東京の猫 🐱",
    "edge_embedder-2024 #checks 3.14% (x2)",
    "photosynthesis internationalization",
)


def known_encodings(tokenizer: "ClipTokenizer", texts: Sequence[str] = KNOWN_ENCODING_TEXTS) -> list[list[Any]]:
    """``[[text, ids]]`` of ``texts`` (ids up to EOS, no padding), as the converters record them."""
    return [[t, e.ids[: e.length].tolist()] for t, e in zip(texts, tokenizer.encode_batch(list(texts)))]


def check_against_model(tokenizer: "ClipTokenizer", entry: Any, input_dtype: Any,
                        run: Any, source: str = "the model") -> None:
    """What can be checked at load time that the tokenizer fits the model it is packed with.

    * the ids it can produce fit the model's input type;
    * the ``known_encodings`` the converter recorded (``[[text, ids]]`` in the
      tokenizer entry) come out the same: another tokenizer.json (other merges,
      an empty merge list, another normalizer) encodes them differently;
    * the model accepts the largest id the tokenizer can produce: ``run(ids)``
      invokes it once with ``[bos, max_id, eos, pad...]``; a token table with
      fewer rows fails there (LiteRT and ONNX Runtime check their gather indices).

    Raises:
      MetadataError: one of them does not hold (the message says which and how).
    """
    import numpy as np

    dtype = np.dtype(input_dtype)
    if tokenizer.max_id > np.iinfo(dtype).max:
        raise MetadataError(f"{source}: the tokenizer's ids go up to {tokenizer.max_id}, beyond the model's {dtype} input")
    recorded = entry.get("known_encodings") if isinstance(entry, dict) else None
    if recorded is not None:
        if not isinstance(recorded, list) or not all(
                isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and isinstance(r[1], list)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in r[1]) for r in recorded):
            raise MetadataError(f"{source}: tokenizer entry 'known_encodings': expected [[text, [ids]], ...], got "
                                f"{str(recorded)[:80]}")
        for text, ids in recorded:
            got = known_encodings(tokenizer, [text])[0][1]
            if got != ids:
                raise MetadataError(
                    f"{source}: the packed tokenizer does not encode {text!r} as the model was converted with: got "
                    f"{got[:12]}{'...' if len(got) > 12 else ''}, recorded {ids[:12]}{'...' if len(ids) > 12 else ''} "
                    "(another tokenizer.json: other merges or normalizer); the file was edited or damaged")
    c = tokenizer.config
    probe = np.full(c.max_length, c.pad_id, dtype)
    probe[:3] = (c.bos_id, tokenizer.max_id, c.eos_id)
    try:
        run(probe)
    except Exception as exc:  # the interpreter's own error (LiteRT RuntimeError, ONNX Runtime's types)
        from ..errors import EdgeEmbedderError, first_line

        if isinstance(exc, EdgeEmbedderError):
            raise
        raise MetadataError(
            f"{source}: the model refuses token id {tokenizer.max_id}, which its tokenizer can produce (its token "
            f"table is smaller than the tokenizer's vocabulary of {tokenizer.vocab_size}): {first_line(exc)}") from None
