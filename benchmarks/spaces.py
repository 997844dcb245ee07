"""Observation and action spaces beyond Box/Discrete against Stable-Baselines3: the same
hyperparameters, the same budget, the same seeds, one process, seeds interleaved.

- FrozenLake-v1, 8x8 map, ``is_slippery=False``: Discrete(64) observations (one-hot in both
  libraries), Discrete(4) actions, reward 1 only at the goal (success rate = mean return).
- GoalGrid-v0, defined below: a 6x6 grid with a new start and goal every episode; Dict
  observations {"agent": MultiDiscrete([6, 6]), "goal": MultiDiscrete([6, 6])} (the answer
  needs both keys) and MultiDiscrete([3, 3]) actions (a move in x and one in y, each -1, 0 or
  +1: king moves). +1 on reaching the goal, -0.05 every other step, at most 12 steps: the best
  return from Chebyshev distance d is 1 - 0.05 (d - 1).

Score: mean return of deterministic episodes on env seeds 10,000 and up, never trained on.
Steps/s: timesteps trained / wall-clock of ``learn()`` (evaluation and construction left out).
acrl runs its defaults (its own vector env, backend and threads, printed); SB3 its
``make_vec_env`` (DummyVecEnv + Monitor) on one torch thread, as in the other benchmarks.

    .venv/bin/python benchmarks/spaces.py [--seeds 3] [--timesteps N] [--quick]
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
from gymnasium import spaces

# Every hyperparameter, passed explicitly to both (SB3's A2C defaults are not all acrl's).
# Sparse rewards: 16-step rollouts and GAE(0.95) carry the goal's reward back along the path,
# an entropy bonus of 0.02 keeps the policy exploring until it has found the goal.
HYPERPARAMS: dict[str, Any] = dict(
    learning_rate=7e-4,
    n_steps=16,
    gamma=0.99,
    gae_lambda=0.95,
    ent_coef=0.02,
    vf_coef=0.5,
    max_grad_norm=0.5,
    normalize_advantage=False,
)
N_ENVS = 8
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-5
NET_ARCH = [64, 64]  # separate actor and critic trunks, tanh, orthogonal init, in both
EVAL_SEED = 10_000  # evaluation env seeds start here; training seeds are 0, 1, 2, ...


class GoalGrid(gym.Env):
    """Reach a goal on a grid: Dict observation (agent and goal cells), MultiDiscrete moves."""

    STEP_COST = 0.05
    metadata = {"render_modes": ["rgb_array"]}  # SB3's make_vec_env asks for rgb_array

    def __init__(self, size: int = 6, render_mode: str | None = None) -> None:
        self.size = size
        self.render_mode = render_mode
        cells = spaces.MultiDiscrete([size, size])
        self.observation_space = spaces.Dict({"agent": cells, "goal": cells})
        self.action_space = spaces.MultiDiscrete([3, 3])
        self.agent = np.zeros(2, np.int64)
        self.goal = np.zeros(2, np.int64)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"agent": self.agent.copy(), "goal": self.goal.copy()}

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        start, goal = self.np_random.choice(self.size * self.size, 2, replace=False)
        self.agent = np.array(divmod(int(start), self.size), np.int64)
        self.goal = np.array(divmod(int(goal), self.size), np.int64)
        return self._obs(), {}

    def step(self, action):
        move = np.asarray(action, np.int64) - 1
        self.agent = np.clip(self.agent + move, 0, self.size - 1)
        reached = bool((self.agent == self.goal).all())
        return self._obs(), 1.0 if reached else -self.STEP_COST, reached, False, {}

    def render(self) -> np.ndarray:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        image[tuple(self.goal)] = (0, 255, 0)
        image[tuple(self.agent)] = (255, 0, 0)
        return image

    def best_return(self) -> float:
        distance = int(np.abs(self.agent - self.goal).max())
        return 1.0 - self.STEP_COST * (distance - 1)


gym.register("GoalGrid-v0", entry_point=GoalGrid, max_episode_steps=12)


@dataclass(frozen=True)
class Task:
    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    policy: str
    timesteps: int
    eval_episodes: int


TASKS = [
    Task(
        "FrozenLake 8x8 non-slippery",
        "FrozenLake-v1",
        {"map_name": "8x8", "is_slippery": False},
        "MlpPolicy",
        150_000,
        10,  # the map is deterministic: every episode is the same, 10 show it
    ),
    Task(
        "GoalGrid Dict obs, MultiDiscrete actions",
        "GoalGrid-v0",
        {},
        "MultiInputPolicy",
        150_000,
        200,
    ),
]


@dataclass(frozen=True)
class Run:
    score: float
    steps: int
    wall: float

    @property
    def sps(self) -> float:
        return self.steps / self.wall


def evaluate(model: Any, task: Task) -> float:
    """Mean return of ``task.eval_episodes`` deterministic episodes, one env seed each."""
    env = gym.make(task.env_id, **task.env_kwargs)
    returns = []
    for i in range(task.eval_episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            if isinstance(env.action_space, spaces.Discrete):
                action = int(action)  # SB3 answers a 0-d array, which FrozenLake cannot hash
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def best_possible(task: Task) -> float | None:
    """GoalGrid's best mean return on the evaluation seeds (None for other tasks)."""
    if task.env_id != "GoalGrid-v0":
        return None
    env = GoalGrid()
    best = []
    for i in range(task.eval_episodes):
        env.reset(seed=EVAL_SEED + i)
        best.append(env.best_return())
    return float(np.mean(best))


