"""The A2C loss: policy gradient, value regression and entropy bonus as named terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from acrl.learner.storage import Rollout
from acrl.model.policy import ActorCritic
from acrl.model.returns import compute_gae


@dataclass(frozen=True)
class LossTerms:
    """The total loss (with graph) and its parts (detached) for logging."""

    loss: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor


@dataclass(frozen=True)
class GradientTerms:
    """What computing a rollout's gradient measured, as 0-d tensors without a graph: the loss,
    its parts and the critic's explained variance. Every backend returns these."""

    loss: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor
    explained_variance: Tensor


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def explained_variance(predictions: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """1 - Var[targets - predictions] / Var[targets] over the valid entries (NaN if Var = 0)."""
    var_targets = masked_mean((targets - masked_mean(targets, mask)).pow(2), mask)
    residual = targets - predictions
    var_residual = masked_mean((residual - masked_mean(residual, mask)).pow(2), mask)
    return torch.where(var_targets > 0, 1.0 - var_residual / var_targets, torch.nan)


def normalize(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero-mean, unit-std advantages over the valid entries.

    A zero or non-finite std (a single sample, constant advantages) leaves the
    advantages centred but unscaled instead of dividing by ~0.
    """
    mean = masked_mean(advantages, mask)
    centred = advantages - mean
    var = masked_mean(centred.pow(2), mask)
    count = mask.sum()
    std = (var * count / (count - 1).clamp_min(1.0)).sqrt()
    ok = torch.isfinite(std) & (std > eps)
    return torch.where(ok, centred / (std + eps), centred)


def a2c_loss(
    log_prob: Tensor,
    entropy: Tensor,
    values: Tensor,
    targets: Targets,
    ent_coef: float,
    vf_coef: float,
) -> LossTerms:
    """loss = -E[A * log pi(a|s)] - ent_coef * E[H(pi(.|s))] + vf_coef * E[(R - V(s))^2].

    Every input is a flat batch; the means are over the transitions ``targets.mask`` keeps.
    """
    mask = targets.mask
    policy_loss = -masked_mean(targets.advantages * log_prob, mask)
    value_loss = masked_mean((targets.returns - values).pow(2), mask)
    mean_entropy = masked_mean(entropy, mask)
    loss = policy_loss - ent_coef * mean_entropy + vf_coef * value_loss
    return LossTerms(loss, policy_loss.detach(), value_loss.detach(), mean_entropy.detach())


@dataclass(frozen=True)
class Targets:
    """Advantages and value targets of a rollout, flattened to (T*N,); ``returns`` are in the
    critic's unit ``value_scale`` (returns * value_scale: in reward units)."""

    advantages: Tensor
    returns: Tensor
    mask: Tensor
    value_scale: float = 1.0


def rollout_targets(
    rollout: Rollout,
    gamma: float,
    gae_lambda: float,
    normalize_advantage: bool,
    value_scale: float = 1.0,
) -> Targets:
    """GAE(lambda) advantages and returns of a rollout (its values set), optionally
    normalized. With value-target normalization the critic's values are in units of
    ``value_scale``: GAE runs on them times ``value_scale`` (reward units) and the returns,
    divided by it again, are the critic's targets."""
    parts = (rollout.rewards, rollout.values, rollout.next_values, rollout.terminated, rollout.done)
    if value_scale != 1.0:
        parts = (parts[0], parts[1] * value_scale, parts[2] * value_scale, *parts[3:])
    if rollout.rewards.device.type == "cpu":  # on the host buffers: ~10 µs instead of ~100
        rewards, values, next_values, terminated, done = (part.numpy() for part in parts)
        adv, ret = compute_gae(rewards, values, next_values, terminated, done, gamma, gae_lambda)
        advantages, returns = torch.from_numpy(adv), torch.from_numpy(ret)
    else:
        advantages, returns = compute_gae(*parts, gamma, gae_lambda)
    mask = rollout.valid.reshape(-1)
    advantages = advantages.reshape(-1)
    if normalize_advantage:
        advantages = normalize(advantages, mask)
    returns = returns.reshape(-1)
    if value_scale != 1.0:
        returns = returns / value_scale
    return Targets(advantages, returns, mask, value_scale)


def evaluate_rollout(
    policy: ActorCritic, rollout: Rollout
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The log-probabilities and entropies of the rollout's actions and the values of its
    observations under ``policy``, as flat batches (with the graph, for the loss), and the
    values of the observations after its last step (N,), without a graph.

    A recurrent policy recomputes the rollout's sequence from the state it started with,
    zeroed where its episodes start (truncated backpropagation through time: no gradient
    reaches the rollouts before)."""
    if policy.recurrent:
        obs = torch.cat([rollout.obs, rollout.next_obs[None]])
        log_prob, entropy, values, last = policy.evaluate_sequence(
            obs, rollout.actions, rollout.initial_state, rollout.starts
        )
        return log_prob, entropy, values, last.detach()
    obs = rollout.obs.reshape(-1, rollout.obs.shape[-1])
    actions = rollout.actions.reshape(-1, *rollout.actions.shape[2:])
    log_prob, entropy, values = policy.evaluate_actions(obs, actions)
    with torch.no_grad():
        last = policy.value(rollout.next_obs)
    return log_prob, entropy, values, last
