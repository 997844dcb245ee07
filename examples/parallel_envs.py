"""Why parallel environments help: A2C on CartPole-v1 with 1, 4 and 16 environments.

Each run (one seed) takes the same number of environment steps with the zoo's A2C settings
(5 steps per env per update). With N environments an update averages N times as many
transitions from N independent episodes: its gradient estimate is much less noisy (here
the variance at one fixed policy falls by 15x from 1 to 4 envs) and costs little more to
compute, so the same steps take far less wall-clock time. With one env the run makes N times
as many updates per step, each from one stretch of correlated transitions: per step it can
learn as fast, but per second it is slow. Saves figures/parallel_envs.png.

    python examples/parallel_envs.py [--timesteps 100000] [--out FILE.png]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from acrl import A2C, make_vec_env
from acrl.learner.backends import make_backend
from acrl.learner.rollout import RolloutCollector
from acrl.learner.update import compute_gradients
from acrl.plotting.curves import save
from acrl.plotting.runs import load_run, moving_average

N_ENVS = (1, 4, 16)
GRADIENT_SAMPLES = 200


def gradient_variance(model: A2C, n_envs: int) -> tuple[float, float]:
    """Total variance and mean norm of the (unclipped) gradient over independent rollouts
    of ``n_envs`` environments, all from the model's current policy."""
    config = dataclasses.replace(model.config, max_grad_norm=1e12)  # no clipping
    backend = make_backend(model.compute.backend, model.policy, model.params)
    env = make_vec_env("CartPole-v1", n_envs)
    collector = RolloutCollector(
        env, model.policy, config.n_steps, model.device, seed=123, backend=backend
    )
    grads = []
    for _ in range(GRADIENT_SAMPLES):
        compute_gradients(backend, model.params, collector.collect(), config, 0.0)
        grads.append(model.params.grad.clone())
    stacked = torch.stack(grads)
    total_variance = stacked.var(dim=0).sum().item()
    return total_variance, stacked.norm(dim=1).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "figures/parallel_envs.png"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    fig = Figure(figsize=(12, 8), dpi=100)
    (curves, by_time), (noise, clock) = fig.subplots(2, 2)
    walls, variances = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in N_ENVS:
            model = A2C("MlpPolicy", "CartPole-v1", n_envs=n, seed=0, log_dir=Path(tmp) / str(n))
            start = time.perf_counter()
            model.learn(args.timesteps)
            walls.append(time.perf_counter() - start)
            run = load_run(Path(tmp) / str(n))
            steps, returns = run.episodes["timesteps"], run.episodes["return"]
            label = f"{n} env{'s' * (n > 1)}"
            curves.plot(steps, moving_average(returns, 100), label=label)
            by_time.plot(run.episodes["wall_time"], moving_average(returns, 100), label=label)
            print(
                f"{n:>2} envs: {walls[-1]:5.1f} s, last-100 return {model.recent_mean_return():.1f}"
            )
            if n == N_ENVS[-1]:
                reference = model  # the policy at which gradient noise is measured
    for n in N_ENVS:
        variance, norm = gradient_variance(reference, n)
        variances.append(variance)
        print(f"{n:>2} envs: gradient variance {variance:.4g} (mean norm {norm:.3g})")
    labels = [str(n) for n in N_ENVS]
    curves.set(xlabel="environment steps", ylabel="return (100-episode mean)",
               title=f"learning curves, {args.timesteps:,} steps each")  # fmt: skip
    by_time.set(xlabel="wall-clock seconds", ylabel="return (100-episode mean)",
                title="the same runs against wall-clock time")  # fmt: skip
    curves.legend()
    by_time.legend()
    noise.bar(labels, variances, color="C1")
    noise.set(yscale="log", xlabel="parallel environments", ylabel="total variance of the gradient",
              title=f"gradient noise at one policy ({GRADIENT_SAMPLES} rollouts each)")  # fmt: skip
    clock.bar(labels, walls, color="C2")
    clock.set(xlabel="parallel environments", ylabel="seconds",
              title=f"wall-clock time for {args.timesteps:,} steps")  # fmt: skip
    for ax in (curves, by_time, noise, clock):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    print(f"figure: {save(fig, args.out)}")


if __name__ == "__main__":
    main()
