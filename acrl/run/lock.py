"""One writer per run directory: an exclusive lock held for the life of a run.

The lock is ``RUN_DIR/.acrl.lock``: the kernel's advisory lock (``flock``) on that file, which
dies with its process however the process ends, plus the owner's pid, host, command and start
time written in it for the message a second writer gets. A lock file that no process holds
any more is stale: the next writer takes it over and says whose it was. Locks are counted per
process, so that the CLI and the ``learn()`` it calls can both take the same directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from acrl.errors import UserError

LOCK_NAME = ".acrl.lock"

_held: dict[Path, tuple[int, int]] = {}  # real path of the run dir -> (lock file fd, depth)


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    command: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} ({self.command}, since {when})"

    @classmethod
    def me(cls) -> Owner:
        command = " ".join(["acrl", *sys.argv[1:3]]) if sys.argv else "python"
        return cls(os.getpid(), socket.gethostname(), command, time.time())

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["command"]), data["since"])
        except (ValueError, KeyError, TypeError):
            return None


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir``'s lock, or raises UserError naming the
    holder (before anything is written). ``run_dir`` must exist."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.key = self.run_dir.resolve()

    def __enter__(self) -> RunLock:
        acquire(self.run_dir)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        release(self.run_dir)


def acquire(run_dir: Path) -> None:
    """Take ``run_dir``'s lock (again, if this process holds it already)."""
    key = Path(run_dir).resolve()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        return
    path = key / LOCK_NAME
    for _ in range(10):  # a holder may remove the file between our open and our flock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(f"run dir {run_dir}: {LOCK_NAME} is a symlink") from None
            raise UserError(f"cannot lock run dir {run_dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock run dir {run_dir}: {exc.strerror}") from None
            holder = _read_owner(path)
            who = holder.describe() if holder is not None else "another process"
            raise UserError(
                f"run dir {run_dir} is in use by {who}; wait for it to end or stop it"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # we locked a file its holder has just removed: try the new one
    else:
        raise UserError(f"cannot lock run dir {run_dir}: its lock file keeps changing")
    previous = _owner_of(fd)
    if previous is not None:
        print(
            f"acrl: taking over run dir {run_dir} from {previous.describe()}, "
            "which ended without releasing it",
            file=sys.stderr,
            flush=True,
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(Owner.me().__dict__).encode(), 0)
    _held[key] = (fd, 1)


def release(run_dir: Path) -> None:
    """Give back one hold of ``run_dir``'s lock; the last one removes the lock file."""
    key = Path(run_dir).resolve()
    fd, depth = _held[key]
    if depth > 1:
        _held[key] = (fd, depth - 1)
        return
    del _held[key]
    path = key / LOCK_NAME
    try:
        if _same_file(fd, path):
            path.unlink()  # while still locked: no one can take the file we remove
    finally:
        os.close(fd)


def holds(run_dir: Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return Path(run_dir).resolve() in _held


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _owner_of(fd: int) -> Owner | None:
    data = os.pread(fd, 4096, 0)
    return Owner.parse(data.decode("utf-8", "replace")) if data else None


def _read_owner(path: Path) -> Owner | None:
    try:
        return Owner.parse(path.read_text(errors="replace")[:4096])
    except OSError:
        return None
