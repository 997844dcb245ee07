"""The "torch" backend: the policy module acts, and autograd computes the loss's gradient.

This is the reference every other backend is tested against, and the one for any policy,
device and batch size.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from acrl.learner.losses import GradientTerms, Targets, explained_variance, rollout_loss
from acrl.learner.rollout import Rollout
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic


class TorchBackend:
    """Acting and gradients through the torch module, on whatever device it lives."""

    name = "torch"

    def __init__(self, policy: ActorCritic, params: FlatParameters | None = None) -> None:
        """``params`` (the policy's flat parameters) are needed for gradients, not to act."""
        self.policy = policy
        self.params = params
        self.device = policy.critic_head.weight.device

    def acting(self) -> AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def _tensor(self, obs: np.ndarray) -> Tensor:
        return torch.from_numpy(obs).to(self.device, non_blocking=True)

    def act(
        self, obs: np.ndarray, exploration: Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sampled actions and values of a batch of observations (host arrays in and out)."""
        actions, values = self.policy.act(self._tensor(obs), exploration=exploration)
        return actions.cpu().numpy(), values.cpu().numpy()

    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.value(self._tensor(obs)).cpu().numpy()

    def gradients(
        self, rollout: Rollout, targets: Targets, ent_coef: float, vf_coef: float
    ) -> GradientTerms:
        """The loss of a whole rollout; its gradient overwrites ``params.grad``."""
        assert self.params is not None, "TorchBackend(policy, params) computes gradients"
        self.params.zero_grad()
        terms = rollout_loss(self.policy, rollout, targets, ent_coef, vf_coef)
        terms.loss.backward()
        values = rollout.values.reshape(-1)
        explained = explained_variance(values, targets.returns, targets.mask)
        return GradientTerms(
            terms.loss.detach(), terms.policy_loss, terms.value_loss, terms.entropy, explained
        )
