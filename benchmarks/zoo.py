"""rl-baselines3-zoo's A2C entries and published results, and Stable-Baselines3's A2C trained
with them: the side-by-side yardstick of benchmarks/quality.py.

Figures: the zoo's benchmark.md (one run each, deterministic evaluation; LunarLander on v2,
MuJoCo on v3). Settings: its hyperparams/a2c.yml (2026-04), written out here so that a run
needs neither the zoo nor a network. ``normalize: true`` there is SB3's VecNormalize of
observations and rewards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acrl import evaluate_policy, make_vec_env

# name: (mean, std, budget) in the zoo's benchmark.md (MuJoCo's on v3)
ZOO_RESULTS: dict[str, tuple[float, float, int]] = {
    "CartPole-v1": (500.0, 0.0, 500_000),
    "Acrobot-v1": (-83.353, 17.213, 500_000),
    "MountainCar-v0": (-111.263, 24.087, 1_000_000),
    "MountainCarContinuous-v0": (91.166, 0.255, 100_000),
    "Pendulum-v1": (-162.965, 103.210, 1_000_000),
    "LunarLander-v3": (155.751, 80.419, 200_000),
    "LunarLanderContinuous-v3": (84.225, 145.906, 5_000_000),
    "BipedalWalker-v3": (299.754, 23.459, 5_000_000),
    "HalfCheetah-v5": (3041.174, 157.265, 1_000_000),
    "Hopper-v5": (733.454, 376.574, 1_000_000),
    "Walker2d-v5": (581.835, 127.597, 1_000_000),
    "Ant-v5": (-44.023, 63.206, 1_000_000),
    "Swimmer-v5": (200.627, 2.544, 1_000_000),
}

_SDE = {
    "ent_coef": 0.0,
    "max_grad_norm": 0.5,
    "n_steps": 8,
    "gae_lambda": 0.9,
    "vf_coef": 0.4,
    "gamma": 0.99,
    "use_rms_prop": True,
    "normalize_advantage": False,
    "use_sde": True,
    "policy_kwargs": {"log_std_init": -2, "ortho_init": False},
}


@dataclass(frozen=True)
class ZooEntry:
    """One a2c.yml entry: env id and kwargs, n_envs, VecNormalize, and A2C's kwargs."""

    env_id: str
    n_envs: int = 1
    normalize: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)


ZOO_SETTINGS: dict[str, ZooEntry] = {
    "CartPole-v1": ZooEntry("CartPole-v1", 8, kwargs={"ent_coef": 0.0}),
    "Acrobot-v1": ZooEntry("Acrobot-v1", 16, True, {"ent_coef": 0.0}),
    "MountainCar-v0": ZooEntry("MountainCar-v0", 16, True, {"ent_coef": 0.0}),
    "MountainCarContinuous-v0": ZooEntry(
        "MountainCarContinuous-v0",
        4,
        True,
        {
            "n_steps": 100,
            "ent_coef": 0.0,
            "use_sde": True,
            "sde_sample_freq": 16,
            "policy_kwargs": {"log_std_init": 0.0, "ortho_init": False},
        },
    ),
    "Pendulum-v1": ZooEntry(
        "Pendulum-v1", 8, True, {**_SDE, "gamma": 0.9, "learning_rate": "lin_7e-4"}
    ),
    "LunarLander-v3": ZooEntry(
        "LunarLander-v3",
        8,
        kwargs={"gamma": 0.995, "n_steps": 5, "learning_rate": "lin_8.3e-4", "ent_coef": 1e-5},
    ),
    "LunarLanderContinuous-v3": ZooEntry(
        "LunarLander-v3", 4, True, {**_SDE, "learning_rate": "lin_7e-4"}, {"continuous": True}
    ),
    "BipedalWalker-v3": ZooEntry(
        "BipedalWalker-v3", 16, True, {**_SDE, "learning_rate": "lin_9.6e-4"}
    ),
    # The MuJoCo entries, and (after Swimmer) the ids a2c.yml has no entry or published
    # figure for, given the settings its MuJoCo entries share (1 env, SB3's defaults,
    # VecNormalize) so that acrl's presets for them have a peer too.
    **{
        name: ZooEntry(name, 1, True, {"gamma": 0.9999} if name == "Swimmer-v5" else {})
        for name in (
            "HalfCheetah-v5",
            "Hopper-v5",
            "Walker2d-v5",
            "Ant-v5",
            "Swimmer-v5",
            "InvertedPendulum-v5",
            "InvertedDoublePendulum-v5",
            "Reacher-v5",
            "Humanoid-v5",
        )
    },
}


def _schedule(value: Any) -> Any:
    """The zoo's "lin_X": X times the remaining fraction of training."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda remaining: remaining * start
    return value


class _Normalized:
    """SB3's model seen through its VecNormalize's frozen observation statistics."""

    def __init__(self, model: Any, vec_normalize: Any) -> None:
        self.model, self.vec_normalize = model, vec_normalize

    def predict(self, obs: np.ndarray, **kwargs: Any) -> Any:
        return self.model.predict(self.vec_normalize.normalize_obs(obs), **kwargs)


def sb3_zoo_run(name: str, seed: int, budget: int) -> tuple[float, float]:
    """Train SB3's A2C with the zoo's entry for ``name`` for ``budget`` steps; evaluate 20
    deterministic episodes on 8 envs seeded 10,000 + seed, as quality.py evaluates acrl:
    (mean return, wall seconds of learn())."""
    import time

    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    entry = ZOO_SETTINGS[name]
    kwargs = {k: _schedule(v) for k, v in entry.kwargs.items()}
    env = sb3_make_vec_env(entry.env_id, entry.n_envs, seed=seed, env_kwargs=entry.env_kwargs)
    if entry.normalize:
        env = VecNormalize(env, gamma=kwargs.get("gamma", 0.99))
    model = SB3A2C("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    predictor = _Normalized(model, env) if entry.normalize else model
    eval_env = make_vec_env(entry.env_id, 8, seed=10_000 + seed, env_kwargs=entry.env_kwargs)
    mean, _ = evaluate_policy(predictor, eval_env, 20, seed=10_000 + seed)
    env.close()
    return float(mean), wall
