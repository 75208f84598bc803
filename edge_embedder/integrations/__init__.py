"""Integrations with other frameworks, each behind its own optional extra.

* :mod:`edge_embedder.integrations.ray`: embed a corpus with Ray Data
  (``pip install 'edge-embedder[ray]'``). Importing this package imports no
  framework; the submodule imports Ray only when it is used.
"""
