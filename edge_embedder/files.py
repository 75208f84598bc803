"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

An interrupted or failing write never leaves a half-written file behind.

A writer that is *killed* (``kill -9``, power loss) cannot remove its hidden
temporary file (``.NAME.XXXXXXXX.tmp``, as large as the file it was writing).
So every writer holds an exclusive ``flock`` on its temporary file from the
moment it creates it until the file is published or removed, and every write
of ``NAME`` first removes the temporary files of ``NAME`` that nobody holds:
their writers are dead (the kernel releases a dead process's locks, and a
reboot releases them all). Temporary files of live writers are never touched.
Where ``flock`` is not available (Windows, some network file systems), stale
files are left alone.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["atomic_write", "write_beside", "publish", "discard", "remove_stale_temp_files"]

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# Locked temporary files of this process: path -> open descriptor holding the lock.
_HELD: dict[str, int] = {}
_HELD_LOCK = threading.Lock()
# mkstemp's random part: 8 characters of this alphabet.
_RANDOM = "[a-z0-9_]{8}"
# A writer takes its lock microseconds after creating the file: younger files are left alone.
_GRACE_SECONDS = 2.0


def _temp_pattern(name: str) -> "re.Pattern[str]":
    return re.compile(rf"\.{re.escape(name)}\.{_RANDOM}\.tmp")


def remove_stale_temp_files(path: Union[str, "os.PathLike[str]"]) -> list[Path]:
    """Remove the hidden temporary files of ``path`` whose writers are dead; return what was removed.

    A temporary file is stale when its ``flock`` can be taken: a live writer
    (of this process or another) holds it until it publishes or discards the file.
    """
    path = Path(path)
    if fcntl is None:
        return []
    pattern = _temp_pattern(path.name)
    removed = []
    try:
        entries = [e for e in os.scandir(path.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return []
    for entry in entries:
        candidate = os.path.join(path.parent, entry.name)
        with _HELD_LOCK:
            if candidate in _HELD:
                continue
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue  # gone already, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held: a live writer (or no locks on this file system)
            continue
        try:
            st = os.fstat(fd)
            # Still the same file (not replaced by a new writer's between scandir and open), and not brand new?
            if os.path.samestat(st, os.stat(candidate)) and time.time() - st.st_mtime >= _GRACE_SECONDS:
                os.unlink(candidate)
                removed.append(Path(candidate))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def write_beside(path: Union[str, "os.PathLike[str]"], data: Union[bytes, Callable[[BinaryIO], object]]) -> Path:
    """Write ``data`` to a hidden temporary file in ``path``'s folder and return its path.

    The file is complete (fsync'ed, mode 0644; ``mkstemp`` would leave 0600)
    when this returns, and stays locked (see the module docstring) until
    :func:`publish` renames it to ``path`` or :func:`discard` removes it. A
    failed write leaves nothing behind. Stale temporary files of ``path``
    (writers that were killed) are removed first. The folder must exist: it
    is not created (a typo in a path should fail, not make folders).

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    lock_fd = -1
    try:
        if fcntl is not None:
            lock_fd = os.dup(fd)  # the lock lives on this descriptor until publish() / discard()
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # no locks on this file system: the file is just not protected from cleaners
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
        if lock_fd >= 0:
            os.close(lock_fd)
        raise
    if lock_fd >= 0:
        with _HELD_LOCK:
            _HELD[tmp] = lock_fd
    return Path(tmp)


def _release(tmp: Union[str, "os.PathLike[str]"]) -> None:
    with _HELD_LOCK:
        fd = _HELD.pop(os.fspath(tmp), None)
    if fd is not None:
        os.close(fd)


def publish(tmp: Union[str, "os.PathLike[str]"], path: Union[str, "os.PathLike[str]"]) -> Path:
    """``os.replace(tmp, path)`` for a file from :func:`write_beside`, then release its lock.

    On failure the temporary file is removed (and the error raised).
    """
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    finally:
        _release(tmp)
    return Path(path)


def discard(tmp: Union[str, "os.PathLike[str]"]) -> None:
    """Remove a temporary file from :func:`write_beside` (if it is still there) and release its lock."""
    try:
        _unlink(tmp)
    finally:
        _release(tmp)


def atomic_write(path: Union[str, "os.PathLike[str]"], data: Union[bytes, Callable[[BinaryIO], object]]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    :func:`write_beside`, then :func:`publish`: an interrupted or failing
    write never leaves a half-written file (nor a temporary one) behind, and
    one killed outright leaves a temporary file that the next write of
    ``path`` removes.

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    return publish(write_beside(path, data), path)


def _unlink(path: Union[str, "os.PathLike[str]"]) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