def train_acrl(task: Task, seed: int, timesteps: int) -> tuple[Run, str]:
    from acrl import A2C

    model = A2C(
        task.policy,
        task.env_id,
        n_envs=N_ENVS,
        seed=seed,
        env_kwargs=task.env_kwargs,
        rms_prop_eps=RMSPROP_EPS,  # RMSprop's alpha is 0.99 in acrl, as SB3's
        use_rms_prop=True,
        policy_kwargs={"net_arch": NET_ARCH, "activation": "tanh", "ortho_init": True},
        **HYPERPARAMS,
    )
    start = time.perf_counter()
    model.learn(timesteps)
    wall = time.perf_counter() - start
    run = Run(evaluate(model, task), model.num_timesteps, wall)
    model.env.close()
    return run, model.compute.describe()


def train_sb3(task: Task, seed: int, timesteps: int) -> Run:
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(task.env_id, n_envs=N_ENVS, seed=seed, env_kwargs=task.env_kwargs)
    model = SB3A2C(
        task.policy,
        env,
        seed=seed,
        device="cpu",
        use_rms_prop=True,
        policy_kwargs={
            "net_arch": NET_ARCH,
            "activation_fn": torch.nn.Tanh,
            "ortho_init": True,
            "share_features_extractor": True,  # SB3's default; its extractors here are flatten
            "optimizer_class": torch.optim.RMSprop,
            "optimizer_kwargs": {"alpha": RMSPROP_ALPHA, "eps": RMSPROP_EPS, "weight_decay": 0},
        },
        **HYPERPARAMS,
    )
    start = time.perf_counter()
    model.learn(timesteps)
    wall = time.perf_counter() - start
    run = Run(evaluate(model, task), model.num_timesteps, wall)
    env.close()
    return run


def score_ratio(ours: float, theirs: float) -> float:
    """acrl's score over SB3's; where SB3's is 0 or below, 1 if acrl's is at least as high."""
    if theirs > 0:
        return ours / theirs
    return 1.0 if ours >= theirs else 0.0


def bench_task(task: Task, seeds: list[int], timesteps: int) -> list[Result]:
    print(f"== {task.name}: {task.env_id} {task.env_kwargs or ''} {task.policy}, ", end="")
    print(f"{N_ENVS} envs, {timesteps:,} steps, seeds {seeds}")
    ours: list[Run] = []
    theirs: list[Run] = []
    compute = ""
    for seed in seeds:  # interleaved, so that the machine's drift hits both
        run, compute = train_acrl(task, seed, timesteps)
        ours.append(run)
        print(f"  seed {seed} acrl: score {run.score:.3f}, {run.sps:,.0f} steps/s ({compute})")
        set_threads(1)  # learn() restored torch's threads; SB3 runs on one, as elsewhere
        run = train_sb3(task, seed, timesteps)
        theirs.append(run)
        print(f"  seed {seed} SB3:  score {run.score:.3f}, {run.sps:,.0f} steps/s (1 torch thread)")
    best = best_possible(task)
    best_note = "" if best is None else f"; best possible {best:.3f}"
    acrl_score, sb3_score = median([r.score for r in ours]), median([r.score for r in theirs])
    pairs = sorted((a.sps / b.sps, a.sps, b.sps) for a, b in zip(ours, theirs, strict=True))
    ratio, acrl_sps, sb3_sps = pairs[len(pairs) // 2]
    return [
        Result(
            f"{task.name}: score, median of {len(seeds)}",
            acrl_score,
            sb3_score,
            score_ratio(acrl_score, sb3_score),
            1.0,
            "return",
            "scores acrl "
            + ", ".join(f"{r.score:.3f}" for r in ours)
            + " | SB3 "
            + ", ".join(f"{r.score:.3f}" for r in theirs)
            + f" (eval seeds {EVAL_SEED}+, {task.eval_episodes} episodes{best_note})",
        ),
        Result(
            f"{task.name}: steps/s of learn()",
            acrl_sps,
            sb3_sps,
            ratio,
            2.0,
            "steps/s",
            "the median seed's pair; ratios by seed "
            + ", ".join(f"{a.sps / b.sps:.2f}" for a, b in zip(ours, theirs, strict=True))
            + f"; acrl {compute}; SB3 DummyVecEnv, 1 torch thread",
        ),
    ]


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    parser.add_argument("--timesteps", type=int, default=None, help="budget of every run")
    parser.add_argument("--quick", action="store_true", help="1 seed, 20k steps: a smoke run")
    args, _ = parser.parse_known_args()
    seeds = list(range(1 if args.quick else args.seeds))
    set_threads(1)  # SB3's torch threads; acrl's learn() sets its own and restores these
    results = []
    for task in TASKS:
        timesteps = args.timesteps or (20_000 if args.quick else task.timesteps)
        results += bench_task(task, seeds, timesteps)
        print()
    print_table(results)
    return results


if __name__ == "__main__":
    main()
