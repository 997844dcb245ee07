"""Environments that stop answering, for the liveness tests (importable by A3C's workers as
``tests.stall_envs:acrl-tests/Stall-v0``)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import gymnasium as gym

from tests.envs import CounterEnv


class StallEnv(CounterEnv):
    """CounterEnv whose ``step()`` never returns once it has taken ``stall_after`` steps, in
    the process named ``worker`` only (A3C's worker 1 by default); it creates the file
    ``token`` as it hangs."""

    def __init__(self, token: str, stall_after: int = 200, worker: str = "acrl-a3c-1") -> None:
        super().__init__(length=10)
        self.token, self.stall_after = token, stall_after
        self.stalls = multiprocessing.current_process().name == worker
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.stalls and self.steps > self.stall_after:
            Path(self.token).touch()
            while True:  # hung: a simulator that deadlocked, a remote env that never answers
                time.sleep(3600)
        return super().step(action)


if "acrl-tests/Stall-v0" not in gym.registry:
    gym.register("acrl-tests/Stall-v0", entry_point=StallEnv)
