"""Helpers shared by the tests that drive training runs from outside."""

import os
import signal
import subprocess
import time
from pathlib import Path


def wait_for_metrics_rows(run_dir: Path, rows: int = 2, timeout: float = 120.0) -> None:
    """Wait until a run has written ``rows`` rows of metrics.csv (training is under way)."""
    metrics = run_dir / "metrics.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"no metrics from {run_dir} after {timeout} s")


def children_of(pid: int) -> set[int]:
    """The process ids whose parent is ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(x) for x in out.stdout.split()}


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (not ended, not zombies)."""
    return {
        p
        for p in pids
        if os.path.exists(f"/proc/{p}") and "zombie" not in open(f"/proc/{p}/status").read()
    }


def assert_ended(pids: set[int], timeout: float = 5.0) -> None:
    """Wait until none of ``pids`` runs (multiprocessing's resource tracker, a child too,
    ends only after its parent)."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(pids) == set(), f"still running: {alive(pids)}"


def assert_group_ends(group: int, timeout: float = 5.0) -> None:
    """Wait until no process of the process group ``group`` is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"a process of group {group} outlived it")


def ctrl_c_at_first_child(proc: subprocess.Popen, timeout: float) -> str:
    """SIGINT to ``proc``'s process group (it leads a session of its own) as soon as its first
    child process exists, as a terminal's Ctrl-C; its stderr once it ended (killed after
    ``timeout`` s)."""
    deadline = time.monotonic() + 60
    while not children_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return stderr
