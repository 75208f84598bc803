"""Text side of edge_embedder (CLIP text towers): tokenization in ``edge_embedder.text.tokenizer``.

Kept empty on purpose: importing this package imports nothing optional. The
``tokenizers`` package (the ``text`` extra) is imported only when a tokenizer is built.
"""
