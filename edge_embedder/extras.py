"""The optional extras, and the one check that a feature's extra is installed before any work starts.

``require(extra, what)`` looks for the extra's packages without importing them
(``importlib.util.find_spec``: no seconds spent importing torch or Ray just to
find out) and raises :class:`MissingDependencyError` naming the extra, e.g.
``embed-dir -o out.parquet needs pyarrow (not installed): pip install
'edge-embedder[parquet]'``. The command line turns it into one line and exit
code 5, before it embeds anything.
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

from .errors import MissingDependencyError

__all__ = ["EXTRAS", "missing_modules", "require"]

#: extra -> the top-level modules it provides (pyproject.toml's optional-dependencies).
EXTRAS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime",),
    "text": ("tokenizers",),
    "parquet": ("pyarrow",),
    "search": ("usearch",),
    "ray": ("ray", "pyarrow"),
    "bench": ("matplotlib",),
    "mediapipe": ("mediapipe",),
    "convert": ("torch", "transformers", "litert_torch"),
}


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that cannot be found (nothing is imported)."""
    out = []
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):  # a parent package that fails, or a module set to None in sys.modules
            found = False
        if not found:
            out.append(m)
    return out


def require(extra: str, what: str, modules: Sequence[str] | None = None) -> None:
    """Raise MissingDependencyError when ``extra``'s packages (or ``modules``) are not installed.

    ``what`` names the feature in the message (``"--plot"``, ``"Parquet output"``).
    """
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise MissingDependencyError(
            f"{what} needs {', '.join(missing)} (not installed): pip install 'edge-embedder[{extra}]'"
        )
