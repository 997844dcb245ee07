"""A3C on CartPole-v1: steps/s with 1 and 2 workers, and wall time to solve next to A2C.

Run one benchmark at a time on an otherwise idle machine:
    .venv/bin/python benchmarks/a3c_scaling.py [--seeds 0,1,2]

Steady-state steps/s is measured between the first and the last metrics row of a run, so
process start-up is left out; the time to solve includes everything from `learn()` on.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from acrl import A3C
from acrl.registry import make_model
from acrl.run_config import resolve_run_config


def steady_steps_per_second(model) -> float:
    rows = [r for r in model.metrics.rows if r["timesteps"] > 0]
    first, last = rows[0], rows[-1]
    return (last["timesteps"] - first["timesteps"]) / (last["wall_time"] - first["wall_time"])


def throughput(n_workers: int, n_envs: int, steps: int) -> float:
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=n_workers, n_envs=n_envs, n_steps=5, seed=0)
    model.learn(steps, log_interval=200)
    return steady_steps_per_second(model)


def time_to_solve(algo: str, seed: int, budget: int = 400_000) -> tuple[float | None, int | None]:
    overrides = {"seed": seed} if algo == "a2c" else {"seed": seed, "n_workers": 2}
    model = make_model(resolve_run_config("CartPole-v1", algo=algo, overrides=overrides))
    solved: list[tuple[float, int]] = []

    def stop_when_solved(m) -> bool:
        if len(m.recent_episodes) == 100 and m.recent_mean_return() >= 475:
            solved.append((time.perf_counter() - start, m.num_timesteps))
            return False
        return True

    start = time.perf_counter()
    model.learn(budget, callback=stop_when_solved)
    return solved[0] if solved else (None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("A3C steady-state throughput, CartPole-v1, n_steps=5 (steps/s)")
    print(f"{'envs/worker':>11}  {'1 worker':>9}  {'2 workers':>9}  {'ratio':>5}")
    for n_envs, steps in ((1, 40_000), (8, 200_000)):
        one, two = throughput(1, n_envs, steps), throughput(2, n_envs, steps)
        print(f"{n_envs:>11}  {one:>9,.0f}  {two:>9,.0f}  {two / one:>5.2f}")
    print("\nTime to solve CartPole-v1 (last-100 mean >= 475), each algorithm's preset")
    for algo in ("a2c", "a3c"):
        results = [time_to_solve(algo, int(s)) for s in args.seeds.split(",")]
        walls = [w for w, _ in results if w is not None]
        steps = [n for _, n in results if n is not None]
        label = "A2C (1 process)" if algo == "a2c" else "A3C (2 workers)"
        print(
            f"{label:<16} solved {len(walls)}/{len(results)}; median {statistics.median(walls):.1f} s, "
            f"{statistics.median(steps):,.0f} steps; each: "
            + ", ".join("-" if w is None else f"{w:.1f} s" for w, _ in results)
        )


if __name__ == "__main__":
    main()
