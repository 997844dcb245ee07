"""Environments that only a policy with memory solves, and one that counts its own steps.

``CueRecall``: the first observation shows a cue, -1 or +1; then ``delay`` blank
observations; then a query. The action at the query scores 1 if it names the cue (0 for -1,
1 for +1), else 0, and ends the episode; every other action does nothing. A feed-forward
policy sees the same query whatever the cue: its expected return is exactly 0.5. With
``truncate_at`` the episode is cut (truncated) after that many steps instead.

``StepCount``: the observation is [the step within the episode, the env's index]; episodes
of 3 + index steps, ended by a time limit (truncation): where episodes start, the env says.

Importing this module registers them (``--env-module tests.memory_envs``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

DELAY = 3


class CueRecall(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, delay: int = DELAY, truncate_at: int | None = None) -> None:
        self.delay = delay
        self.truncate_at = truncate_at
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.cue = 1.0
        self.t = 0

    def _obs(self) -> np.ndarray:
        if self.t == 0:
            return np.array([self.cue, 0.0], np.float32)
        if self.t == self.delay + 1:
            return np.array([0.0, 1.0], np.float32)
        return np.zeros(2, np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cue = float(self.np_random.choice([-1.0, 1.0]))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        query = self.t == self.delay + 1
        reward = float(int(action) == int(self.cue > 0)) if query else 0.0
        self.t += 1
        truncated = self.truncate_at is not None and self.t >= self.truncate_at and not query
        return self._obs(), reward, query, truncated, {}


class StepCount(gym.Env):
    """Observation [step within the episode, index]; Discrete(2) actions; reward = action."""

    metadata = {"render_modes": []}

    def __init__(self, index: int = 0) -> None:
        self.index, self.length = index, 3 + index  # episodes end at different steps
        self.observation_space = spaces.Box(0.0, 1000.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, self.index], np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([self.t, self.index], np.float32)
        return obs, float(action), False, self.t >= self.length, {}


A3C_SOLVES = {
    "n_workers": 2,
    "n_envs": 8,
    "n_steps": 8,
    "learning_rate": 3e-3,
    "ent_coef": 0.05,  # keeps the policy from settling on ignoring the cue (test_recurrent)
    "seed": 0,
}
"""A3C-LSTM settings that solve CueRecall, for the process and the Ray runtime's tests."""


def a3c_cue_recall_miss(seed: int, budget: int, **kwargs) -> str | None:
    """A3C-LSTM with A3C_SOLVES on ``seed`` for ``budget`` steps: what it missed if it
    evaluates below 0.95 (200 episodes; a feed-forward policy scores 0.5), else None."""
    from acrl import A3C
    from acrl.run.evaluation import evaluate_policy

    model = A3C("MlpLstmPolicy", "tests.memory_envs:acrl-tests/CueRecall-v0",
                **{**A3C_SOLVES, "seed": seed, **kwargs})  # fmt: skip
    model.learn(budget)
    mean, _ = evaluate_policy(model, model.make_env(8, seed=100), 200, seed=100)
    return None if mean >= 0.95 else f"seed {seed}: {mean} after {model.num_timesteps} steps"


def register_memory_envs() -> None:
    if "acrl-tests/CueRecall-v0" not in gym.registry:
        gym.register("acrl-tests/CueRecall-v0", entry_point=CueRecall)


register_memory_envs()
