"""The A2C loss and its gradient by hand in NumPy, for small networks on the CPU.

At the batch sizes of A2C's updates (8 envs x 5 steps = 40 samples) torch's forward,
loss and autograd backward cost ~560 µs of per-operator dispatch for a few microseconds
of arithmetic. Here the same forward pass keeps its activations, and the backward pass is
written out: the gradient of

    loss = -mean(A * log pi(a|s)) - ent_coef * mean(H(pi(.|s))) + vf_coef * mean((R - V(s))^2)

(means over the valid transitions) with respect to every parameter, written into the
parameters' gradient tensors (views of one vector, acrl.flat_params). The policies it serves
are those ``NumpyPolicy`` acts for (MLP trunks with tanh or ReLU, no layer norm), with a
categorical or a plain Gaussian head; gSDE keeps the torch loss. Tests check every
gradient against torch's autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from acrl.distributions import Categorical
from acrl.losses import Targets
from acrl.numpy_policy import Array, NumpyPolicy, one_blas_thread
from acrl.policy import ActorCritic
from acrl.rollout import Rollout
from acrl.trunks import SeparateTrunks, SharedTrunk, TwinTrunks

_LOG_2PI = float(np.log(2.0 * np.pi))

MAX_BATCH = 1024
"""Larger batches keep the torch loss: there torch's multithreaded kernels win. One update of
the 64x64 actor-critic on CartPole, NumPy against torch, measured with 1 and 2 torch threads:
2.2-2.7x faster at 40 samples, 1.35-1.9x at 640, even at ~1,280, slower at 5,120."""


@dataclass(frozen=True)
class NumpyLossTerms:
    """The loss, its parts and the critic's explained variance, as 0-d tensors (no graph:
    the gradient is already written)."""

    loss: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor
    explained_variance: Tensor


def explained_variance(predictions: Array, targets: Array, weight: Array) -> float:
    """1 - Var[targets - predictions] / Var[targets], means weighted by ``weight`` (which sums
    to 1 over the valid entries); NaN if Var[targets] = 0, as ``losses.explained_variance``."""
    var_targets = float(np.square(targets - targets @ weight) @ weight)
    residual = targets - predictions
    var_residual = float(np.square(residual - residual @ weight) @ weight)
    return 1.0 - var_residual / var_targets if var_targets > 0 else float("nan")


class NumpyLoss:
    """Writes the A2C loss's gradient into a CPU ``ActorCritic``'s ``.grad`` tensors.

    Build it with ``for_policy``, which says None where the loss has to stay in torch, and
    use it for rollouts of at most ``MAX_BATCH`` transitions.
    """

    def __init__(self, policy: ActorCritic, forward: NumpyPolicy) -> None:
        self.forward = forward
        self.tanh = policy.config.activation == "tanh"
        self.categorical = isinstance(policy.distribution, Categorical)
        trunk = policy.trunk
        if isinstance(trunk, TwinTrunks):
            pairs = list(zip(trunk.weights, trunk.biases, strict=True))
        elif isinstance(trunk, SharedTrunk):
            pairs = [(linear.weight, linear.bias) for linear in trunk.mlp.linears]
        else:
            assert isinstance(trunk, SeparateTrunks)
            linears = [*trunk.actor.linears, *trunk.critic_mlp.linears]
            pairs = [(linear.weight, linear.bias) for linear in linears]
        heads = [policy.actor_head.weight, policy.actor_head.bias]
        heads += [policy.critic_head.weight, policy.critic_head.bias]
        self._params = [p for pair in pairs for p in pair] + heads
        if policy.log_std is not None:
            self._params.append(policy.log_std)
        self._grad_anchor: int | None = None

    @classmethod
    def for_policy(cls, policy: ActorCritic) -> NumpyLoss | None:
        forward = NumpyPolicy.for_policy(policy)
        if forward is None or policy.use_sde:
            return None
        return cls(policy, forward)

    def _grad_views(self) -> list[Array]:
        """NumPy views of the parameters' gradients (retaken if they moved)."""
        grad = self._params[-1].grad
        if grad is None:
            raise RuntimeError("NumpyLoss needs the parameters' gradient tensors to exist")
        if grad.data_ptr() != self._grad_anchor:
            grads = [p.grad for p in self._params]
            assert all(g is not None for g in grads)
            self._views = [g.numpy() for g in grads if g is not None]
            self._grad_anchor = grad.data_ptr()
        return self._views

    def rollout_gradients(
        self, rollout: Rollout, targets: Targets, ent_coef: float, vf_coef: float
    ) -> NumpyLossTerms:
        """The loss of a whole rollout (as ``rollout_loss``); its gradient overwrites ``.grad``."""
        forward = self.forward
        forward.check_bound()
        views = self._grad_views()
        # overflows become inf and NaN as in torch, for compute_gradients to report
        with one_blas_thread(), np.errstate(all="ignore"):
            obs = rollout.obs.numpy()
            x = forward.prepare(obs.reshape(-1, obs.shape[-1]))
            actions = rollout.actions.numpy().reshape(len(x), -1)
            adv, ret = targets.advantages.numpy(), targets.returns.numpy()
            valid = targets.mask.numpy()
            weight = valid / max(float(valid.sum()), 1.0)
            acts, actor, critic = self._trunk_forward(x)
            w_actor, b_actor = forward.actor_head
            w_critic, b_critic = forward.critic_head
            head = actor @ w_actor + b_actor
            values = critic @ w_critic + b_critic
            # d loss / d log_prob, d entropy, d value, per sample
            g_log_prob = -adv * weight
            g_entropy = -ent_coef * weight
            error = ret - values
            g_values = (-2.0 * vf_coef) * error * weight
            if self.categorical:
                log_prob, entropy, d_head = self._categorical(head, actions, g_log_prob, g_entropy)
                extra: list[Array] = []
            else:
                log_prob, entropy, d_head, d_log_std = self._gaussian(
                    head, actions, g_log_prob, g_entropy
                )
                extra = [d_log_std]
            grads = [
                d_head.T @ actor,
                d_head.sum(axis=0),
                (g_values @ critic)[None],
                g_values.sum(keepdims=True),
                *extra,
            ]
            d_actor = d_head @ w_actor.T
            d_critic = np.outer(g_values, w_critic)
            trunk_grads = self._trunk_backward(acts, d_actor, d_critic)
            for view, value in zip(views, [*trunk_grads, *grads], strict=True):
                view[...] = value
            policy_loss = float(-(adv * log_prob) @ weight)
            value_loss = float((error * error) @ weight)
            mean_entropy = float(entropy @ weight)
            explained = explained_variance(values, ret, weight)
        loss = policy_loss - ent_coef * mean_entropy + vf_coef * value_loss
        terms = torch.tensor([loss, policy_loss, value_loss, mean_entropy, explained])
        return NumpyLossTerms(*terms.unbind())

    def _through_activation(self, out: Array, d_out: Array) -> Array:
        """d loss / d pre-activation, from the activation's output and d loss / d output."""
        if self.tanh:
            return d_out * (1.0 - out * out)
        return d_out * (out > 0.0)

    def _mlp_forward(self, x: Array, layers: list[tuple[Array, Array]]) -> list[Array]:
        acts = [x]
        for weight, bias in layers:
            acts.append(self.forward.activation(acts[-1] @ weight + bias))
        return acts

    def _trunk_forward(self, x: Array) -> tuple[list[Array], Array, Array]:
        """Every trunk layer's output (the input first), and the actor's and critic's features.

        Twin trunks keep their stacked (2, B, out) outputs; separate ones, the actor's
        layers, then the critic's.
        """
        forward = self.forward
        if forward.twin:
            acts = [x]
            for weight, bias in forward.twin:  # (B, in) or (2, B, in) @ (2, in, out)
                acts.append(self.forward.activation(np.matmul(acts[-1], weight) + bias))
            return acts, acts[-1][0], acts[-1][1]
        critic = self._mlp_forward(x, forward.critic_layers)
        if forward.shared:
            return critic, critic[-1], critic[-1]
        actor = self._mlp_forward(x, forward.actor_layers)
        return actor + critic, actor[-1], critic[-1]

    def _trunk_backward(self, acts: list[Array], d_actor: Array, d_critic: Array) -> list[Array]:
        """Gradients of the trunk's weights and biases, in ``self._params`` order."""
        forward = self.forward
        if forward.twin:
            weights = [w for w, _ in forward.twin]
            return self._mlp_backward(acts, weights, np.stack([d_actor, d_critic]))
        critic_weights = [w for w, _ in forward.critic_layers]
        if forward.shared:
            return self._mlp_backward(acts, critic_weights, d_actor + d_critic)
        n = len(forward.actor_layers) + 1
        actor_weights = [w for w, _ in forward.actor_layers]
        return [
            *self._mlp_backward(acts[:n], actor_weights, d_actor),
            *self._mlp_backward(acts[n:], critic_weights, d_critic),
        ]

    def _mlp_backward(self, acts: list[Array], weights: list[Array], d_out: Array) -> list[Array]:
        """[d weight (torch's (out, in) layout), d bias] per layer, first layer first.

        ``weights`` are the forward's (in, out) views (or (2, in, out) for twin trunks).
        """
        grads: list[Array] = []
        d = d_out
        for i in range(len(weights) - 1, -1, -1):
            d_pre = self._through_activation(acts[i + 1], d)
            layer_in = acts[i]
            grads[:0] = [
                np.matmul(np.swapaxes(d_pre, -1, -2), layer_in),
                d_pre.sum(axis=-2, keepdims=d_pre.ndim == 3),
            ]
            if i > 0:
                d = np.matmul(d_pre, np.swapaxes(weights[i], -1, -2))
        return grads

    def _categorical(
        self, logits: Array, actions: Array, g_log_prob: Array, g_entropy: Array
    ) -> tuple[Array, Array, Array]:
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_p = shifted - np.log(total)
        p = exp / total
        rows = np.arange(len(logits))
        chosen = actions[:, 0]
        log_prob = log_p[rows, chosen]
        entropy = -(p * log_p).sum(axis=1)
        # d log p_a / d z = onehot(a) - p;  d H / d z = -p * (log p + H)
        d_logits = -p * (g_log_prob[:, None] + g_entropy[:, None] * (log_p + entropy[:, None]))
        d_logits[rows, chosen] += g_log_prob
        return log_prob, entropy, d_logits

    def _gaussian(
        self, mean: Array, actions: Array, g_log_prob: Array, g_entropy: Array
    ) -> tuple[Array, Array, Array, Array]:
        log_std = self.forward.log_std
        assert log_std is not None
        inv_std = np.exp(-log_std)
        z = (actions - mean) * inv_std
        log_prob = (-0.5 * z * z - log_std - 0.5 * _LOG_2PI).sum(axis=1)
        entropy = np.full(len(mean), (0.5 + 0.5 * _LOG_2PI + log_std).sum(), dtype=np.float32)
        d_mean = g_log_prob[:, None] * z * inv_std
        d_log_std = (g_log_prob[:, None] * (z * z - 1.0)).sum(axis=0) + g_entropy.sum()
        return log_prob, entropy, d_mean, d_log_std
