"""MinAtar Breakout against Stable-Baselines3: the same small CNN, the same hyperparameters, the
same budget and seeds, one process, seeds interleaved.

Both libraries train MinAtar's network (one 3x3 convolution of 16 filters over the 10x10x4
bool frame, 128 ReLU features, then the actor and critic heads straight on them, orthogonal
init) with A2C: 16 envs x 5 steps, RMSprop (alpha 0.99, eps 1e-5) at 2e-3, entropy 0.01,
value 0.5, gradient norm 0.5, gamma 0.99, no GAE. acrl builds it as its ``SmallCNN`` (the
``minatar`` preset's network); SB3 gets it as a ``features_extractor_class`` of the same shape.

Score: mean return of deterministic episodes on env seeds 10,000 and up, never trained on.
Wall-clock: ``learn()`` alone. acrl runs its defaults (its threads "auto": one here); SB3 its
``make_vec_env`` (DummyVecEnv + Monitor) on one torch thread, as in the other benchmarks.
The target: the same score or better in a third of the wall-clock or less.

    .venv/bin/python benchmarks/minatar_breakout.py [--seeds 3] [--timesteps N] [--quick]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from common import Result, median, print_table, set_threads
from torch import nn

ENV_ID = "MinAtar/Breakout-v1"
N_ENVS = 16
TIMESTEPS = 300_000
EVAL_SEED, EVAL_EPISODES = 10_000, 30
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-5
HYPERPARAMS: dict[str, Any] = dict(
    learning_rate=2e-3,
    n_steps=5,
    gamma=0.99,
    gae_lambda=1.0,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
    normalize_advantage=False,
)


class MinAtarCNN(nn.Module):
    """For SB3: MinAtar's network over (B, 10, 10, C) frames, as acrl's SmallCNN."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128) -> None:
        super().__init__()
        height, width, channels = observation_space.shape
        self.features_dim = features_dim
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * (height - 2) * (width - 2), features_dim),
            nn.ReLU(),
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.cnn(observations.permute(0, 3, 1, 2))


@dataclass(frozen=True)
class Run:
    score: float
    steps: int
    wall: float


def register() -> None:
    import minatar.gym

    if ENV_ID not in gym.registry:
        minatar.gym.register_envs()


def evaluate(model: Any) -> float:
    """Mean return of deterministic episodes, one env seed each."""
    env = gym.make(ENV_ID)
    returns = []
    for i in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def train_acrl(seed: int, timesteps: int) -> tuple[Run, str]:
    from acrl import A2C

    model = A2C(
        "CnnPolicy",
        ENV_ID,
        n_envs=N_ENVS,
        seed=seed,
        rms_prop_eps=RMSPROP_EPS,
        use_rms_prop=True,
        policy_kwargs={"image_channels": "last", "features_extractor_class": "SmallCNN"},
        **HYPERPARAMS,
    )
    start = time.perf_counter()
    model.learn(timesteps)
    wall = time.perf_counter() - start
    run = Run(evaluate(model), model.num_timesteps, wall)
    model.env.close()
    return run, model.compute.describe()


def sb3_minatar_model(env_id: str, n_envs: int, seed: int, hyperparams: dict[str, Any]) -> Any:
    """SB3's A2C with MinAtar's network (as acrl's SmallCNN) straight into the heads and
    RMSprop (alpha 0.99, eps ``rms_prop_eps``) over ``n_envs`` envs of ``env_id``."""
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3.common.env_util import make_vec_env

    hyper = dict(hyperparams)
    eps = hyper.pop("rms_prop_eps", RMSPROP_EPS)
    return SB3A2C(
        "MlpPolicy",  # SB3 sees no image in a bool Box: the extractor takes the frames as given
        make_vec_env(env_id, n_envs=n_envs, seed=seed),
        seed=seed,
        device="cpu",
        use_rms_prop=True,
        policy_kwargs={
            "features_extractor_class": MinAtarCNN,
            "features_extractor_kwargs": {"features_dim": 128},
            "net_arch": [],
            "ortho_init": True,
            "optimizer_class": torch.optim.RMSprop,
            "optimizer_kwargs": {"alpha": RMSPROP_ALPHA, "eps": eps, "weight_decay": 0},
        },
        **hyper,
    )


def train_sb3(seed: int, timesteps: int) -> Run:
    model = sb3_minatar_model(ENV_ID, N_ENVS, seed, HYPERPARAMS)
    start = time.perf_counter()
    model.learn(timesteps)
    wall = time.perf_counter() - start
    run = Run(evaluate(model), model.num_timesteps, wall)
    model.get_env().close()
    return run


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    parser.add_argument("--timesteps", type=int, default=TIMESTEPS, help="budget of every run")
    parser.add_argument("--quick", action="store_true", help="1 seed, 20k steps: a smoke run")
    args, _ = parser.parse_known_args()
    seeds = list(range(1 if args.quick else args.seeds))
    timesteps = 20_000 if args.quick else args.timesteps
    register()
    set_threads(1)
    print(f"== {ENV_ID}: {N_ENVS} envs x 5 steps, {timesteps:,} steps, seeds {seeds}")
    ours: list[Run] = []
    theirs: list[Run] = []
    compute = ""
    for seed in seeds:  # interleaved, so that the machine's drift hits both
        run, compute = train_acrl(seed, timesteps)
        ours.append(run)
        print(f"  seed {seed} acrl: score {run.score:.2f} in {run.wall:.1f} s ({compute})")
        set_threads(1)
        run = train_sb3(seed, timesteps)
        theirs.append(run)
        print(f"  seed {seed} SB3:  score {run.score:.2f} in {run.wall:.1f} s (1 torch thread)")
    acrl_score, sb3_score = median([r.score for r in ours]), median([r.score for r in theirs])
    pairs = sorted((b.wall / a.wall, a.wall, b.wall) for a, b in zip(ours, theirs, strict=True))
    ratio, acrl_wall, sb3_wall = pairs[len(pairs) // 2]
    results = [
        Result(
            f"MinAtar Breakout: score, median of {len(seeds)}",
            acrl_score,
            sb3_score,
            acrl_score / sb3_score if sb3_score > 0 else float(acrl_score >= sb3_score),
            1.0,
            "return",
            "scores acrl "
            + ", ".join(f"{r.score:.2f}" for r in ours)
            + " | SB3 "
            + ", ".join(f"{r.score:.2f}" for r in theirs)
            + f" (eval seeds {EVAL_SEED}+, {EVAL_EPISODES} episodes)",
        ),
        Result(
            "MinAtar Breakout: wall-clock of learn() (s)",
            acrl_wall,
            sb3_wall,
            ratio,
            3.0,
            "s",
            "SB3's time over acrl's, the median seed's pair; by seed "
            + ", ".join(f"{b.wall / a.wall:.2f}" for a, b in zip(ours, theirs, strict=True))
            + f"; acrl {compute}; SB3 DummyVecEnv, 1 torch thread",
        ),
    ]
    print()
    print_table(results)
    return results


if __name__ == "__main__":
    main()
