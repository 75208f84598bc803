"""SigLIP's SentencePiece tokenizer as a ``tokenizers`` file, so that the runtime needs no ``sentencepiece``.

transformers' ``SiglipTokenizer`` is the slow, SentencePiece-backed kind and
has no converter to a ``tokenizer.json``. :func:`siglip_tokenizer_json` builds
one from the checkpoint's ``spiece.model`` (its pieces and scores, read with the
``sentencepiece`` package's protobuf module, at conversion time only) that gives
``SiglipTokenizer``'s ids. What the slow tokenizer does to a text, and the
``tokenizers`` step that does the same here:

1. special-token strings in the text (``</s>``, ``<unk>``) become their ids,
   the whitespace around them dropped: added tokens with ``lstrip`` / ``rstrip``;
2. ``"▁" + text`` (with any ``▁`` in the text made a space) is
   ``canonicalize_text``-ed: lowercased (Python's ``str.lower``, final sigma
   included: a ``Replace`` of the final capital sigma, then ``Lowercase``),
   ASCII punctuation (``string.punctuation``) removed, every run of Python
   ``\\s`` whitespace made one space, stripped: ``Replace`` steps with the exact
   character classes, computed here from Python's own definitions;
3. SentencePiece normalizes (``nmt_nfkc``: the model's own
   ``precompiled_charsmap``, a ``Precompiled`` step), removes extra spaces
   and prefixes the text with ``▁`` (the leading ``▁`` of step 2; ``Metaspace``
   with ``prepend_scheme="first"``; a leading run of characters that steps 2-3
   delete is replaced by one space, so that the prefix survives them);
4. the unigram model segments the text (Viterbi over the pieces' scores,
   consecutive unknown characters fused into one ``<unk>``: ``Unigram``);
5. ``</s>`` is appended (``TemplateProcessing``); the slow tokenizer does not
   append it when the text's own ids already end with it: the runtime's
   framing flag ``eos_if_absent`` does that part.

``tests/test_siglip_tokenizer.py`` compares the ids with ``SiglipTokenizer``'s
on a corpus (punctuation, capitals, digits, whitespace, accents, CJK, Greek,
Cyrillic, emoji, special-token strings) and on random strings. Known
differences, none in ordinary text: (a) a character that Unicode
normalization changes (a full-width letter, a ligature) directly followed by
a combining mark: ``tokenizers``' ``Precompiled`` step drops the mark,
SentencePiece keeps it; (b) after a special-token string inside the text, the
slow tokenizer encodes ``"<unk>" + rest`` and drops the first pieces, which
can cut differently; (c) long runs of one repeated pattern whose segmentations
score the same up to rounding (SentencePiece sums in float32, ``tokenizers``
in float64); (d) text that normalizes to a control token's string (full-width
``＜／ｓ＞``); (e) characters whose case mapping changed between the Unicode
versions of Python and of the ``tokenizers`` build.

Only unigram models without byte fallback or user-defined pieces are
accepted (SigLIP's); anything else is a ``CheckpointError``.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import Any, Iterable

from .errors import CheckpointError

__all__ = ["siglip_tokenizer_json", "read_sentencepiece", "SPIECE_UNDERLINE"]

SPIECE_UNDERLINE = "\u2581"

# sentencepiece_model.proto: ModelProto.SentencePiece.Type and TrainerSpec.ModelType
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_UNIGRAM = 1
#: Final capital sigma: at most this many case-ignorable characters between it and the cased one before it.
_SIGMA_LOOKBEHIND = 8


def read_sentencepiece(path: str | Path) -> Any:
    """The ``ModelProto`` of a ``.model`` file (``sentencepiece``'s protobuf module, imported here)."""
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError as exc:  # pragma: no cover - the convert extra has it
        raise CheckpointError(f"reading {Path(path).name} needs the sentencepiece package "
                              f"(pip install 'edge-embedder[convert]'): {exc}") from None
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # DecodeError, OSError
        raise CheckpointError(f"{path}: not a SentencePiece model ({type(exc).__name__}: {exc})") from None
    if not proto.pieces:
        raise CheckpointError(f"{path}: the SentencePiece model has no pieces")
    return proto


def _char_class(code_points: Iterable[int]) -> str:
    """A regex character class of ``code_points`` (as ranges of ``\\x{..}`` escapes)."""
    ranges: list[list[int]] = []
    for cp in sorted(set(code_points)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges) + "]"


def _python_whitespace() -> list[int]:
    """The characters Python's ``re`` matches with ``\\s`` in a str pattern (``str.isspace``)."""
    return [cp for cp in range(0x110000) if chr(cp).isspace()]


@functools.lru_cache(maxsize=4)
def _blank_after(charsmap: bytes) -> tuple[int, ...]:
    """Characters SentencePiece's normalization (``charsmap``) deletes or turns into spaces only (each alone)."""
    from tokenizers import normalizers

    normalizer = normalizers.Precompiled(charsmap)
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if not normalizer.normalize_str(chr(cp)).strip(" "):
            out.append(cp)
    return tuple(out)


def _check_supported(proto: Any, path: str | Path) -> None:
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    problems = []
    if trainer.model_type not in (0, _UNIGRAM):  # 0: unset, the unigram default
        problems.append(f"model type {trainer.model_type} (only unigram models are supported)")
    if trainer.byte_fallback:
        problems.append("byte fallback")
    if trainer.treat_whitespace_as_suffix:
        problems.append("whitespace as suffix")
    if norm.HasField("escape_whitespaces") and not norm.escape_whitespaces:
        problems.append("unescaped whitespace")
    user = [p.piece for p in proto.pieces if p.type == _USER_DEFINED]
    if user:
        problems.append(f"user-defined pieces {user[:3]}")
    if not any(p.type == _UNKNOWN for p in proto.pieces):
        problems.append("no unknown piece")
    if problems:
        raise CheckpointError(f"{path}: this SentencePiece model cannot be reproduced with the tokenizers package "
                              f"({'; '.join(problems)}): SigLIP's models have none of these")


def siglip_tokenizer_json(spm_path: str | Path, *, lowercase: bool = True, eos_token: str = "</s>",
                          pad_token: str = "</s>", unk_token: str = "<unk>") -> bytes:
    """``SiglipTokenizer``'s tokenization of ``spm_path`` (its ``spiece.model``) as ``tokenizer.json`` bytes.

    Args:
      spm_path: the checkpoint's SentencePiece model.
      lowercase: the tokenizer's ``do_lower_case``.
      eos_token, pad_token, unk_token: the tokenizer's special tokens (their
        pieces must be in the model).

    Raises:
      CheckpointError: the model is not a unigram model the steps above reproduce,
        or a special token is not one of its pieces.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    proto = read_sentencepiece(spm_path)
    _check_supported(proto, spm_path)
    pieces = {p.piece: i for i, p in enumerate(proto.pieces)}
    for what, token in (("eos", eos_token), ("pad", pad_token), ("unk", unk_token)):
        if token not in pieces:
            raise CheckpointError(f"{spm_path}: the tokenizer's {what} token {token!r} is not a piece of the model")
    unk_id = next(i for i, p in enumerate(proto.pieces) if p.type == _UNKNOWN)
    if proto.pieces[unk_id].piece != unk_token:
        raise CheckpointError(f"{spm_path}: the model's unknown piece is {proto.pieces[unk_id].piece!r}, "
                              f"the tokenizer's unk token {unk_token!r}")
    tok = Tokenizer(Unigram([(p.piece, float(p.score)) for p in proto.pieces], unk_id=unk_id, byte_fallback=False))

    norm = proto.normalizer_spec
    charsmap = normalizers.Precompiled(norm.precompiled_charsmap) if norm.precompiled_charsmap else None
    whitespace = _python_whitespace()
    punctuation = [ord(c) for c in string.punctuation]
    removable = whitespace + punctuation + [ord(SPIECE_UNDERLINE)]
    if charsmap is not None:
        removable += _blank_after(bytes(norm.precompiled_charsmap))
    steps: list[Any] = [
        # A leading run of what the steps below delete becomes the one space that the "▁" prefix is.
        normalizers.Replace(Regex("^" + _char_class(removable) + "+"), " "),
        normalizers.Replace(SPIECE_UNDERLINE, " "),
    ]
    if lowercase:
        behind = "|".join("\\p{Cased}" + (f"\\p{{Case_Ignorable}}{{{k}}}" if k else "")
                          for k in range(_SIGMA_LOOKBEHIND + 1))
        steps += [normalizers.Replace(Regex(f"(?<={behind})\u03a3(?!\\p{{Case_Ignorable}}*\\p{{Cased}})"), "\u03c2"),
                  normalizers.Lowercase()]
    steps += [normalizers.Replace(Regex(_char_class(punctuation)), ""),
              normalizers.Replace(Regex(_char_class(whitespace) + "+"), " ")]
    if charsmap is not None:
        steps.append(charsmap)
    if not norm.HasField("remove_extra_whitespaces") or norm.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Replace(Regex(" +$"), "")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="first", split=False)
    tok.add_special_tokens([AddedToken(t, lstrip=True, rstrip=True, normalized=False, special=True)
                            for t in dict.fromkeys((pad_token, eos_token, unk_token))])
    tok.post_processor = processors.TemplateProcessing(single=f"$A {eos_token}",
                                                       special_tokens=[(eos_token, pieces[eos_token])])
    return tok.to_str().encode("utf-8")

