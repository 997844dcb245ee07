"""Writing a small file atomically: a temporary ``.NAME.XXXXXXXX.tmp`` beside it, flushed to
disk and renamed over it, so that a kill leaves the old file or the new one (and at most a
temporary file, which a resume removes), and a full disk the old one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from acrl.run.model_file import fsync_dir


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path``'s content by ``data`` (the temporary file, created anew with a name of
    its own, never through a symlink, is removed on any failure)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600: an ordinary file instead
        os.replace(tmp, path)  # a symlink at ``path`` is replaced, not written through
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
