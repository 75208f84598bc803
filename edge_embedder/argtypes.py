"""argparse types shared by every command line of the project (the CLI and the tooling's).

A leaf module: it imports only argparse at import time (the vision types are
imported inside :func:`roi`), so any parser module can use it.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

__all__ = ["int_at_least", "positive_int", "non_negative_int", "int_list", "roi", "rotation", "model_file"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
        return v

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated integers >= 1, e.g. ``1,2``."""
    return [positive_int(part.strip()) for part in text.split(",")]


def roi(text: str) -> Any:
    """An argparse type: ``l,t,r,b`` normalized to [0, 1] -> :class:`edge_embedder.RectF`."""
    from .errors import OptionsError
    from .vision import RectF

    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected l,t,r,b as four numbers in [0, 1], got {text!r}") from None
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 comma-separated numbers l,t,r,b, got {len(parts)}")
    try:
        return RectF(*parts)
    except OptionsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rotation(text: str) -> int:
    """An argparse type: a multiple of 90 degrees."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a multiple of 90, got {text!r}") from None
    if v % 90:
        raise argparse.ArgumentTypeError(f"expected a multiple of 90, got {v}")
    return v


def model_file(text: str) -> str:
    """An argparse type: a model file, or a shipped model's short name (``edge-embedder models``), as a path.

    An existing file wins over a name. A path that does not exist is returned as it is (opening it is
    a model error, exit code 3); a bare word that is neither a file nor a shipped name is a usage
    error naming the shipped models.
    """
    import difflib
    import os

    from .resources import SHIPPED_MODELS

    if os.path.exists(text) or text not in SHIPPED_MODELS:
        if not os.path.exists(text) and "/" not in text and os.sep not in text and "." not in text:
            close = difflib.get_close_matches(text, list(SHIPPED_MODELS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a model file nor a shipped model name ({hint}shipped: {', '.join(SHIPPED_MODELS)})"
            )
        return text
    return str(SHIPPED_MODELS[text].path)
