"""LunarLander-v3, discrete and continuous, trained with acrl's presets: curves and videos.

The discrete preset trains for 200k steps (under a minute here); the continuous one for 5M
(about 20 minutes on one core). ``--scale 0.1`` trains each for a tenth of its budget, for a
first look; ``--continuous-scale`` scales the continuous one alone. Saves
figures/lunar_lander.png and one video of each trained agent in output/lunar_lander/.

    python examples/lunar_lander.py [--scale 1.0] [--continuous-scale 1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from acrl import evaluate_policy
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config
from acrl.plotting.curves import save
from acrl.plotting.runs import load_run, moving_average
from acrl.run.video import record_episodes

PRESETS = ("LunarLander-v3", "LunarLanderContinuous-v3")
HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each budget")
    parser.add_argument(
        "--continuous-scale", type=float, default=1.0, help="and of the continuous one's"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes")
    parser.add_argument("--out", type=Path, default=HERE / "figures/lunar_lander.png")
    parser.add_argument("--output", type=Path, default=HERE / "output/lunar_lander")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fig = Figure(figsize=(12, 4.5), dpi=100)
    for ax, preset in zip(fig.subplots(1, 2), PRESETS, strict=True):
        run = resolve_run_config(preset, overrides={"seed": args.seed})
        scale = args.scale * (args.continuous_scale if "Continuous" in preset else 1.0)
        budget = int(run.n_timesteps * scale)
        run_dir = args.output / preset
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run; logs in a used dir append
        model = make_model(run, log_dir=run_dir)
        model.learn(budget)
        mean, std = evaluate_policy(
            model, model.make_env(8, seed=10_000), args.episodes, seed=10_000
        )
        video = record_episodes(model, run.env_id, run_dir, 1, 0, run.env_kwargs, "video")[0]
        print(
            f"{preset}: {budget:,} steps, deterministic evaluation {mean:.1f} ± {std:.1f} "
            f"({args.episodes} episodes); video {video.path} (return {video.episode_return:.1f})"
        )
        episodes = load_run(run_dir).episodes
        ax.plot(episodes["timesteps"], episodes["return"], ".", ms=2, alpha=0.3, color="C0")
        ax.plot(episodes["timesteps"], moving_average(episodes["return"], 100), color="C0",
                lw=2, label="100-episode mean")  # fmt: skip
        ax.axhline(200, color="black", ls="--", lw=1, label="solved (200)")
        ax.set(xlabel="environment steps", ylabel="episodic return", ylim=(-600, 320),
               title=f"{preset}: eval {mean:.0f} ± {std:.0f} after {budget:,} steps")  # fmt: skip
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    print(f"figure: {save(fig, args.out)}")


if __name__ == "__main__":
    main()
