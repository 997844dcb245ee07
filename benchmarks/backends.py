"""Whole-training steps/s of each compute backend and thread count, and what "auto" picks.

CartPole-v1, n_steps 5, through the public API (``A2C(..., backend=B, threads=T)``), one run
at a time; the best of 3 rounds of each. The rule that ``choose_compute`` applies (numpy
with one thread up to 1,024 transitions per update, torch with its default threads above)
should pick the fastest cell of every row.

    .venv/bin/python benchmarks/backends.py [--envs 8,64,256,1024]
"""

from __future__ import annotations

import argparse
import contextlib

from common import DEFAULT_THREADS, busy_core, timed

from acrl import A2C


def steps_per_second(n_envs: int, backend: str, threads: int, steps: int) -> float:
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, seed=0, backend=backend, threads=threads)
    model.learn(n_envs * 5 * 10)  # warm-up
    return max(
        steps / timed(lambda: model.learn(steps, reset_num_timesteps=False)) for _ in range(3)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="8,64,256,1024")
    args = parser.parse_args()
    cells = [("numpy", 1), ("torch", 1), ("torch", DEFAULT_THREADS)]
    header = "  ".join(f"{b} {t} thr".rjust(12) for b, t in cells)
    print(f"{'envs':>14}  {header}  auto picks")
    rows = [(int(n), False) for n in args.envs.split(",")] + [(8, True)]
    for n_envs, busy in rows:
        steps = max(20_000, n_envs * 5 * 60) // (4 if busy else 1)
        with busy_core() if busy else contextlib.nullcontext():
            rates = [steps_per_second(n_envs, b, t, steps) for b, t in cells]
        auto = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs).compute
        label = f"{n_envs}{' (busy core)' if busy else ''}"
        cols = "  ".join(f"{r:>12,.0f}" for r in rates)
        print(
            f"{label:>14}  {cols}  {auto.backend}, {auto.threads or DEFAULT_THREADS} thr",
            flush=True,
        )


if __name__ == "__main__":
    main()
