"""Is the converter toolchain installed? Checked before anything heavy is imported.

``importlib.util.find_spec`` looks for the packages without importing them
(importing torch alone takes seconds), so ``edge-embedder convert`` on a
runtime-only install fails at once with one line naming the extra.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from edge_embedder.errors import MissingDependencyError

__all__ = ["require_toolchain", "missing_modules", "INSTALL_HINT"]

INSTALL_HINT = (
    "pip install 'edge-embedder[convert]' (for the CPU build of torch, add "
    "--extra-index-url https://download.pytorch.org/whl/cpu)"
)


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that are not installed (found without importing them)."""
    out = []
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(m)
    return out


def require_toolchain(cfg: Any, fmt: str, quantize: str) -> None:
    """Raise MissingDependencyError when a package the conversion needs is not installed."""
    # scikit-image's photos are the image tasks' parity and calibration inputs.
    need: tuple[str, ...] = ("torch", "skimage") if getattr(cfg, "task", "image-embedding") == "image-embedding" else ("torch",)
    need += tuple(getattr(cfg, "requires_modules", ()))
    if fmt == "onnx":
        need += ("onnx", "onnxscript", "onnxruntime")
    else:
        need += ("litert_torch",)
        if quantize != "none":
            need += ("ai_edge_quantizer",)
    missing = missing_modules(need)
    if missing:
        raise MissingDependencyError(
            f"convert needs the converter toolchain ({', '.join(missing)} not installed): {INSTALL_HINT}"
        )
