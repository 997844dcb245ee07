"""Writing a small file atomically: a temporary ``.NAME.XXXXXXXX.tmp`` beside it, flushed to
disk and renamed over it, so that a kill leaves the old file or the new one (and at most a
temporary file, which a resume removes), and a full disk the old one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The process's umask, read once at import (reading it means setting it, for a moment: not
# something to do while other threads create files).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path``'s content by ``data`` (the temporary file, created anew with a name of
    its own, never through a symlink, is removed on any failure)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(Path(tmp), path)  # mkstemp's 0600 made ordinary; a symlink there replaced
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temporary file beside ``path`` an ordinary file's mode and rename it
    over ``path`` (a symlink there is replaced, not written through)."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
