"""Recurrent A2C (LSTM) on partially observed tasks against sb3-contrib's RecurrentPPO, and
the cost of the memory in steps/s.

    .venv/bin/python benchmarks/recurrent.py [--tasks CartPoleNoVel-v1] [--seeds 0,1,2]
        [--skip quality,throughput,a3c]

- quality: each task's acrl preset (MlpLstmPolicy), the same settings with a feed-forward
  MlpPolicy (the floor: what memory adds), and RecurrentPPO with rl-baselines3-zoo's
  hyperparameters for the task, all at the zoo's budget, then acrl's preset at its own
  budget; seeds interleaved; 20 deterministic episodes per seed on env seeds 10,000+seed;
  wall-clock of learn(). One torch thread each.
- throughput: A2C steps/s on CartPole-v1, an LSTM of 64 units before the 64x64 trunks against
  the 64x64 trunks alone, at 8 and 64 envs (alternating rounds, median).
- a3c: A3C-LSTM steps/s with 2 workers over 1 (8 envs each).
Needs the bench extra (stable-baselines3, sb3-contrib): `make bench` installs it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import Result, median, median_round, print_table, set_threads

from acrl import A2C, A3C, evaluate_policy, make_vec_env
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config
from acrl.envs.families import ensure_registered

# rl-baselines3-zoo's RecurrentPPO (ppo_lstm) entries, for the tasks that have an acrl preset
ZOO_RPPO: dict[str, dict[str, Any]] = {
    "CartPoleNoVel-v1": {
        "n_envs": 8,
        "n_timesteps": 100_000,
        "normalize_obs": True,
        "kwargs": {
            "n_steps": 32,
            "batch_size": 256,
            "n_epochs": 20,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "learning_rate": "lin_0.001",
            "clip_range": "lin_0.2",
            "ent_coef": 0.0,
        },
    },
    "PendulumNoVel-v1": {
        "n_envs": 4,
        "n_timesteps": 100_000,
        "normalize_obs": True,
        "kwargs": {
            "n_steps": 1024,
            "n_epochs": 10,
            "gae_lambda": 0.95,
            "gamma": 0.9,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "ent_coef": 0.0,
            "use_sde": True,
            "sde_sample_freq": 4,
        },
    },
}


def _linear(value: Any) -> Any:
    """The zoo's "lin_x" as SB3's schedule: x times the remaining progress."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress: progress * start
    return value


class NormalizedPredictor:
    """RecurrentPPO with its VecNormalize statistics, as acrl's evaluate_policy calls it."""

    def __init__(self, model: Any, vec_normalize: Any) -> None:
        self.model, self.vec_normalize = model, vec_normalize

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        obs = self.vec_normalize.normalize_obs(obs) if self.vec_normalize is not None else obs
        return self.model.predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )


def evaluate(model: Any, env_id: str, seed: int) -> float:
    mean, _ = evaluate_policy(
        model, make_vec_env(env_id, 8, seed=10_000 + seed), 20, seed=10_000 + seed
    )
    return mean


def run_acrl(task: str, seed: int, budget: int, policy: str) -> tuple[float, float]:
    config = resolve_run_config(task, overrides={"seed": seed, "policy": policy})
    model = make_model(config)
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    return evaluate(model, task, seed), wall


def run_rppo(task: str, seed: int, budget: int) -> tuple[float, float]:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from torch import nn

    zoo = ZOO_RPPO[task]
    ensure_registered(task)
    env = sb3_make_vec_env(task, n_envs=zoo["n_envs"], seed=seed)
    norm = VecNormalize(env, norm_obs=True, norm_reward=False) if zoo["normalize_obs"] else None
    kwargs = {k: _linear(v) for k, v in zoo["kwargs"].items()}
    policy_kwargs = {
        "ortho_init": False,
        "activation_fn": nn.ReLU,
        "lstm_hidden_size": 64,
        "enable_critic_lstm": True,
        "net_arch": {"pi": [64], "vf": [64]},
    }
    model = RecurrentPPO(
        "MlpLstmPolicy",
        norm or env,
        seed=seed,
        device="cpu",
        policy_kwargs=policy_kwargs,
        **kwargs,
    )
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    if norm is not None:
        norm.training = False
    return evaluate(NormalizedPredictor(model, norm), task, seed), wall


