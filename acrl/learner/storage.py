"""What a rollout holds and the episodes it saw: the rollout's tensors (filled by the
collector, acrl.learner.rollout; read by the update) and each env's running episode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor


@dataclass
class Rollout:
    """One rollout of T steps from N environments; every field but ``next_obs`` is (T, N, ...).

    The collector fills what the environments and the actor gave; ``values`` and
    ``next_values`` are the critic's, filled by ``set_values`` when the update's forward pass
    computes them (the weights are those that acted). ``final_mask`` marks the truncated steps
    whose final observation came apart from ``next_obs``/``obs`` (SAME_STEP autoreset), and
    ``final_values`` holds its value, computed when it was collected.
    """

    obs: Tensor
    next_obs: Tensor  # (N, ...): the observation after the last step
    actions: Tensor
    rewards: Tensor
    values: Tensor
    next_values: Tensor
    terminated: Tensor
    done: Tensor
    valid: Tensor
    final_mask: Tensor
    final_values: Tensor
    initial_state: Tensor  # (N, S): a recurrent policy's state before the first step (S = 0)
    starts: Tensor  # (T + 1, N): 1 where an episode starts at that observation (recurrent)

    def set_values(self, values: Any, last_values: Any) -> None:
        """The critic's values of ``obs`` (T, N) and ``next_obs`` (N,), as tensors or arrays:
        each step bootstraps from the next observation's value, a truncated one from its
        final observation's."""
        parts = (self.values, self.next_values, self.final_mask, self.final_values)
        on_host = self.values.device.type == "cpu"  # NumPy on the host: µs, not tens of µs
        arrays: list[Any] = [p.numpy() if on_host else p for p in parts]
        own, following, mask, final = arrays
        own[...] = values
        following[:-1] = own[1:]
        following[-1] = last_values
        following += mask * (final - following)

    @property
    def n_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_envs(self) -> int:
        return self.rewards.shape[1]


class EpisodeTracker:
    """Running return and length of each env's current episode, and the finished episodes."""

    def __init__(self, n_envs: int) -> None:
        self.returns = np.zeros(n_envs, dtype=np.float64)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []
        self.total_episodes = 0

    def step(self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray) -> None:
        self.returns += np.where(valid, rewards, 0.0)
        self.lengths += valid
        if done.any():
            ended = np.flatnonzero(done)
            self.finished += zip(
                self.returns[ended].tolist(), self.lengths[ended].tolist(), strict=True
            )
            self.total_episodes += len(ended)
            self.returns[ended] = 0.0
            self.lengths[ended] = 0

    def clear_current(self) -> None:
        self.returns[:] = 0.0
        self.lengths[:] = 0

    def drain(self) -> list[tuple[float, int]]:
        """Episodes finished since the last call."""
        out, self.finished = self.finished, []
        return out
