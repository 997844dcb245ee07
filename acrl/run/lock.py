"""One writer per run directory: an exclusive lock held for the life of a run.

The lock is ``RUN_DIR/.acrl.lock``: the kernel's advisory lock (``flock``) on that file, which
dies with its process however the process ends, plus the owner's pid, host, command and start
time written in it for the message a second writer gets. A lock file that no process holds
any more is stale: the next writer takes it over and says whose it was, once what it does is
under way (``announce_takeover``): one that stops first, on a user's mistake, says only that
and puts the stale file back as it was. Locks are counted per
thread, so that the CLI and the ``learn()`` it calls can both take the same directory (another
thread of the same process cannot).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from acrl.errors import UserError

LOCK_NAME = ".acrl.lock"

# real path of the run dir -> (lock file fd, holding thread, depth)
_held: dict[Path, tuple[int, int, int]] = {}
_held_guard = threading.Lock()  # threads of one process take and give back holds one at a time
# real path of the run dir -> (what to say of the stale lock taken over, its bytes), until said
_taken_over: dict[Path, tuple[str, bytes]] = {}


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    command: str
    since: float

    def describe(self) -> str:
        """'pid P on HOST (COMMAND, since TIME)', for the messages that name a holder."""
        try:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        except (OverflowError, OSError, ValueError):
            when = "an unknown time"
        return f"pid {self.pid} on {self.host} ({self.command}, since {when})"

    @classmethod
    def me(cls) -> Owner:
        """This process."""
        command = " ".join(["acrl", *sys.argv[1:3]]) if sys.argv else "python"
        return cls(os.getpid(), socket.gethostname(), command, time.time())

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a lock file names; None if it names none (empty, edited, damaged)."""
        try:
            data = json.loads(text)
            owner = cls(
                int(data["pid"]), str(data["host"]), str(data["command"]), float(data["since"])
            )
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            return None
        return owner


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir``'s lock, or raises UserError naming the
    holder (before anything is written). ``run_dir`` must exist."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.key = self.run_dir.resolve()

    def __enter__(self) -> RunLock:
        acquire(self.run_dir, self.key)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        release(self.key, failed=exc_type is not None)


def acquire(run_dir: Path, key: Path) -> None:
    """Take the lock of ``run_dir`` (see ``_acquire``), or raise UserError naming the process
    that holds it (waited for outside the guard: other threads go on meanwhile)."""
    with _held_guard:
        held_elsewhere = _acquire(run_dir, key)
    if held_elsewhere is not None:
        owner = _owner_once_written(held_elsewhere)
        who = owner.describe() if owner is not None else "another process"
        raise UserError(f"run dir {run_dir} is in use by {who}; wait for it to end or stop it")


def _acquire(run_dir: Path, key: Path) -> Path | None:
    """Take the lock of ``run_dir`` (real path ``key``); again if this thread holds it (the
    CLI and the learn() it calls), never if another thread of this process does. Returns
    the lock file's path if another process holds it, None once taken."""
    thread = threading.get_ident()
    if key in _held:
        fd, thread_id, depth = _held[key]
        if thread_id != thread:
            raise UserError(f"run dir {run_dir} is in use by another thread of this process")
        _held[key] = (fd, thread_id, depth + 1)
        return None
    path = key / LOCK_NAME
    for _ in range(10):  # a holder may remove the file between our open and our flock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(f"run dir {run_dir}: {LOCK_NAME} is a symlink") from None
            raise UserError(f"cannot lock run dir {run_dir}: {exc.strerror}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:  # its writes would land elsewhere
            os.close(fd)
            raise UserError(
                f"run dir {run_dir}: {LOCK_NAME} is not a file of acrl's own (it has other "
                "hard links, or is not a regular file); move it out of the run directory"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock run dir {run_dir}: {exc.strerror}") from None
            return path
        if _same_file(fd, path):
            break
        os.close(fd)  # we locked a file its holder has just removed: try the new one
    else:
        raise UserError(f"cannot lock run dir {run_dir}: its lock file keeps changing")
    try:
        stale = os.pread(fd, 4096, 0)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(Owner.me().__dict__).encode(), 0)
    except OSError as exc:  # a full disk: the lock is not ours after all
        os.close(fd)
        raise UserError(f"cannot lock run dir {run_dir}: {exc.strerror}") from None
    if stale:  # a lock file that no one held: put back if this hold fails before its work
        previous = Owner.parse(stale.decode("utf-8", "replace"))
        _taken_over[key] = (
            ""  # unreadable: whose it was is not known, and not said
            if previous is None
            else f"acrl: taking over run dir {run_dir} from {previous.describe()}, "
            "which ended without releasing it",
            stale,
        )
    _held[key] = (fd, threading.get_ident(), 1)
    return None


def announce_takeover(run_dir: Path) -> None:
    """Say, once, that this process took over ``run_dir``'s stale lock (if it did): called
    where what the lock is for is under way, past the checks of the user's input."""
    with _held_guard:
        taken = _taken_over.pop(Path(run_dir).resolve(), None)
    if taken is not None and taken[0]:
        print(taken[0], file=sys.stderr, flush=True)


def release(key: Path, failed: bool = False) -> None:
    """Give back one hold of a run dir's lock (see ``_release``)."""
    with _held_guard:
        _release(key, failed)


def _release(key: Path, failed: bool) -> None:
    """Give back one hold of the lock of the run dir whose real path is ``key``; the last
    one removes the lock file (if it can: a run dir made read-only keeps it, and the next
    writer takes it over), except a stale one taken over by a hold that ``failed`` before
    announcing it: that one gets its old bytes back, as if never taken."""
    fd, thread_id, depth = _held[key]
    if depth > 1:
        _held[key] = (fd, thread_id, depth - 1)
        return
    del _held[key]
    path = key / LOCK_NAME
    taken = _taken_over.pop(key, None)
    try:
        if taken is not None and taken[0] and not failed:
            print(taken[0], file=sys.stderr, flush=True)  # never announced: said at last
        if taken is not None and failed:
            if _same_file(fd, path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, taken[1], 0)
        elif _same_file(fd, path):
            path.unlink()  # while still locked: no one can take the file we remove
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _owner_once_written(path: Path, wait_s: float = 1.0) -> Owner | None:
    """The lock's owner, waiting up to ``wait_s`` for a holder that has just taken the lock
    to write who it is (it writes right after ``flock``; until then the file may still name
    the dead process that left it, never quoted); None if no live owner is named by then."""
    deadline = time.monotonic() + wait_s
    while True:
        owner = _read_owner(path)
        if owner is not None and _may_be_alive(owner):
            return owner
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _may_be_alive(owner: Owner) -> bool:
    """False for an owner that cannot be running: no real pid, or one on this host that no
    longer exists (another host's process is not ours to check)."""
    if owner.pid <= 0:
        return False
    if owner.host != socket.gethostname():
        return True
    try:
        os.kill(owner.pid, 0)  # signal 0: only asks whether the pid exists
    except PermissionError:  # another user's process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def _read_owner(path: Path) -> Owner | None:
    try:
        return Owner.parse(path.read_text(errors="replace")[:4096])
    except OSError:
        return None
