"""Writing a small file atomically: a temporary ``.NAME.tmp`` beside it, flushed to disk and
renamed over it, so that a kill or a full disk leaves the old file or the new one, and never
the temporary one."""

from __future__ import annotations

import os
from pathlib import Path

from acrl.run.model_file import fsync_dir


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path``'s content by ``data`` (the temporary file is removed on any failure)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
