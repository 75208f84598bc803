"""The ``edge-embedder`` command line (``python -m edge_embedder`` runs it too)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
