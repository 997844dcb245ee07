"""CartPole-v1 with 1024 envs x 5 steps: acrl against a bare PyTorch learner ceiling.

The ceiling is a loop written directly in PyTorch that only does what the learner must:
act on 1024 observations 5 times (forward + sampling), then one A2C update on the 5,120
samples (forward, loss, backward, clip, RMSprop), with the same network and no environment.

    .venv/bin/python benchmarks/scale.py
"""

from __future__ import annotations

import torch
from common import DEFAULT_THREADS, Result, median_round, print_table, set_threads, timed
from torch import nn

from acrl import A2C

N_ENVS, N_STEPS = 1024, 5


def bare_pytorch_steps_per_second(iterations: int) -> float:
    def mlp(out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, out)
        )

    actor, critic = mlp(2), mlp(1)
    params = [*actor.parameters(), *critic.parameters()]
    optimizer = torch.optim.RMSprop(params, lr=7e-4, alpha=0.99, eps=1e-5)
    obs = torch.randn(N_STEPS, N_ENVS, 4)
    returns = torch.randn(N_STEPS * N_ENVS)

    def iteration() -> None:
        actions = []
        with torch.inference_mode():
            for t in range(N_STEPS):
                probs = torch.softmax(actor(obs[t]), -1)
                actions.append(torch.multinomial(probs, 1).squeeze(-1))
                critic(obs[t])
        flat = obs.reshape(-1, 4)
        log_p = torch.log_softmax(actor(flat), -1)
        chosen = log_p.gather(-1, torch.cat(actions).unsqueeze(-1)).squeeze(-1)
        values = critic(flat).squeeze(-1)
        advantages = returns - values.detach()
        entropy = -(log_p.exp() * log_p).sum(-1).mean()
        loss = (
            -(advantages * chosen).mean() + 0.5 * (returns - values).pow(2).mean() - 0.0 * entropy
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 0.5)
        optimizer.step()

    for _ in range(5):
        iteration()
    return iterations * N_ENVS * N_STEPS / timed(lambda: [iteration() for _ in range(iterations)])


def acrl_steps_per_second(model: A2C, steps: int) -> float:
    return steps / timed(lambda: model.learn(steps, reset_num_timesteps=False))


def main(rounds: int = 3) -> list[Result]:
    """acrl and the bare loop take turns for ``rounds`` rounds; the median round's ratio."""
    set_threads(DEFAULT_THREADS)  # the bare loop as torch runs it; acrl with its own defaults
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=N_ENVS, n_steps=N_STEPS, seed=0)
    model.learn(N_ENVS * N_STEPS * 5)  # warm-up, outside the timing
    ratio, ours, ceiling, note = median_round(
        lambda: (acrl_steps_per_second(model, 1_000_000), bare_pytorch_steps_per_second(200)),
        rounds,
    )
    results = [
        Result(
            "scale, 1024 envs x 5 steps, vs bare PyTorch (steps/s)",
            ours,
            ceiling,
            ratio,
            0.9,
            "steps/s",
            f"{note}; acrl: {model.compute.describe()}; bare loop: {DEFAULT_THREADS} threads",
        )
    ]
    print_table(results)
    return results


if __name__ == "__main__":
    main()
