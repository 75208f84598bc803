"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

An interrupted or failing write never leaves a half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["atomic_write", "write_beside"]


def write_beside(path: Union[str, "os.PathLike[str]"], data: Union[bytes, Callable[[BinaryIO], object]]) -> Path:
    """Write ``data`` to a hidden temporary file in ``path``'s folder and return its path.

    The file is complete (fsync'ed, mode 0644; ``mkstemp`` would leave 0600)
    when this returns; ``os.replace(tmp, path)`` then publishes it atomically.
    A failed write leaves nothing behind. The folder must exist: it is not
    created (a typo in a path should fail, not make folders).

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        _unlink(tmp)
        raise
    return Path(tmp)


def atomic_write(path: Union[str, "os.PathLike[str]"], data: Union[bytes, Callable[[BinaryIO], object]]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    :func:`write_beside`, then ``os.replace``: an interrupted or failing write
    never leaves a half-written file (nor a temporary one) behind.

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    tmp = write_beside(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return Path(path)


def _unlink(path: Union[str, "os.PathLike[str]"]) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
