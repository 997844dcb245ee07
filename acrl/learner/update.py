"""The engine-neutral half of an update: a rollout's clipped A2C gradient, checked finite.

Every engine (A2C alone or on torchrun's ranks, A3C's worker processes and Ray actors)
computes its gradients here; they differ only in where the rollout was collected and where
``optimizer.step()`` (acrl.learner.optim) then runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from acrl.config.hyperparams import A2CConfig
from acrl.errors import NonFiniteError
from acrl.learner.backends import Backend
from acrl.learner.losses import Targets, rollout_targets
from acrl.learner.reports import UpdateStats
from acrl.learner.storage import Rollout
from acrl.model.flat_params import FlatParameters, clip_grad_norm
from acrl.model.normalization import Normalization, value_scale


def compute_gradients(
    backend: Backend,
    params: FlatParameters,
    rollout: Rollout,
    config: A2CConfig,
    learning_rate: float,
    update: int = 0,
    average_gradients: Callable[[torch.Tensor], None] | None = None,
) -> UpdateStats:
    """The clipped gradient of the A2C loss of ``rollout``, in ``params.grad`` (overwritten).

    The critic's values, GAE(lambda) targets, the loss and its gradient (by ``backend``,
    in one forward pass; the rollout keeps the values), then, with several processes,
    ``average_gradients`` replaces the gradient by its mean over them before clipping.
    Raises NonFiniteError, naming ``update`` and the culprit, if the loss or the gradient is
    not finite: the caller then never applies it.
    """
    terms = backend.gradients(rollout, config)
    if average_gradients is not None:
        average_gradients(params.grad)
    grad_norm = clip_grad_norm(params.grad, config.max_grad_norm)
    if not torch.isfinite(grad_norm):  # a NaN or inf anywhere in the loss reaches the norm
        culprits = {
            "policy loss": terms.policy_loss,
            "value loss": terms.value_loss,
            "entropy": terms.entropy,
            "gradient norm": grad_norm,
        }
        name, value = next((k, v) for k, v in culprits.items() if not torch.isfinite(v))
        raise NonFiniteError(
            f"update {update}: the {name} is {float(value)}; the update was not applied"
        )
    return UpdateStats(
        policy_loss=terms.policy_loss,
        value_loss=terms.value_loss,
        entropy=terms.entropy,
        grad_norm=grad_norm.detach(),
        explained_variance=terms.explained_variance,
        learning_rate=learning_rate,
    )


def update_statistics(
    normalization: Normalization | None, rollout: Rollout, config: A2CConfig
) -> None:
    """Merge the rollout's observations and, with value-target normalization, its value
    targets (in reward units) into the running statistics, after the optimizer step (so that
    acting and the loss saw the same ones)."""
    if normalization is None:
        return
    normalization.update_obs(rollout.obs)
    if normalization.value_rms is not None:
        targets = _targets(rollout, config, normalization)
        normalization.update_value_targets(
            targets.returns[targets.mask.bool()] * targets.value_scale
        )


def raw_advantages(
    rollout: Rollout, config: A2CConfig, normalization: Normalization | None
) -> np.ndarray:
    """The rollout's GAE advantages before any normalization, valid steps only (from the
    values its update computed)."""
    targets = _targets(rollout, config, normalization)
    return targets.advantages[targets.mask.bool()].detach().cpu().numpy()


def _targets(rollout: Rollout, config: A2CConfig, normalization: Normalization | None) -> Targets:
    return rollout_targets(
        rollout, config.gamma, config.gae_lambda, False, value_scale(normalization)
    )
