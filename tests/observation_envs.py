"""Tiny deterministic environments with Discrete, Dict, Tuple and unsupported observations.

Worker processes and ``acrl`` subprocesses find them through "tests.observation_envs:..." ids
(or ``--env-module tests.observation_envs``); registering at import time makes that work.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tests.envs import CounterEnv


class CueEnv(gym.Env):
    """Observation {"cue": 0 or 1, "pos": x in [-1, 1]}; the rewarded action (1 point) is
    ``cue AND (x > 0)``, so neither key alone tells it: a random policy scores 0.5 per step,
    one that reads a single key at most 0.75 (it is sure only when that key is 0). Episodes
    run until a TimeLimit truncates them."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {"cue": spaces.Discrete(2), "pos": spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)}
        )
        self.action_space = spaces.Discrete(2)
        self.cue = 0
        self.pos = 0.0

    def _obs(self) -> dict:
        self.cue = int(self.np_random.integers(2))
        self.pos = float(self.np_random.choice([-0.75, -0.25, 0.25, 0.75]))
        return {"cue": self.cue, "pos": np.array([self.pos], dtype=np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == (self.cue & int(self.pos > 0)))
        return self._obs(), reward, False, False, {}


class DictCounterEnv(CounterEnv):
    """CounterEnv's counter as {"episode": [e], "t": t} (Box and Discrete); reward 1 + t + 10 e.
    Episodes end only by a TimeLimit, so the final observation {"episode": [e], "t": length}
    is known."""

    def __init__(self) -> None:
        super().__init__(terminate=False)
        self.observation_space = spaces.Dict(
            {
                "episode": spaces.Box(0.0, 1e6, shape=(1,), dtype=np.float32),
                "t": spaces.Discrete(8),
            }
        )

    def _obs(self) -> dict:
        return {"episode": np.array([self.episode], dtype=np.float32), "t": self.t}


class NestedTupleEnv(gym.Env):
    """A nested Tuple of every supported part, drawn at random; reward 1 for the action
    ``discrete part == 1`` (it is -1, 0 or 1). Episodes of 5 steps."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Tuple(
            (
                spaces.Discrete(3, start=-1),
                spaces.Dict({"bits": spaces.MultiBinary(2), "dice": spaces.MultiDiscrete([2, 3])}),
                spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
            )
        )
        self.action_space = spaces.Discrete(2)
        self.t = 0
        self.obs = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        self.obs = self.observation_space.sample()
        return self.obs, {}

    def step(self, action):
        reward = float(int(action) == int(self.obs[0] == 1))
        self.t += 1
        self.obs = self.observation_space.sample()
        return self.obs, reward, self.t >= 5, False, {}


class TextObsEnv(gym.Env):
    """Text observations: a space acrl does not observe."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(8)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "hello", {}

    def step(self, action):
        return "hello", 0.0, True, False, {}


ENVS = {
    "acrl-tests/Cue-v0": (CueEnv, 10),
    "acrl-tests/DictCounter-v0": (DictCounterEnv, 5),
    "acrl-tests/NestedTuple-v0": (NestedTupleEnv, None),
    "acrl-tests/TextObs-v0": (TextObsEnv, None),
}


def register_observation_envs() -> None:
    for env_id, (entry_point, max_steps) in ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, max_episode_steps=max_steps)


register_observation_envs()
