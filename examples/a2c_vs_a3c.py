"""A2C against A3C on CartPole-v1, each with its preset: return against steps and time.

A2C steps all environments in lockstep and makes one update per batch; A3C runs worker
processes (one per core here), each with its own environments and model copy, that push
gradients into a shared model without waiting for each other. Saves figures/a2c_vs_a3c.png.

    python examples/a2c_vs_a3c.py [--timesteps 400000] [--out FILE.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config
from acrl.plotting.curves import save
from acrl.plotting.runs import load_run, moving_average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "figures/a2c_vs_a3c.png"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    fig = Figure(figsize=(12, 4.5), dpi=100)
    by_steps, by_time = fig.subplots(1, 2)
    with tempfile.TemporaryDirectory() as tmp:
        for algo in ("a2c", "a3c"):
            run = resolve_run_config(
                "CartPole-v1", algo, overrides={"seed": args.seed, "n_timesteps": args.timesteps}
            )
            model = make_model(run, log_dir=Path(tmp) / algo)
            model.learn(run.n_timesteps)
            episodes = load_run(Path(tmp) / algo).episodes
            smooth = moving_average(episodes["return"], 100)
            workers = f" per worker, {model.n_workers} workers" if algo == "a3c" else ""
            label = f"{algo.upper()} ({run.n_envs} envs{workers})"
            by_steps.plot(episodes["timesteps"], smooth, label=label)
            by_time.plot(episodes["wall_time"], smooth, label=label)
            print(
                f"{label}: {episodes['wall_time'][-1]:.1f} s, "
                f"last-100 return {model.recent_mean_return():.1f}"
            )
    by_steps.set(xlabel="environment steps", ylabel="return (100-episode mean)",
                 title="return against environment steps")  # fmt: skip
    by_time.set(xlabel="wall-clock seconds", ylabel="return (100-episode mean)",
                title="return against wall-clock time")  # fmt: skip
    for ax in (by_steps, by_time):
        ax.axhline(475, color="black", ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    print(f"figure: {save(fig, args.out)}")


if __name__ == "__main__":
    main()
