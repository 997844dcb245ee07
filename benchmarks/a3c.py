"""A3C on CartPole-v1: steps/s with 2 workers over 1 worker, and time to solve next to A2C.

    .venv/bin/python benchmarks/a3c.py [--solve-seeds 0,1,2]

Steady-state steps/s is measured between the first and the last metrics row of a run, so
process start-up is left out; the time to solve counts everything from `learn()` on.
"""

from __future__ import annotations

import argparse
from functools import partial

from common import SOLVED, Result, median, median_round, print_table, set_threads, timed

from acrl import A3C, StopOnReturn
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config


def steady_steps_per_second(n_workers: int, n_envs: int, steps: int) -> float:
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=n_workers, n_envs=n_envs, n_steps=5, seed=0)
    model.learn(steps, log_interval=200)
    first, last = model.metrics.rows[0], model.metrics.rows[-1]
    return (last["timesteps"] - first["timesteps"]) / (last["wall_time"] - first["wall_time"])


def one_and_two_workers(n_envs: int, steps: int) -> tuple[float, float]:
    """Steps/s of 2 workers and of 1 (measured first)."""
    one = steady_steps_per_second(1, n_envs, steps)
    return steady_steps_per_second(2, n_envs, steps), one


def scaling(rounds: int = 3) -> list[Result]:
    """1 and 2 workers take turns for ``rounds`` rounds (``median_round``)."""
    results = []
    for n_envs, steps in ((1, 40_000), (8, 200_000)):
        ratio, two, one, note = median_round(partial(one_and_two_workers, n_envs, steps), rounds)
        results.append(
            Result(
                f"A3C 2 workers / 1 worker, {n_envs} env(s) each (steps/s)",
                two,
                one,
                ratio,
                1.7,
                "steps/s",
                note,
            )
        )
    return results


def time_to_solve(algo: str, seed: int) -> tuple[float, int | None]:
    overrides = {"seed": seed} if algo == "a2c" else {"seed": seed, "n_workers": 2}
    model = make_model(resolve_run_config("CartPole-v1", algo=algo, overrides=overrides))
    stop = StopOnReturn(SOLVED)
    return timed(lambda: model.learn(400_000, callback=stop)), stop.solved_at


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solve-seeds", default="", help="also time A2C and A3C to solve")
    args, _ = parser.parse_known_args()
    set_threads(1)
    results = scaling()
    print_table(results)
    if args.solve_seeds:
        print("\nTime to solve CartPole-v1 (last-100 mean >= 475), each algorithm's preset:")
        for algo, label in (("a2c", "A2C, 1 process"), ("a3c", "A3C, 2 workers")):
            runs = [time_to_solve(algo, int(s)) for s in args.solve_seeds.split(",")]
            solved = [(w, n) for w, n in runs if n is not None]
            print(
                f"  {label}: solved {len(solved)}/{len(runs)}, median "
                f"{median([w for w, _ in solved]):.1f} s, "
                f"{median([n for _, n in solved]):,.0f} steps"
            )
    return results


if __name__ == "__main__":
    main()
