"""Learning quality of the A2C presets against rl-baselines3-zoo's published A2C results.

Trains each preset for 3 seeds at its budget, evaluates 20 deterministic episodes per seed,
and prints budget, median, min and max evaluation return, wall time and the zoo's figure.
Not part of `make test`: the full run takes hours on 2 cores (LunarLanderContinuous alone is
5M steps per seed). `--scale 0.2` runs every budget at a fifth, for a first look.

    .venv/bin/python benchmarks/quality.py [--presets CartPole-v1,Pendulum-v1] [--seeds 0,1,2]
        [--log-dir runs/quality]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from acrl import evaluate_policy
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config

# rl-baselines3-zoo's A2C results (one run each, deterministic evaluation); LunarLander on v2.
ZOO = {
    "CartPole-v1": (500.0, 0.0, 500_000),
    "LunarLander-v3": (155.8, 80.4, 200_000),
    "LunarLanderContinuous": (84.2, 145.9, 5_000_000),
    "Pendulum-v1": (-163.0, 103.2, 1_000_000),
}


def run(preset: str, seed: int, scale: float, log_dir: Path | None) -> tuple[float, float, int]:
    config = resolve_run_config(preset, overrides={"seed": seed})
    budget = max(int(config.n_timesteps * scale), config.n_envs * config.hyperparams.n_steps)
    run_dir = None if log_dir is None else log_dir / preset / f"seed-{seed}"
    model = make_model(config, log_dir=run_dir)
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    if run_dir is not None:
        model.save(run_dir / "model.acrl")  # acrl eval / video / plot --policy-slice read it
    mean, _ = evaluate_policy(model, model.make_env(8, seed=10_000 + seed), 20, seed=10_000 + seed)
    return mean, wall, budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(ZOO))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each budget")
    parser.add_argument(
        "--log-dir", type=Path, help="keep each run's logs in LOG_DIR/PRESET/seed-S (for acrl plot)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'preset':<22} {'budget':>9} {'median':>8} {'min':>8} {'max':>8} {'wall s':>7}  zoo")
    for preset in args.presets.split(","):
        results = [run(preset, int(s), args.scale, args.log_dir) for s in args.seeds.split(",")]
        returns = [r for r, _, _ in results]
        zoo_mean, zoo_std, zoo_budget = ZOO.get(preset, (float("nan"), float("nan"), 0))
        print(
            f"{preset:<22} {results[0][2]:>9,} {statistics.median(returns):>8.1f} "
            f"{min(returns):>8.1f} {max(returns):>8.1f} {sum(w for _, w, _ in results):>7.0f}  "
            f"{zoo_mean:.1f} +/- {zoo_std:.1f} at {zoo_budget:,}"
        )


if __name__ == "__main__":
    main()
