"""Action distributions as small stateless objects over raw network outputs.

Each distribution turns the actor head's output into samples, modes, log
probabilities and entropies with closed-form tensor maths (no argument
validation, no per-call object construction), and knows how to hand an action
to the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)

Params = tuple[Tensor, ...]
"""The actor head's output: (logits,) for Categorical, MultiCategorical and Bernoulli,
(mean, log_std) for DiagGaussian."""


@dataclass(frozen=True)
class Categorical:
    """Categorical distribution over ``n`` actions, parameterized by logits. Actions are
    indices 0..n-1; the env gets them shifted by the space's ``start``."""

    n: int
    start: int = 0

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
        return actions + self.start if self.start else actions


def unit_to_bounds(unit: Any, low: Any, high: Any) -> Any:
    """Actions in [-1, 1] mapped linearly onto [low, high]: NumPy arrays, or tensors (the
    exported policy), by the same operations in the same order."""
    return low + 0.5 * (unit + 1.0) * (high - low)


@dataclass(frozen=True)
class DiagGaussian:
    """Diagonal Gaussian with a state-independent learned log standard deviation.

    The network outputs the mean; ``log_std`` is a separate parameter broadcast
    over the batch. Actions are clipped to the space's bounds only on their way
    to the environment, so log probabilities refer to the sampled action. With
    ``scaled`` the policy acts in [-1, 1] on every dimension: an action is clipped
    to that and mapped linearly onto the space's bounds (Tianshou's action scaling).
    """

    dim: int
    low: np.ndarray
    high: np.ndarray
    scaled: bool = False

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
        if self.scaled:
            return unit_to_bounds(np.clip(actions, -1.0, 1.0), self.low, self.high)
        return np.clip(actions, self.low, self.high)


@dataclass(frozen=True)
class MultiCategorical:
    """Independent categoricals, one per dimension of a MultiDiscrete space: the head outputs
    their logits side by side (``sum(nvec)`` of them); log-probabilities and entropies are
    summed over dimensions. A space of several axes is flattened here and reshaped to
    ``shape`` on the way to the env, where ``start`` is added."""

    nvec: tuple[int, ...]
    start: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def param_dim(self) -> int:
        return sum(self.nvec)

    def _parts(self, params: Params) -> list[tuple[Categorical, Params]]:
        """Each dimension's Categorical and its logits."""
        chunks = params[0].split(self.nvec, dim=-1)
        return [(Categorical(n), (c,)) for n, c in zip(self.nvec, chunks, strict=True)]

    def sample(self, params: Params) -> Tensor:
        return torch.stack([d.sample(p) for d, p in self._parts(params)], dim=-1)

    def mode(self, params: Params) -> Tensor:
        return torch.stack([d.mode(p) for d, p in self._parts(params)], dim=-1)

    def log_prob(self, params: Params, actions: Tensor) -> Tensor:
        return self.log_prob_and_entropy(params, actions)[0]

    def entropy(self, params: Params) -> Tensor:
        return torch.stack([d.entropy(p) for d, p in self._parts(params)], dim=-1).sum(-1)

    def log_prob_and_entropy(self, params: Params, actions: Tensor) -> tuple[Tensor, Tensor]:
        pairs = [
            d.log_prob_and_entropy(p, actions[..., i])
            for i, (d, p) in enumerate(self._parts(params))
        ]
        log_prob, entropy = (
            torch.stack(terms, dim=-1).sum(-1) for terms in zip(*pairs, strict=True)
        )
        return log_prob, entropy

    def action_shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)

    def action_dtype(self) -> torch.dtype:
        return torch.int64

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        shifted = actions + np.asarray(self.start, dtype=np.int64)
        return shifted.reshape(len(actions), *self.shape).astype(self.dtype)


@dataclass(frozen=True)
class Bernoulli:
    """Independent Bernoullis, one per element of a MultiBinary space, parameterized by
    logits; log-probabilities and entropies are summed. Actions are stored as int64 0/1,
    flat, and handed to the env in the space's shape and dtype (int8)."""

    shape: tuple[int, ...]

    @property
    def param_dim(self) -> int:
        return math.prod(self.shape)

    def sample(self, params: Params) -> Tensor:
        logits = params[0]
        return (torch.rand_like(logits) < torch.sigmoid(logits)).long()

    def mode(self, params: Params) -> Tensor:
        return (params[0] > 0).long()  # p = 1/2 gives 0, as Stable-Baselines3's round()

    def log_prob(self, params: Params, actions: Tensor) -> Tensor:
        logits = params[0]
        # log p(a) = a * logit - softplus(logit): minus the logistic loss
        nll = F.binary_cross_entropy_with_logits(logits, actions.to(logits.dtype), reduction="none")
        return -nll.sum(-1)

    def entropy(self, params: Params) -> Tensor:
        logits = params[0]
        return (F.softplus(logits) - torch.sigmoid(logits) * logits).sum(-1)

    def log_prob_and_entropy(self, params: Params, actions: Tensor) -> tuple[Tensor, Tensor]:
        return self.log_prob(params, actions), self.entropy(params)

    def action_shape(self) -> tuple[int, ...]:
        return (self.param_dim,)

    def action_dtype(self) -> torch.dtype:
        return torch.int64

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return actions.reshape(len(actions), *self.shape).astype(np.int8)


ActionDistribution = Categorical | DiagGaussian | MultiCategorical | Bernoulli
SUPPORTED = "Discrete, 1-D Box, MultiDiscrete and MultiBinary actions"


def make_distribution(action_space: spaces.Space, scaled: bool = False) -> ActionDistribution:
    """The distribution for an action space: Discrete -> Categorical, Box -> DiagGaussian,
    MultiDiscrete -> MultiCategorical, MultiBinary -> Bernoulli; ValueError for another.
    ``scaled``: a Box policy acts in [-1, 1], mapped onto the space's finite bounds."""
    if scaled and not (
        isinstance(action_space, spaces.Box)
        and np.all(np.isfinite(action_space.low))
        and np.all(np.isfinite(action_space.high))
    ):
        raise ValueError(
            f"policy_kwargs.action_scaling maps [-1, 1] onto a Box's bounds; the action "
            f"space {action_space} has none to map onto"
        )
    if isinstance(action_space, spaces.Discrete):
        return Categorical(int(action_space.n), int(action_space.start))
    if isinstance(action_space, spaces.Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {action_space.shape}")
        return DiagGaussian(
            int(action_space.shape[0]),
            action_space.low.astype(np.float32),
            action_space.high.astype(np.float32),
            scaled,
        )
    if isinstance(action_space, spaces.MultiDiscrete):
        return MultiCategorical(
            tuple(int(n) for n in action_space.nvec.ravel()),
            tuple(int(s) for s in action_space.start.ravel()),
            tuple(action_space.shape),
            np.dtype(action_space.dtype),
        )
    if isinstance(action_space, spaces.MultiBinary):
        return Bernoulli(tuple(int(d) for d in action_space.shape))
    raise ValueError(f"unsupported action space {action_space}: acrl handles {SUPPORTED}")
