"""Text side of edge_embedder: CLIP text towers (:class:`TextEmbedder`) and their tokenizer.

Importing this package imports nothing optional: the ``tokenizers`` package
(the ``text`` extra) is imported only when a tokenizer is built, i.e. when a
:class:`TextEmbedder` is created or a :class:`ClipTokenizer` is made.
"""

from .text_embedder import TextEmbedder, TextEmbedderOptions
from .tokenizer import (
    KNOWN_ENCODING_TEXTS,
    TEXT_EXTRA_HINT,
    ClipTokenizer,
    Encoding,
    TokenizerConfig,
    check_text,
    known_encodings,
)

__all__ = ["TextEmbedder", "TextEmbedderOptions", "ClipTokenizer", "Encoding", "TokenizerConfig", "TEXT_EXTRA_HINT", "check_text",
           "known_encodings", "KNOWN_ENCODING_TEXTS"]
