"""Tiny deterministic environments of the test suite's own."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CounterEnv(gym.Env):
    """Observation [episode, t]; reward 1 + t + 10 * episode, so a reward names its transition.

    Episodes of ``length`` steps end by termination when ``terminate`` is set; otherwise they
    run until a TimeLimit wrapper truncates them.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 3, terminate: bool = True) -> None:
        self.length = length
        self.terminate = terminate
        self.observation_space = spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        reward = 1.0 + self.t + 10.0 * self.episode
        self.t += 1
        terminated = self.terminate and self.t >= self.length
        return self._obs(), reward, terminated, False, {}


class TargetEnv(gym.Env):
    """Continuous control: move a point to a target. Obs [x - target, target]; action in [-1, 1].

    Reward -|x - target| per step; episodes last 20 steps and end only by time limit.
    A policy that steers towards the target scores around -3; a random one around -15.
    """

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.x = 0.0
        self.target = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x - self.target, self.target], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.target = self.np_random.uniform(-1.0, 1.0, size=2)
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.25 * float(np.asarray(action).reshape(-1)[0]), -5, 5))
        return self._obs(), -abs(self.x - self.target), False, False, {}


def register_test_envs() -> None:
    if "acrl-tests/Target-v0" not in gym.registry:
        gym.register("acrl-tests/Target-v0", entry_point=TargetEnv, max_episode_steps=20)
    if "acrl-tests/Counter-v0" not in gym.registry:
        gym.register("acrl-tests/Counter-v0", entry_point=CounterEnv)
    if "acrl-tests/Broken-v0" not in gym.registry:
        gym.register("acrl-tests/Broken-v0", entry_point=BrokenEnv)
    if "acrl-tests/Faulty-v0" not in gym.registry:
        gym.register("acrl-tests/Faulty-v0", entry_point=FaultyEnv)
    if "acrl-tests/NanReset-v0" not in gym.registry:
        gym.register("acrl-tests/NanReset-v0", entry_point=NanResetEnv)
    if "acrl-tests/FailingInit-v0" not in gym.registry:
        gym.register("acrl-tests/FailingInit-v0", entry_point=FailingInitEnv)


class BrokenEnv(CounterEnv):
    """Raises in ``step`` after ``fail_after`` steps: a broken environment for failure tests."""

    def __init__(self, fail_after: int = 50) -> None:
        super().__init__(length=10)
        self.fail_after = fail_after
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps > self.fail_after:
            raise RuntimeError("the simulator exploded")
        return super().step(action)


class FaultyEnv(CounterEnv):
    """Returns a bad number at its ``fault_at``-th step: a NaN ``reward``, a NaN
    ``observation``, or a ``huge`` (finite) reward whose squared error overflows the loss."""

    def __init__(self, fault_at: int = 30, fault: str = "reward") -> None:
        super().__init__(length=10)
        self.fault_at = fault_at
        self.fault = fault
        self.steps = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps == self.fault_at:
            if self.fault == "observation":
                obs = np.array([np.nan, 0.0], dtype=np.float32)
            else:
                reward = np.nan if self.fault == "reward" else 1e30
        return obs, reward, terminated, truncated, info


class NanResetEnv(CounterEnv):
    """Returns a NaN observation from ``reset`` (``step`` is fine)."""

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return np.full_like(obs, np.nan), info


class FailingInitEnv(CounterEnv):
    """Raises in its constructor: an env that cannot start."""

    def __init__(self) -> None:
        raise ValueError("no licence for the simulator")


# Worker processes find these envs through "tests.envs:acrl-tests/..." ids, which import
# this module; registering at import time makes that work.
register_test_envs()


class LivesEnv(gym.Env):
    """A game of three lives, as ale-py reports them: step k (1-9) scores ``SCORES[k - 1]``, a
    life is lost every third step (``info["lives"]``), and the game ends with the last."""

    SCORES = (5.0, 0.0, -10.0, 25.0, 1.0, 0.0, 7.0, 0.0, 3.0)
    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1e6, 1e6, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0
        self.lives = 3

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.lives = 0, 3
        return np.zeros(1, dtype=np.float32), {"lives": self.lives}

    def step(self, action):
        reward = self.SCORES[self.t]
        self.t += 1
        if self.t % 3 == 0:
            self.lives -= 1
        obs = np.array([self.t], dtype=np.float32)
        return obs, reward, self.lives == 0, False, {"lives": self.lives}
