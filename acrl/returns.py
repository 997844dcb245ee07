"""Bootstrapped returns and GAE(lambda) advantages as pure tensor functions.

Every input is a (T, N) tensor: T steps of N environments. ``terminated`` stops
bootstrapping (the next state has value 0); ``done`` (terminated or truncated)
cuts the recursion, so no return mixes two episodes. ``next_values[t]`` is the
critic's value of the observation that followed step t, which for a truncated
step is the final observation of the episode.
"""

from __future__ import annotations

import torch
from torch import Tensor


def td_errors(
    rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor, gamma: float
) -> Tensor:
    """One-step TD errors: r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)."""
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * not_terminal * next_values - values


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    done: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """GAE(lambda) advantages and the matching value targets (advantages + values).

    A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}, with A_T = 0.
    With lambda = 1 the targets are the n-step bootstrapped returns; with
    lambda = 0 they are the one-step TD targets.
    """
    deltas = td_errors(rewards, values, next_values, terminated, gamma)
    carry = gamma * gae_lambda * (1.0 - done.to(rewards.dtype))
    advantages = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + values


def compute_nstep_returns(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    done: Tensor,
    gamma: float,
) -> Tensor:
    """n-step bootstrapped returns up to the end of the rollout or the episode.

    R_t = r_t + gamma * (1 - terminated_t) * (V(s_{t+1}) if done_t or t = T-1 else R_{t+1}).
    """
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    is_done = done.to(torch.bool)
    returns = torch.empty_like(rewards)
    following = next_values[-1]
    for t in range(rewards.shape[0] - 1, -1, -1):
        following = torch.where(is_done[t], next_values[t], following)
        following = rewards[t] + gamma * not_terminal[t] * following
        returns[t] = following
    return returns
