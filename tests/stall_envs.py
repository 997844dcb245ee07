"""Environments that stop answering, for the liveness tests (importable by A3C's workers as
``tests.stall_envs:acrl-tests/Stall-v0``)."""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from pathlib import Path

import gymnasium as gym

from tests.envs import CounterEnv


class StallEnv(CounterEnv):
    """CounterEnv whose ``step()`` never returns once it has taken ``stall_after`` steps, in
    the process named ``worker`` only (A3C's worker 1 by default; A2C's is "MainProcess"); it
    creates the file ``token`` as it hangs. ``how`` it hangs: "sleep" (a remote env that
    never answers: a blocking system call), "spin" (Python code that never ends) or "c" (a
    deadlock in C code, which no signal ends: a second lock of a pthread mutex)."""

    def __init__(
        self, token: str, stall_after: int = 200, worker: str = "acrl-a3c-1", how: str = "sleep"
    ) -> None:
        super().__init__(length=10)
        self.token, self.stall_after, self.how = token, stall_after, how
        self.stalls = multiprocessing.current_process().name == worker
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.stalls and self.steps > self.stall_after:
            Path(self.token).touch()
            hang(self.how)
        return super().step(action)


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
