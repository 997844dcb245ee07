"""The "numpy" backend: acting, values and the A2C loss's gradient in NumPy.

At the batch sizes of A2C's updates (8 envs x 5 steps = 40 samples) torch's forward, loss
and autograd backward cost hundreds of microseconds of per-operator dispatch for a few
microseconds of arithmetic. Here the forward pass is NumpyForward's, the one acting uses,
keeping its activations (a CNN's are those acting computed, where they provably apply:
acrl.learner.backends.numpy_reuse), and the backward pass is written out: the gradient of

    loss = -mean(A * log pi(a|s)) - ent_coef * mean(H(pi(.|s))) + vf_coef * mean((R - V(s))^2)

(means over the valid transitions) with respect to every parameter, written into the
parameters' gradient tensors (views of one vector, acrl.model.flat_params). Construction
proves that: the parameters it writes are exactly the policy's, and a gradient from NaN-filled
tensors leaves none of them NaN. Tests check every gradient against torch's autograd.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from acrl.config.hyperparams import A2CConfig
from acrl.learner.backends.numpy_forward import Array, NumpyForward, Pass, one_blas_thread
from acrl.learner.backends.numpy_reuse import ActedPasses
from acrl.learner.losses import GradientTerms, rollout_targets
from acrl.learner.storage import Rollout
from acrl.model.flat_params import FlatParameters
from acrl.model.normalization import value_scale
from acrl.model.policy import SDE_EPS, ActorCritic
from acrl.model.trunks import SeparateTrunks, SharedTrunk, TwinTrunks

_LOG_2PI = float(np.log(2.0 * np.pi))


def explained_variance(predictions: Array, targets: Array, weight: Array) -> float:
    """1 - Var[targets - predictions] / Var[targets], means weighted by ``weight`` (which sums
    to 1 over the valid entries); NaN if Var[targets] = 0, as ``losses.explained_variance``."""
    var_targets = float(np.square(targets - targets @ weight) @ weight)
    residual = targets - predictions
    var_residual = float(np.square(residual - residual @ weight) @ weight)
    return 1.0 - var_residual / var_targets if var_targets > 0 else float("nan")


class _Forward(NamedTuple):
    """A forward pass's CNN passes (as NumpyForward.encode keeps them), trunk layer
    outputs (as NumpyForward.trunk keeps them), features, actor head output and values."""

    images: list[Pass]
    acts: list[Array]
    actor: Array
    critic: Array
    head: Array
    values: Array


class NumpyBackend:
    """Acts for a CPU ``ActorCritic`` and writes its A2C gradient into ``params.grad``."""

    name = "numpy"

    def __init__(self, policy: ActorCritic, params: FlatParameters) -> None:
        self.policy = policy
        self.params = params
        self.forward = NumpyForward(policy)  # refuses a policy it cannot compute
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
        # in the order of ``_backward``'s gradients: the CNNs', the trunk's, the heads'
        cnns = [p for cnn in self.forward.cnns for p in cnn.parameters]
        self._params = cnns + [p for pair in pairs for p in pair] + heads
        if policy.log_std is not None:
            self._params.append(policy.log_std)
        self._grad_anchor: int | None = None
        self._prove_coverage()
        # a CNN's acting passes serve the update's forward (acrl.learner.backends.numpy_reuse)
        self.acted: ActedPasses | None = None
        if self.forward.cnns:
            self.acted = ActedPasses(params)

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """A rollout's acting steps: NumPy's BLAS on one thread; a CNN's passes recorded."""
        with one_blas_thread():
            if self.acted is None:
                yield
                return
            self.acted.start()
            try:
                yield
            finally:
                self.acted.stop()

    def act(self, obs: Array, exploration: torch.Tensor | None = None) -> Array:
        if self.acted is None or not self.acted.recording:
            return self.forward.act(obs, exploration)
        passes: list[Pass] = []
        actions = self.forward.act(obs, exploration, passes)
        self.acted.record(obs, passes)
        return actions

    def value(self, obs: Array) -> Array:
        return self.forward.value(obs)

    def gradients(self, rollout: Rollout, config: A2CConfig) -> GradientTerms:
        """The rollout's values, targets and A2C loss (as the torch backend's); the loss's
        gradient overwrites ``.grad``."""
        obs = rollout.obs.numpy()
        n = obs.shape[0] * obs.shape[1]
        self.forward.check_bound()
        # overflows become inf and NaN as in torch, for compute_gradients to report
        acted = None if self.acted is None else self.acted.take(obs, self.forward.cnns)
        with one_blas_thread(), np.errstate(all="ignore"):
            passed = self._forward(obs.reshape(n, -1), acted)
            last_values = self.forward.value(rollout.next_obs.numpy())
            rollout.set_values(passed.values.reshape(rollout.rewards.shape), last_values)
            targets = rollout_targets(
                rollout,
                config.gamma,
                config.gae_lambda,
                config.normalize_advantage,
                value_scale(self.policy.normalization),
            )
            return self._backward(
                passed,
                rollout.actions.numpy().reshape(n, -1),
                targets.advantages.numpy(),
                targets.returns.numpy(),
                targets.mask.numpy(),
                config.ent_coef,
                config.vf_coef,
            )

    def _prove_coverage(self) -> None:
        """Raise unless the gradient writes every parameter of the policy: the parameters it
        lists are the policy's, and NaN-filled gradients come out of it with no NaN left."""
        listed = {id(p) for p in self._params}
        named = list(self.policy.named_parameters())
        missing = [name for name, p in named if id(p) not in listed]
        if missing or len(listed) != len(self._params) or len(named) != len(self._params):
            raise RuntimeError(f"the NumPy gradient does not write {missing or 'its parameters'}")
        self.params.grad.fill_(float("nan"))
        n, shape = 2, self.policy.distribution.action_shape()
        discrete = self.policy.distribution.action_dtype() == torch.int64
        actions = np.zeros((n, *(shape or (1,))), np.int64 if discrete else np.float32)
        ones = np.ones(n, np.float32)
        with np.errstate(all="ignore"):
            passed = self._forward(np.zeros((n, self.policy.obs_dim), self.forward.layout.dtype))
            self._backward(passed, actions, ones, ones, ones, 1.0, 1.0)
        unwritten = torch.isnan(self.params.grad)
        self.params.zero_grad()
        if unwritten.any():
            offsets = np.cumsum([0] + [p.numel() for _, p in named])
            first = int(torch.nonzero(unwritten)[0])
            name = named[int(np.searchsorted(offsets, first, side="right")) - 1][0]
            raise RuntimeError(f"the NumPy gradient left {name} unwritten")

    def _grad_views(self) -> list[Array]:
        """NumPy views of the parameters' gradients (retaken if they moved)."""
        grad = self._params[-1].grad
        if grad is None:
            raise RuntimeError("the NumPy backend needs the parameters' gradient tensors")
        if grad.data_ptr() != self._grad_anchor:
            grads = [p.grad for p in self._params]
            assert all(g is not None for g in grads)
            self._views = [g.numpy() for g in grads if g is not None]
            self._grad_anchor = grad.data_ptr()
        return self._views

    def _forward(self, obs: Array, passes: list[Pass] | None = None) -> _Forward:
        """The forward pass over a batch of observations, keeping what the backward reads
        (the CNNs' ``passes`` over them, where acting computed them already)."""
        features, images = self.forward.encode(obs, keep=True, passes=passes)
        acts, actor, critic = self.forward.trunk(features, keep=True)
        head, values = self.forward.heads(actor, critic)
        return _Forward(images, acts, actor, critic, head, values)

    def _backward(
        self,
        passed: _Forward,
        actions: Array,
        adv: Array,
        ret: Array,
        valid: Array,
        ent_coef: float,
        vf_coef: float,
    ) -> GradientTerms:
        """The loss of the batch ``passed`` went forward on, its gradient written into the
        parameters' ``.grad`` views."""
        forward = self.forward
        views = self._grad_views()
        images, acts, actor, critic, head, values = passed
        weight = valid / max(float(valid.sum()), 1.0)
        # d loss / d log_prob, d entropy, d value, per sample
        g_log_prob = -adv * weight
        g_entropy = -ent_coef * weight
        error = ret - values
        g_values = (-2.0 * vf_coef) * error * weight
        extra: list[Array] = []
        if forward.categorical:
            log_prob, entropy, d_head = _categoricals(
                head, actions, g_log_prob, g_entropy, forward.blocks
            )
        elif forward.bernoulli:
            log_prob, entropy, d_head = _bernoulli(head, actions, g_log_prob, g_entropy)
        else:
            log_prob, entropy, d_head, d_log_std = self._gaussian(
                head, actor, actions, g_log_prob, g_entropy
            )
            extra = [d_log_std]
        w_actor, _ = forward.actor_head
        w_critic, _ = forward.critic_head
        grads = [
            d_head.T @ actor,
            d_head.sum(axis=0),
            (g_values @ critic)[None],
            g_values.sum(keepdims=True),
            *extra,
        ]
        d_actor = d_head @ w_actor.T
        d_critic = np.outer(g_values, w_critic)
        trunk_grads, d_features = self._trunk_backward(acts, d_actor, d_critic)
        image_grads = self._images_backward(images, d_features)
        for view, value in zip(views, [*image_grads, *trunk_grads, *grads], strict=True):
            view[...] = value
        policy_loss = float(-(adv * log_prob) @ weight)
        value_loss = float((error * error) @ weight)
        mean_entropy = float(entropy @ weight)
        explained = explained_variance(values, ret, weight)
        loss = policy_loss - ent_coef * mean_entropy + vf_coef * value_loss
        terms = torch.tensor([loss, policy_loss, value_loss, mean_entropy, explained])
        return GradientTerms(*terms.unbind())

    def _through_activation(self, out: Array, d_out: Array) -> Array:
        """d loss / d pre-activation, from the activation's output and d loss / d output."""
        if self.forward.tanh:
            return d_out * (1.0 - out * out)
        return d_out * (out > 0.0)

    def _trunk_backward(
        self, acts: list[Array], d_actor: Array, d_critic: Array
    ) -> tuple[list[Array], Array | None]:
        """Gradients of the trunk's weights and biases, in ``self._params`` order, and (where
        a CNN comes before it) d loss / d the trunk's input."""
        forward = self.forward
        to_input = bool(forward.cnns)
        if forward.twin:
            weights = [w for w, _ in forward.twin]
            grads, d_in = self._mlp_backward(acts, weights, np.stack([d_actor, d_critic]), to_input)
            return grads, None if d_in is None else d_in.sum(axis=0)
        critic_weights = [w for w, _ in forward.critic_layers]
        if forward.shared:
            return self._mlp_backward(acts, critic_weights, d_actor + d_critic, to_input)
        n = len(forward.actor_layers) + 1
        actor_weights = [w for w, _ in forward.actor_layers]
        actor, d_from_actor = self._mlp_backward(acts[:n], actor_weights, d_actor, to_input)
        critic, d_from_critic = self._mlp_backward(acts[n:], critic_weights, d_critic, to_input)
        d_in = None if d_from_actor is None else d_from_actor + d_from_critic
        return [*actor, *critic], d_in

    def _mlp_backward(
        self, acts: list[Array], weights: list[Array], d_out: Array, to_input: bool
    ) -> tuple[list[Array], Array | None]:
        """[d weight (torch's (out, in) layout), d bias] per layer, first layer first, and
        with ``to_input`` d loss / d the first layer's input.

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
            if i > 0 or to_input:
                d = np.matmul(d_pre, np.swapaxes(weights[i], -1, -2))
        return grads, d if to_input else None

    def _images_backward(self, images: list[Pass], d_features: Array | None) -> list[Array]:
        """Gradients of each CNN's weights and biases from d loss / d the encoder's features
        (each CNN's columns: after the Box values and bits, in image order)."""
        if not images:
            return []
        assert d_features is not None
        grads, start = [], self.forward.layout.dense_dim
        for cnn, (_, kept) in zip(self.forward.cnns, images, strict=True):
            width = cnn.features_dim
            grads += cnn.backward(kept, d_features[:, start : start + width])
            start += width
        return grads

    def _gaussian(
        self, mean: Array, actor: Array, actions: Array, g_log_prob: Array, g_entropy: Array
    ) -> tuple[Array, Array, Array, Array]:
        """Log-probabilities, entropies, d loss / d mean and d loss / d log_std parameter.

        Plain: one log_std per action. gSDE: the marginal's per-sample log-std
        0.5 * log(f^2 @ exp(2 L) + eps), with the features f detached (so the trunk's gradient
        comes through the mean only) and L the (features, actions) log_std parameter.
        """
        param = self.forward.log_std
        assert param is not None
        if self.policy.use_sde:
            variance = np.square(actor) @ np.exp(2.0 * param) + np.float32(SDE_EPS)
            log_std = 0.5 * np.log(variance)
        else:
            log_std = param
        inv_std = np.exp(-log_std)
        z = (actions - mean) * inv_std
        log_prob = (-0.5 * z * z - log_std - 0.5 * _LOG_2PI).sum(axis=1)
        entropy = np.broadcast_to((0.5 + 0.5 * _LOG_2PI + log_std).sum(axis=-1), len(mean))
        d_mean = g_log_prob[:, None] * z * inv_std
        d_log_std = g_log_prob[:, None] * (z * z - 1.0) + g_entropy[:, None]  # per sample
        if self.policy.use_sde:
            d_param = np.exp(2.0 * param) * (np.square(actor).T @ (d_log_std / variance))
        else:
            d_param = d_log_std.sum(axis=0)
        return log_prob, entropy.astype(np.float32), d_mean, d_param


def _categoricals(
    logits: Array, actions: Array, g_log_prob: Array, g_entropy: Array, blocks: tuple[int, ...]
) -> tuple[Array, Array, Array]:
    """Independent categoricals over blocks of logits (one block: Categorical): their
    log-probabilities and entropies summed, the gradient block by block."""
    if len(blocks) == 1:
        return _categorical(logits, actions[:, 0], g_log_prob, g_entropy)
    starts = np.cumsum((0, *blocks))
    parts = [
        _categorical(logits[:, a:b], actions[:, i], g_log_prob, g_entropy)
        for i, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True))
    ]
    log_prob = np.sum([p[0] for p in parts], axis=0)
    entropy = np.sum([p[1] for p in parts], axis=0)
    return log_prob, entropy, np.concatenate([p[2] for p in parts], axis=1)


