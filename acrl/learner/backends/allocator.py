"""glibc's malloc told to keep freed memory in the process while a large CNN trains on the CPU.

An update of NatureCNN over Atari frames allocates and frees tens of megabytes (the frames as
floats, each layer's activations, their gradients) every few tens of milliseconds. glibc's
defaults serve blocks that large with fresh ``mmap`` pages, or hand the top of the heap back
to the kernel once more than twice that is free, so every update faults the same memory in
again, page by page: ~730 minor faults per 9 MB batch of 80 frames converted to floats, and
on a virtual machine each fault costs microseconds. With blocks up to 32 MiB served from the
heap and up to 1 GiB of free heap kept, the memory is faulted in once.

Measured (``ALE/Pong-v5``'s preset, 16 envs x 5 steps, NatureCNN, the 2-vCPU VM of
BENCHMARKS.md, 8,000 steps after a warm-up, 4 processes each way, alternated): 1,138 ->
1,296 steps/s (medians, +14%). MinAtar's SmallCNN and MLP policies allocate blocks too small
to matter: no change, so ``choose_compute`` asks for this only for large encoders.

The setting is process-wide and stays for the process's life (glibc has no way back to its
adaptive thresholds); the cost is that a process keeps the memory its largest update used.
Where the environment sets malloc's thresholds itself (``USER_SETTINGS``, or glibc.malloc
tunables), they are the user's and stay as they are.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed on 64-bit systems
TRIM_THRESHOLD = 2**30
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


@functools.cache
def available() -> bool:
    """Whether the thresholds are ours to set: the C library is glibc on Linux, and the
    environment sets none of malloc's thresholds (a user's own choice stays)."""
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return _mallopt() is not None


@functools.cache
def keep_freed_memory() -> bool:
    """Serve blocks up to MMAP_THRESHOLD from the heap and keep up to TRIM_THRESHOLD of it
    free (glibc on Linux); True if this process now does, False where the C library is not
    glibc, refuses, or the environment sets malloc's thresholds itself. Set once a process."""
    mallopt = _mallopt() if available() else None
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _mallopt() -> Any:
    """glibc's ``mallopt`` (None on another platform or C library)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them
        libc.gnu_get_libc_version  # noqa: B018 (glibc alone: the constants above are its own)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
