"""Partially observed control tasks: the env with its velocities hidden (zeroed).

A feed-forward policy sees positions only and must guess how they move; a recurrent one can
infer the velocities from the observations it remembers. The ids and the hidden entries are
rl-baselines3-zoo's (its MaskVelocityWrapper, as sb3-contrib's RecurrentPPO is benchmarked):
``CartPoleNoVel-v1`` and the others below, registered when first named (acrl.envs.families),
with the base env's time limit and reward threshold. Each is a subclass of the base env's
class, not a wrapper: a model records the id alone and rebuilds it as it is.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

NO_VELOCITY: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    # id: (the fully observed env, its kwargs, the observation entries that are velocities)
    "CartPoleNoVel-v1": ("CartPole-v1", {}, (1, 3)),  # cart velocity, pole angular velocity
    "PendulumNoVel-v1": ("Pendulum-v1", {}, (2,)),  # angular velocity
    "MountainCarNoVel-v0": ("MountainCar-v0", {}, (1,)),  # velocity
    "MountainCarContinuousNoVel-v0": ("MountainCarContinuous-v0", {}, (1,)),
    "LunarLanderNoVel-v3": ("LunarLander-v3", {}, (2, 3, 5)),  # vx, vy, angular velocity
    "LunarLanderContinuousNoVel-v3": ("LunarLander-v3", {"continuous": True}, (2, 3, 5)),
}


@functools.cache
def _masked(base_class: type[gym.Env], hidden: tuple[int, ...]) -> type[gym.Env]:
    """``base_class`` with the observation entries ``hidden`` zeroed in what reset and step
    return. A subclass, not a wrapper: the env is the registered id alone, which a model
    records and rebuilds as it is (a wrapper would be recorded beside it)."""

    class NoVelocity(base_class):  # type: ignore[valid-type,misc]
        def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            obs, info = super().reset(**kwargs)
            return _zeroed(obs, hidden), info

        def step(self, action: Any) -> tuple[Any, ...]:
            obs, *rest = super().step(action)
            return (_zeroed(obs, hidden), *rest)

    NoVelocity.__name__ = NoVelocity.__qualname__ = f"{base_class.__name__}NoVelocity"
    return NoVelocity


def _zeroed(obs: np.ndarray, hidden: tuple[int, ...]) -> np.ndarray:
    out = np.array(obs, copy=True)
    out[list(hidden)] = 0
    return out


def make_no_velocity(env_id: str, **kwargs: Any) -> gym.Env:
    """The registered entry point: ``env_id``'s base env, made with ``kwargs`` over its own,
    its velocities zeroed."""
    base, base_kwargs, hidden = NO_VELOCITY[env_id]
    spec = gym.spec(base)
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else None
    if not isinstance(creator, type):
        raise TypeError(f"{base}'s entry point is not an env class")
    return _masked(creator, hidden)(**{**spec.kwargs, **base_kwargs, **kwargs})


def register_no_velocity(env_id: str) -> None:
    base = gym.spec(NO_VELOCITY[env_id][0])
    gym.register(
        env_id,
        entry_point=functools.partial(make_no_velocity, env_id),
        max_episode_steps=base.max_episode_steps,
        reward_threshold=base.reward_threshold,
    )
