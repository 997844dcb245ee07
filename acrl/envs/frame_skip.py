"""FrameSkip: each action repeated for ``skip`` env steps, rewards summed, the last frame kept
(rl-baselines3-zoo's FrameSkip), for envs that skip no frames themselves, such as CarRacing.

Atari's skip belongs to AtariPreprocessing, which also max-pools the last two frames against
flicker; a plain repeat keeps every frame sharp for envs that do not flicker.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym


class FrameSkip(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Repeat each action ``skip`` times (fewer when the episode ends on the way); the step
    returns the last observation and info and the sum of the rewards."""

    def __init__(self, env: gym.Env, skip: int = 2) -> None:
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 1:
            raise ValueError(f"FrameSkip: skip must be an integer >= 1, got {skip!r}")
        gym.utils.RecordConstructorArgs.__init__(self, skip=skip)
        gym.Wrapper.__init__(self, env)
        self.skip = skip

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info
