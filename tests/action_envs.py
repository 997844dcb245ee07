"""Tiny deterministic environments (given their seed) for the action spaces beyond Discrete and
Box: each step shows a target in the observation and rewards acting on every dimension of it.

Importing this module registers them; worker processes and ``--env-module tests.action_envs``
find them that way.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

EPISODE_STEPS = 8


class _TargetEnv(gym.Env):
    """A target redrawn every step and shown in the observation; 8-step episodes end by time
    limit. ``render`` draws a small frame, enough for ``acrl video``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    observation_space: spaces.Box

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.target = np.zeros(0, dtype=np.int64)

    def _draw(self) -> np.ndarray:
        raise NotImplementedError

    def _obs(self) -> np.ndarray:
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = self._draw()
        return self._obs(), {}

    def render(self) -> np.ndarray:
        frame = np.zeros((16, 16, 3), dtype=np.uint8)
        frame[:, :, 0] = 40 * (self.target.ravel()[:1].sum() + 1)
        return frame


class MultiDiscreteTargetEnv(_TargetEnv):
    """Obs: the one-hot targets (3 + 4 values); action MultiDiscrete([3, 4]); reward 1 only
    when both components match. Random actions score 8/12 ~ 0.67 an episode, the best 8."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(7,), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete([3, 4])

    def _draw(self) -> np.ndarray:
        return np.array([self.np_random.integers(3), self.np_random.integers(4)])

    def _obs(self) -> np.ndarray:
        obs = np.zeros(7, dtype=np.float32)
        obs[self.target[0]] = obs[3 + self.target[1]] = 1.0
        return obs

    def step(self, action):
        reward = float(np.array_equal(np.asarray(action), self.target))
        self.target = self._draw()
        return self._obs(), reward, False, False, {}


class MultiBinaryPatternEnv(_TargetEnv):
    """Obs: a pattern of 4 bits as -1/+1; action MultiBinary(4); reward the number of bits
    equal to the pattern's. Random actions score 2 a step (16 an episode), the best 32."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.MultiBinary(4)

    def _draw(self) -> np.ndarray:
        return self.np_random.integers(2, size=4)

    def _obs(self) -> np.ndarray:
        return (2.0 * self.target - 1.0).astype(np.float32)

    def step(self, action):
        reward = float(np.sum(np.asarray(action) == self.target))
        self.target = self._draw()
        return self._obs(), reward, False, False, {}


class TupleActionEnv(gym.Env):
    """A Tuple action space, which acrl has no action head for."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


ENVS = {
    "acrl-tests/MultiDiscreteTarget-v0": MultiDiscreteTargetEnv,
    "acrl-tests/MultiBinaryPattern-v0": MultiBinaryPatternEnv,
    "acrl-tests/TupleAction-v0": TupleActionEnv,
}


def register_action_envs() -> None:
    for env_id, entry_point in ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, max_episode_steps=EPISODE_STEPS)


register_action_envs()