def quality(tasks: list[str], seeds: list[int]) -> None:
    print(f"{'task':<18} {'agent':<34} {'median':>8} {'min':>8} {'max':>8} {'wall s':>8}")
    for task in tasks:
        budget = ZOO_RPPO[task]["n_timesteps"]
        runs: dict[str, list[tuple[float, float]]] = {}
        for seed in seeds:  # interleaved: the VM's drift hits all three
            runs.setdefault("acrl A2C, MlpLstmPolicy", []).append(
                run_acrl(task, seed, budget, "MlpLstmPolicy")
            )
            runs.setdefault("acrl A2C, MlpPolicy (no memory)", []).append(
                run_acrl(task, seed, budget, "MlpPolicy")
            )
            runs.setdefault("sb3-contrib RecurrentPPO (zoo)", []).append(
                run_rppo(task, seed, budget)
            )
            preset = int(resolve_run_config(task).n_timesteps)
            runs.setdefault(f"acrl A2C, MlpLstmPolicy, {preset:,} steps", []).append(
                run_acrl(task, seed, preset, "MlpLstmPolicy")
            )
            print(f"  seed {seed} done", flush=True)
        for name, results in runs.items():
            scores = [s for s, _ in results]
            print(
                f"{task:<18} {name:<34} {median(scores):>8.1f} {min(scores):>8.1f} "
                f"{max(scores):>8.1f} {median([w for _, w in results]):>8.1f}"
            )
        print(f"  budget {budget:,} steps each; wall: median over seeds", flush=True)


def steps_per_second(policy: str, n_envs: int, steps: int) -> float:
    model = A2C(policy, "CartPole-v1", n_envs=n_envs, n_steps=5, seed=0)
    model.learn(n_envs * 5 * 10)  # warm-up
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def throughput(rounds: int = 3) -> list[Result]:
    results = []
    for n_envs, steps in ((8, 40_000), (64, 160_000)):

        def one_round(n_envs: int = n_envs, steps: int = steps) -> tuple[float, float]:
            lstm = steps_per_second("MlpLstmPolicy", n_envs, steps)
            return lstm, steps_per_second("MlpPolicy", n_envs, steps)

        ratio, lstm, mlp, note = median_round(one_round, rounds)
        results.append(
            Result(
                f"A2C LSTM / MLP, CartPole-v1, {n_envs} envs (steps/s)",
                lstm,
                mlp,
                ratio,
                0.0,
                "steps/s",
                note,
            )
        )
    return results


def a3c_steady(n_workers: int, steps: int) -> float:
    model = A3C("MlpLstmPolicy", "CartPole-v1", n_workers=n_workers, n_envs=8, n_steps=5, seed=0)
    model.learn(steps, log_interval=100)
    first, last = model.metrics.rows[0], model.metrics.rows[-1]
    return (last["timesteps"] - first["timesteps"]) / (last["wall_time"] - first["wall_time"])


def a3c(rounds: int = 3) -> list[Result]:
    def one_round() -> tuple[float, float]:
        one = a3c_steady(1, 60_000)
        return a3c_steady(2, 60_000), one

    ratio, two, one, note = median_round(one_round, rounds)
    return [
        Result(
            "A3C-LSTM 2 workers / 1, 8 envs each (steps/s)", two, one, ratio, 1.7, "steps/s", note
        )
    ]


def main() -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(ZOO_RPPO))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skip", default="", help="comma-separated: quality,throughput,a3c")
    args, _ = parser.parse_known_args()  # run_all's own arguments pass through
    skip = set(filter(None, args.skip.split(",")))
    set_threads(1)
    results: list[Result] = []
    if "throughput" not in skip:
        results += throughput()
    if "a3c" not in skip:
        results += a3c()
    if results:
        print_table(results)
    if "quality" not in skip:
        quality(args.tasks.split(","), [int(s) for s in args.seeds.split(",")])
    return results


if __name__ == "__main__":
    main()