def _bernoulli(
    logits: Array, actions: Array, g_log_prob: Array, g_entropy: Array
) -> tuple[Array, Array, Array]:
    """Independent Bernoullis: log p(a) = a z - softplus(z), H = softplus(z) - sigmoid(z) z,
    summed over elements; d log p / dz = a - sigmoid(z), dH / dz = -sigmoid'(z) z."""
    softplus = np.logaddexp(0.0, logits)
    p = 1.0 / (1.0 + np.exp(-logits))
    a = actions.astype(logits.dtype)
    log_prob = (a * logits - softplus).sum(axis=1)
    entropy = (softplus - p * logits).sum(axis=1)
    d_logits = g_log_prob[:, None] * (a - p) - g_entropy[:, None] * (p * (1.0 - p) * logits)
    return log_prob, entropy, d_logits.astype(logits.dtype)


def _categorical(
    logits: Array, chosen: Array, g_log_prob: Array, g_entropy: Array
) -> tuple[Array, Array, Array]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_p = shifted - np.log(total)
    p = exp / total
    rows = np.arange(len(logits))
    log_prob = log_p[rows, chosen]
    entropy = -(p * log_p).sum(axis=1)
    # d log p_a / d z = onehot(a) - p;  d H / d z = -p * (log p + H)
    d_logits = -p * (g_log_prob[:, None] + g_entropy[:, None] * (log_p + entropy[:, None]))
    d_logits[rows, chosen] += g_log_prob
    return log_prob, entropy, d_logits
