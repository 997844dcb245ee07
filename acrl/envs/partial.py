"""Partially observed classic-control tasks: the env with its velocities hidden (zeroed).

A feed-forward policy sees positions only and must guess how they move; a recurrent one can
infer the velocities from the observations it remembers. The ids and the hidden entries are
rl-baselines3-zoo's (its MaskVelocityWrapper, as sb3-contrib's RecurrentPPO is benchmarked):
``CartPoleNoVel-v1`` and the others below, registered when first named.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

NO_VELOCITY: dict[str, tuple[str, tuple[int, ...]]] = {
    # id: (the fully observed env, the observation entries that are velocities)
    "CartPoleNoVel-v1": ("CartPole-v1", (1, 3)),  # cart velocity, pole angular velocity
    "PendulumNoVel-v1": ("Pendulum-v1", (2,)),  # angular velocity
    "MountainCarContinuousNoVel-v0": ("MountainCarContinuous-v0", (1,)),  # velocity
    "LunarLanderNoVel-v3": ("LunarLander-v3", (2, 3, 5)),  # vx, vy, angular velocity
}


class MaskVelocity(gym.ObservationWrapper):
    """Zero the observation entries ``hidden``: the space is unchanged, their values are not
    seen."""

    def __init__(self, env: gym.Env, hidden: tuple[int, ...]) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        self.mask = np.ones(space.shape, dtype=space.dtype)
        self.mask[list(hidden)] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self.mask


def make_no_velocity(base: str, hidden: tuple[int, ...], **kwargs: Any) -> gym.Env:
    """The registered entry point: ``base`` made with ``kwargs``, its velocities hidden."""
    return MaskVelocity(gym.make(base, **kwargs), hidden)


def register_no_velocity(env_id: str) -> None:
    base, hidden = NO_VELOCITY[env_id]
    gym.register(
        env_id,
        entry_point="acrl.envs.partial:make_no_velocity",
        kwargs={"base": base, "hidden": hidden},
    )
