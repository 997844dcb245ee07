"""Helpers shared by the tests that drive training runs from outside."""

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def misses_until_a_seed_passes(
    miss: Callable[[int], str | None], seeds: tuple[int, ...] = (0, 1)
) -> list[str]:
    """``miss(seed)`` (what a run on ``seed`` missed, or None) on each seed in turn until one
    passes: nothing then, else every miss. For Hogwild learning tests: the order in which the
    workers' updates land decides the curve, so a seed fixes no outcome; a broken
    implementation misses every seed."""
    misses = []
    for seed in seeds:
        found = miss(seed)
        if found is None:
            return []
        misses.append(found)
    return misses


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


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie awaiting its reaper counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return re.search(r"^State:\s+Z", status, re.M) is not None


def alive(pids: Iterable[int]) -> set[int]:
    """Those of ``pids`` still running (not ended, not zombies)."""
    return {p for p in pids if not gone(p)}


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """The pids still running after waiting up to ``timeout`` seconds for them to end
    (multiprocessing's resource tracker, a child too, ends only after its parent)."""
    pids = set(pids)
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(alive(pids))


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
