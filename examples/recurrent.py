"""Memory on a partially observed task: CartPole without its velocities, with and without an
LSTM.

CartPoleNoVel-v1 zeroes the cart's and the pole's velocities in every observation: a
feed-forward policy sees where the pole is, not where it is going. An LSTM between the
encoder and the heads can infer the velocities from the positions it remembers. Both train
with the same preset settings (acrl/presets/a2c.yml, CartPoleNoVel-v1), only the policy
differs. Saves figures/recurrent.png: the training return against steps and against time,
and prints each one's deterministic evaluation.

    python examples/recurrent.py [--timesteps 500000] [--seed 0] [--out FILE.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from acrl import evaluate_policy
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config
from acrl.plotting.curves import save
from acrl.plotting.runs import load_run, moving_average

TASK = "CartPoleNoVel-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures/recurrent.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fig = Figure(figsize=(12, 4.5), dpi=100)
    by_steps, by_time = fig.subplots(1, 2)
    with tempfile.TemporaryDirectory() as tmp:
        for policy, label in (("MlpPolicy", "feed-forward (MLP)"), ("MlpLstmPolicy", "LSTM")):
            overrides = {"seed": args.seed, "n_timesteps": args.timesteps, "policy": policy}
            run = resolve_run_config(TASK, overrides=overrides)
            model = make_model(run, log_dir=Path(tmp) / policy)
            model.learn(run.n_timesteps)
            env = model.make_env(8, seed=10_000 + args.seed)
            mean, std = evaluate_policy(model, env, 20, seed=10_000 + args.seed)
            episodes = load_run(Path(tmp) / policy).episodes
            smooth = moving_average(episodes["return"], 100)
            by_steps.plot(episodes["timesteps"], smooth, label=label)
            by_time.plot(episodes["wall_time"], smooth, label=label)
            print(
                f"{label}: {episodes['wall_time'][-1]:.1f} s; 20 deterministic episodes "
                f"{mean:.1f} +/- {std:.1f}"
            )
    by_steps.set(xlabel="environment steps", ylabel="return (100-episode mean)",
                 title=f"{TASK}: return against environment steps")  # fmt: skip
    by_time.set(xlabel="wall-clock seconds", ylabel="return (100-episode mean)",
                title="return against wall-clock time")  # fmt: skip
    for ax in (by_steps, by_time):
        ax.axhline(500, color="black", ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    print(f"figure: {save(fig, args.out)}")


if __name__ == "__main__":
    main()
