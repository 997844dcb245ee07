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

from acrl.config.hyperparams import A2CConfig
from acrl.learner.losses import (
    GradientTerms,
    a2c_loss,
    evaluate_rollout,
    explained_variance,
    rollout_targets,
)
from acrl.learner.storage import Rollout
from acrl.model.flat_params import FlatParameters
from acrl.model.normalization import value_scale
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

    def act(self, obs: np.ndarray, exploration: Tensor | None = None) -> np.ndarray:
        """Sampled actions for a batch of observations (host arrays in and out)."""
        return self.policy.act(self._tensor(obs), exploration=exploration).cpu().numpy()

    def step(
        self, obs: np.ndarray, state: Tensor, exploration: Tensor | None = None
    ) -> tuple[np.ndarray, Tensor]:
        """A recurrent policy's sampled actions (a host array) and next state (a tensor on
        the policy's device) from ``state``."""
        actions, next_state = self.policy.step(self._tensor(obs), state, exploration=exploration)
        assert next_state is not None
        return actions.cpu().numpy(), next_state

    def value(self, obs: np.ndarray, state: Tensor | None = None) -> np.ndarray:
        """Values of a batch (a recurrent policy's from ``state``)."""
        return self.policy.value(self._tensor(obs), state).cpu().numpy()

    def gradients(self, rollout: Rollout, config: A2CConfig) -> GradientTerms:
        """The rollout's values, targets and A2C loss; its gradient overwrites ``params.grad``."""
        assert self.params is not None, "TorchBackend(policy, params) computes gradients"
        self.params.zero_grad()
        log_prob, entropy, values, last_values = evaluate_rollout(self.policy, rollout)
        rollout.set_values(values.detach().reshape(rollout.rewards.shape), last_values)
        targets = rollout_targets(
            rollout,
            config.gamma,
            config.gae_lambda,
            config.normalize_advantage,
            value_scale(self.policy.normalization),
        )
        terms = a2c_loss(log_prob, entropy, values, targets, config.ent_coef, config.vf_coef)
        terms.loss.backward()
        explained = explained_variance(values.detach(), targets.returns, targets.mask)
        return GradientTerms(
            terms.loss.detach(), terms.policy_loss, terms.value_loss, terms.entropy, explained
        )
