"""Bootstrapped returns and GAE(lambda) advantages as pure functions.

Every input is a (T, N) float tensor (or, for GAE, a NumPy array): T steps of N
environments. ``terminated`` stops bootstrapping (the next state has value 0); ``done``
(terminated or truncated) cuts the recursion, so no return mixes two episodes.
``next_values[t]`` is the critic's value of the observation that followed step t, which
for a truncated step is the final observation of the episode.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)


def td_errors(
    rewards: ArrayT, values: ArrayT, next_values: ArrayT, terminated: ArrayT, gamma: float
) -> ArrayT:
    """One-step TD errors: r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)."""
    return rewards + gamma * (1.0 - terminated) * next_values - values


def compute_gae(
    rewards: ArrayT,
    values: ArrayT,
    next_values: ArrayT,
    terminated: ArrayT,
    done: ArrayT,
    gamma: float,
    gae_lambda: float,
) -> tuple[ArrayT, ArrayT]:
    """GAE(lambda) advantages and the matching value targets (advantages + values).

    A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}, with A_T = 0.
    With lambda = 1 the targets are the n-step bootstrapped returns; with
    lambda = 0 they are the one-step TD targets. Inputs are float tensors or float NumPy
    arrays (the collector's host buffers: a few microseconds instead of ~100 for small
    tensors, each torch operator costing several), and the outputs are of the same kind.
    """
    advantages = td_errors(rewards, values, next_values, terminated, gamma)  # a new array
    carry = gamma * gae_lambda * (1.0 - done)
    for t in range(advantages.shape[0] - 2, -1, -1):
        advantages[t] += carry[t] * advantages[t + 1]
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
