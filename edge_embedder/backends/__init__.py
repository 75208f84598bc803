"""Model runtimes behind one small protocol (see :mod:`.base`)."""

from .base import Backend, TensorSpec, open_backend

__all__ = ["Backend", "TensorSpec", "open_backend"]
