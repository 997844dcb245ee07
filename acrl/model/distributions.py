"""Action distributions as small stateless objects over raw network outputs.

Each distribution turns the actor head's output into samples, modes, log
probabilities and entropies with closed-form tensor maths (no argument
validation, no per-call object construction), and knows how to hand an action
to the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)

Params = tuple[Tensor, ...]
"""The actor head's output: (logits,) for Categorical, (mean, log_std) for DiagGaussian."""


@dataclass(frozen=True)
class Categorical:
    """Categorical distribution over ``n`` actions, parameterized by logits."""

    n: int

    @property
    def param_dim(self) -> int:
        return self.n

    def sample(self, params: Params) -> Tensor:
        # argmax_i p_i / E_i with E_i ~ Exp(1) is distributed as Categorical(p) (an
        # exponential race): a third of the cost of torch.multinomial on small batches.
        probs = torch.softmax(params[0], dim=-1)
        return torch.argmax(probs / torch.empty_like(probs).exponential_(), dim=-1)

    def mode(self, params: Params) -> Tensor:
        return torch.argmax(params[0], dim=-1)

    def log_prob(self, params: Params, actions: Tensor) -> Tensor:
        return self.log_prob_and_entropy(params, actions)[0]

    def entropy(self, params: Params) -> Tensor:
        log_p = torch.log_softmax(params[0], dim=-1)
        return -(log_p.exp() * log_p).sum(-1)

    def log_prob_and_entropy(self, params: Params, actions: Tensor) -> tuple[Tensor, Tensor]:
        log_p = torch.log_softmax(params[0], dim=-1)
        chosen = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return chosen, -(log_p.exp() * log_p).sum(-1)

    def action_shape(self) -> tuple[int, ...]:
        return ()

    def action_dtype(self) -> torch.dtype:
        return torch.int64

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return actions


@dataclass(frozen=True)
class DiagGaussian:
    """Diagonal Gaussian with a state-independent learned log standard deviation.

    The network outputs the mean; ``log_std`` is a separate parameter broadcast
    over the batch. Actions are clipped to the space's bounds only on their way
    to the environment, so log probabilities refer to the sampled action.
    """

    dim: int
    low: np.ndarray
    high: np.ndarray

    @property
    def param_dim(self) -> int:
        return self.dim

    def sample(self, params: Params) -> Tensor:
        mean, log_std = params
        return mean + log_std.exp() * torch.randn_like(mean)

    def mode(self, params: Params) -> Tensor:
        return params[0]

    def log_prob(self, params: Params, actions: Tensor) -> Tensor:
        mean, log_std = params
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self, params: Params) -> Tensor:
        mean, log_std = params
        per_sample = (0.5 + 0.5 * _LOG_2PI + log_std).sum(-1)
        return per_sample.expand(mean.shape[:-1])

    def log_prob_and_entropy(self, params: Params, actions: Tensor) -> tuple[Tensor, Tensor]:
        return self.log_prob(params, actions), self.entropy(params)

    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def action_dtype(self) -> torch.dtype:
        return torch.float32

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high)


ActionDistribution = Categorical | DiagGaussian


def make_distribution(action_space: spaces.Space) -> ActionDistribution:
    """The distribution for an action space: Discrete -> Categorical, Box -> DiagGaussian."""
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(
                f"Discrete action spaces must start at 0, got start={action_space.start}"
            )
        return Categorical(int(action_space.n))
    if isinstance(action_space, spaces.Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {action_space.shape}")
        return DiagGaussian(
            int(action_space.shape[0]),
            action_space.low.astype(np.float32),
            action_space.high.astype(np.float32),
        )
    raise ValueError(
        f"unsupported action space {action_space}: acrl handles Discrete and 1-D Box actions"
    )
