"""GAE(λ) on one short CartPole episode: advantages for λ ∈ {0, 0.5, 0.95, 1}.

A briefly trained A2C agent plays one episode; its critic gives V(s_t). Generalized
advantage estimation weighs the TD errors δ_{t+l} by (γλ)^l:

    A_t = Σ_l (γλ)^l δ_{t+l},   δ_t = r_t + γ V(s_{t+1}) (1 - terminated_t) - V(s_t)

λ = 0 is the one-step TD error (low variance, biased by the critic), λ = 1 the Monte-Carlo
return minus V(s_t) (unbiased, high variance). The script checks both ends, prints the
advantages and saves figures/gae_lambda.png.

    python examples/gae_lambda.py [--out FILE.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from matplotlib.figure import Figure

from acrl import A2C
from acrl.model.returns import compute_gae, td_errors
from acrl.plotting.curves import save

LAMBDAS = (0.0, 0.5, 0.95, 1.0)
GAMMA = 0.99


def play_episode(model: A2C, seed: int) -> dict[str, torch.Tensor]:
    """One episode with sampled actions: rewards, V(s_t), V(s_{t+1}) and the end flags."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    done = terminated = False
    while not done:
        action, _ = model.predict(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        done = terminated or truncated
    with torch.no_grad():
        values = model.policy.value(torch.as_tensor(np.array(observations), dtype=torch.float32))
    steps = len(rewards)
    end = torch.zeros(steps, 1)
    end[-1] = 1.0
    return {
        "rewards": torch.tensor(rewards, dtype=torch.float32).unsqueeze(1),
        "values": values[:-1].unsqueeze(1),
        "next_values": values[1:].unsqueeze(1),
        "terminated": end if terminated else torch.zeros(steps, 1),
        "done": end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "figures/gae_lambda.png"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=8, gamma=GAMMA, seed=0).learn(5_000)
    episode = play_episode(model, seed=1)
    advantages = {
        lam: compute_gae(**episode, gamma=GAMMA, gae_lambda=lam)[0].squeeze(1) for lam in LAMBDAS
    }
    # The two ends: λ = 0 gives the TD errors, λ = 1 the discounted return minus V(s_t).
    deltas = td_errors(
        episode["rewards"], episode["values"], episode["next_values"], episode["terminated"], GAMMA
    ).squeeze(1)
    torch.testing.assert_close(advantages[0.0], deltas)
    rewards = episode["rewards"].squeeze(1)
    tail = episode["next_values"][-1, 0] * (1 - episode["terminated"][-1, 0])
    returns = torch.zeros_like(rewards)
    running = tail
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + GAMMA * running
        returns[t] = running
    torch.testing.assert_close(advantages[1.0], returns - episode["values"].squeeze(1))

    print(f"one episode of {len(rewards)} steps (γ = {GAMMA}); advantages A_t per λ")
    print(" t    V(s_t)   " + "".join(f"λ={lam:<8g}" for lam in LAMBDAS))
    for t in range(len(rewards)):
        row = "".join(f"{advantages[lam][t]:<10.3f}" for lam in LAMBDAS)
        print(f"{t:>2}  {episode['values'][t, 0]:8.3f}   {row}")

    fig = Figure(figsize=(12, 4.5), dpi=100)
    left, right = fig.subplots(1, 2)
    for lam in LAMBDAS:
        left.plot(advantages[lam].numpy(), marker=".", label=f"λ = {lam:g}")
        lags = np.arange(40)
        right.plot(lags, (GAMMA * lam) ** lags, marker=".", label=f"λ = {lam:g}")
    left.set(xlabel="step t", ylabel="advantage A_t", title="GAE(λ) advantages of one episode")
    right.set(
        xlabel="lag l",
        ylabel=r"$(\gamma\lambda)^l$",
        title=rf"weight of $\delta_{{t+l}}$ in $A_t$ (γ = {GAMMA})",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    print(f"figure: {save(fig, args.out)}")


if __name__ == "__main__":
    main()
