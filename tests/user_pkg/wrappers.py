"""Wrappers of the user's own: one that records its arguments (so a model file can name it and
``--env-module tests.user_pkg.wrappers`` rebuilds it), and one that does not."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs


class AppendConstant(gym.ObservationWrapper, RecordConstructorArgs):
    """Appends ``value`` to a flat Box observation (one more column: a model that misses the
    wrapper sees the wrong shape)."""

    def __init__(self, env: gym.Env, value: float = 1.0) -> None:
        RecordConstructorArgs.__init__(self, value=value)
        gym.ObservationWrapper.__init__(self, env)
        box = env.observation_space
        assert isinstance(box, spaces.Box) and len(box.shape) == 1
        self.value = value
        low = np.append(box.low, value).astype(box.dtype)
        high = np.append(box.high, value).astype(box.dtype)
        self.observation_space = spaces.Box(low, high, dtype=box.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.append(observation, self.value).astype(self.observation_space.dtype)


class Unrecorded(gym.ObservationWrapper):
    """Doubles the observation; it records no arguments, so it cannot be rebuilt from a spec."""

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * 2
