"""Environments that stop answering, for the liveness tests (importable by A3C's workers as
``tests.stall_envs:acrl-tests/Stall-v0``)."""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from tests.envs import CounterEnv


class StallEnv(CounterEnv):
    """CounterEnv whose ``step()`` never returns once it has taken ``stall_after`` steps, in
    the process named ``worker`` only (A3C's worker 1 by default; A2C's is "MainProcess"); it
    creates the file ``token`` as it hangs. ``how`` it hangs: "sleep" (a remote env that
    never answers: a blocking system call), "spin" (Python code that never ends), "c" (a
    deadlock in C code, which no signal ends: a second lock of a pthread mutex), "slow-c"
    (C code that no signal ends either, but returns after 2.5 s, once) or "swallow" (a
    sleep whose first interruption the env swallows, creating ``token``.swallowed, and
    returns; it sleeps again at the next step)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        token: str,
        stall_after: int = 200,
        worker: str = "acrl-a3c-1",
        how: str = "sleep",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(length=10)
        self.render_mode = render_mode
        self.token, self.stall_after, self.how = token, stall_after, how
        self.stalls = multiprocessing.current_process().name == worker
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.stalls and self.steps > self.stall_after:
            Path(self.token).touch()
            if self.how == "slow-c":
                self.stalls = False
                slow_c_call(2.5)
            elif self.how == "swallow":
                self.how = "sleep"
                try:
                    hang("sleep")
                except BaseException:  # an env that catches everything
                    Path(f"{self.token}.swallowed").touch()
            else:
                hang(self.how)
        return super().step(action)

    def render(self):
        return np.zeros((16, 16, 3), dtype=np.uint8)


def slow_c_call(seconds: float) -> None:
    """Wait ``seconds`` in C code that signals do not end: a timed lock of a locked mutex."""
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)
    libc.pthread_mutex_lock(mutex)
    deadline = time.time() + seconds
    timespec = (ctypes.c_long * 2)(int(deadline), int(deadline % 1 * 1e9))  # CLOCK_REALTIME
    libc.pthread_mutex_timedlock(mutex, timespec)


def hang(how: str) -> None:
    """Never return."""
    if how == "c":
        mutex = ctypes.create_string_buffer(64)  # zeros: PTHREAD_MUTEX_INITIALIZER in glibc
        lock = ctypes.CDLL(None).pthread_mutex_lock
        lock(mutex)
        lock(mutex)  # a normal mutex locked twice by its owner: a deadlock, deaf to signals
    while True:
        if how == "spin":
            continue
        time.sleep(3600)


if "acrl-tests/Stall-v0" not in gym.registry:
    gym.register("acrl-tests/Stall-v0", entry_point=StallEnv)
