"""CartPole-v1 against Stable-Baselines3: throughput at the zoo config, time to solve, and
steps/s of a one-line ``A2C("MlpPolicy", "CartPole-v1", n_envs=N)`` at every default.

.venv/bin/python benchmarks/cartpole.py [--seeds 0,1,2,3,4] [--steps 100000]
"""

from __future__ import annotations

import argparse
import contextlib

from common import (
    DEFAULT_THREADS,
    SOLVED,
    Result,
    busy_core,
    median,
    median_round,
    print_table,
    sb3_a2c,
    sb3_solve_callback,
    set_threads,
    timed,
)

from acrl import A2C, StopOnReturn
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config

ZOO = dict(
    learning_rate=7e-4,
    n_steps=5,
    gamma=0.99,
    gae_lambda=1.0,
    ent_coef=0.0,
    vf_coef=0.5,
    max_grad_norm=0.5,
    rms_prop_eps=1e-5,
)


def throughput(steps: int, rounds: int = 3) -> Result:
    """Steps/s of learn() at the zoo config (8 envs x 5 steps, identical hyperparameters).

    acrl and SB3 take turns for ``rounds`` rounds of ``steps`` each (``median_round``).
    """
    ours = A2C("MlpPolicy", "CartPole-v1", n_envs=8, seed=0, device="cpu", **ZOO)
    theirs = sb3_a2c("CartPole-v1", 8, 0, **ZOO)
    ours.learn(2_000)  # warm-up, outside the timing
    theirs.learn(2_000)

    def one_round() -> tuple[float, float]:
        acrl_sps = steps / timed(lambda: ours.learn(steps, reset_num_timesteps=False))
        return acrl_sps, steps / timed(lambda: theirs.learn(steps, reset_num_timesteps=False))

    ratio, acrl_sps, sb3_sps, note = median_round(one_round, rounds)
    return Result(
        "throughput, CartPole 8 envs x 5 steps (steps/s)",
        acrl_sps,
        sb3_sps,
        ratio,
        3.5,
        "steps/s",
        f"{note}; {ours.compute.describe()}; SB3 on 1 torch thread",
    )


def api_defaults(n_envs: int, steps: int, rounds: int = 3, busy: bool = False) -> Result:
    """Steps/s of ``A2C("MlpPolicy", "CartPole-v1", n_envs=N)`` in both libraries, every
    other setting at its default (the same hyperparameters: SB3's defaults are acrl's), torch
    at its default threads: what a user who writes one line gets. With ``busy``, another
    process spins on one core meanwhile."""
    set_threads(DEFAULT_THREADS)
    ours = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, seed=0)
    theirs = sb3_a2c("CartPole-v1", n_envs, 0)
    ours.learn(n_envs * 100)  # warm-up, outside the timing
    theirs.learn(n_envs * 100)

    def one_round() -> tuple[float, float]:
        acrl_sps = steps / timed(lambda: ours.learn(steps, reset_num_timesteps=False))
        return acrl_sps, steps / timed(lambda: theirs.learn(steps, reset_num_timesteps=False))

    with busy_core() if busy else contextlib.nullcontext():
        ratio, acrl_sps, sb3_sps, note = median_round(one_round, rounds)
    load = ", another process busy on one core" if busy else ""
    return Result(
        f"API defaults, {n_envs} envs{load} (steps/s)",
        acrl_sps,
        sb3_sps,
        ratio,
        1.0,
        "steps/s",
        f"{note}; {ours.compute.describe()}; SB3 on {DEFAULT_THREADS} torch threads",
    )


def solve_acrl(seed: int, preset: str, budget: int) -> tuple[float, int | None]:
    run = resolve_run_config("CartPole-v1", preset=preset, overrides={"seed": seed})
    model = make_model(run)
    stop = StopOnReturn(SOLVED)
    wall = timed(lambda: model.learn(budget, callback=stop))
    return wall, stop.solved_at


def solve_sb3(seed: int, budget: int) -> tuple[float, int | None]:
    model = sb3_a2c("CartPole-v1", 8, seed, **ZOO)
    callback = sb3_solve_callback()
    wall = timed(lambda: model.learn(budget, callback=callback))
    return wall, callback.solved_at


def time_to_solve(seeds: list[int]) -> list[Result]:
    ours = [solve_acrl(s, "CartPole-v1", 400_000) for s in seeds]
    zoo = [solve_acrl(s, "CartPole-v1-zoo", 500_000) for s in seeds]
    theirs = [solve_sb3(s, 500_000) for s in seeds]

    def describe(runs):
        return ", ".join(f"{w:.1f}s/{n // 1000}k" if n else f"{w:.1f}s/unsolved" for w, n in runs)

    acrl_wall = median([w for w, n in ours])
    sb3_wall = median([w for w, n in theirs])
    zoo_steps = median([n or 500_000 for _, n in zoo])
    sb3_steps = median([n or 500_000 for _, n in theirs])
    return [
        Result(
            "time to solve CartPole, median of seeds (s)",
            acrl_wall,
            sb3_wall,
            sb3_wall / acrl_wall,
            10.0,
            "s",
            f"acrl preset: {describe(ours)} | SB3 zoo: {describe(theirs)}",
        ),
        Result(
            "steps to solve at SB3's zoo hyperparameters",
            zoo_steps,
            sb3_steps,
            sb3_steps / zoo_steps,
            0.8,
            "steps",
            f"acrl zoo preset: {describe(zoo)} (about 1 = same sample efficiency)",
            1.25,
        ),
    ]


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=100_000)
    args, _ = parser.parse_known_args()
    set_threads(1)  # SB3 as in acrl's protocol; acrl's learn() picks its own (one here)
    results = [throughput(args.steps), *time_to_solve([int(s) for s in args.seeds.split(",")])]
    results += [
        api_defaults(8, args.steps),
        api_defaults(8, args.steps // 4, busy=True),
        api_defaults(1024, args.steps * 10, rounds=1),
    ]
    set_threads(1)
    print_table(results)
    return results


if __name__ == "__main__":
    main()
