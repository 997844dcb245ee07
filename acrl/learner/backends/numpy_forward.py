"""The policy's forward pass in NumPy: acting, values, and the activations its gradient reads.

At the batch sizes of acting (one row per env) every torch operator costs several
microseconds of dispatch and NumPy's about one: the same forward pass and sample on the
64x64 actor-critic took 74 µs in torch against 22 µs here at 8 envs. The weights are NumPy
views of the policy's parameters (one vector, acrl.model.flat_params), so every optimizer
step is seen without a copy, and the random draws come from torch's generator, so seeds and
the RNG states that checkpoints save cover them. One function runs the layers (``_mlp``):
acting uses it (the actor's layers for actions, the critic's for values), and the gradient
(acrl.learner.backends.numpy_gradient) keeps its activations.

NumPy's BLAS runs on one thread here (``one_blas_thread``): its thread pool would otherwise
spin against torch's threads between steps (1,024 envs on 2 cores: 117k steps/s with
OpenBLAS's default threads, 415k with one).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import Tensor

from acrl.learner.backends.numpy_cnn import cnn_gap, numpy_cnns
from acrl.model.distributions import Bernoulli, Categorical, MultiCategorical
from acrl.model.encoders import CombinedEncoder, UserEncoder
from acrl.model.policy import SDE_EPS, ActorCritic
from acrl.model.trunks import SeparateTrunks, SharedTrunk, TwinTrunks

Array = np.ndarray
Layers = list[tuple[Array, Array]]  # (weight as (in, out) or stacked (2, in, out), bias)
Pass = tuple[Array, list[Any]]  # one CNN's features and what its backward reads (NumpyCNN)


def _relu(x: Array) -> Array:
    return np.maximum(x, 0.0, out=x)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {"tanh": np.tanh, "relu": _relu}


def numpy_gaps(policy: ActorCritic) -> list[str]:
    """What of ``policy`` the NumPy backend does not compute (empty: it covers the policy)."""
    gaps = []
    devices = sorted({p.device.type for p in policy.parameters()})
    if devices != ["cpu"]:
        gaps.append(f"parameters on {', '.join(devices)} (NumPy runs on the CPU)")
    encoder = policy.encoder
    if isinstance(encoder, UserEncoder):
        gaps.append(f"the features extractor {policy.config.features_extractor_class}")
    elif encoder.layout.images:
        assert isinstance(encoder, CombinedEncoder)
        gaps += [gap for gap in map(cnn_gap, encoder.cnns) if gap]
        if policy.critic_encoder is not None:
            gaps.append("a CNN of the critic's own (share_features_extractor off)")
    if policy.memory is not None:
        gaps.append("a recurrent memory core")
    if policy.config.layer_norm:
        gaps.append("layer_norm")
    if policy.config.activation not in ACTIVATIONS:
        gaps.append(
            f"the {policy.config.activation} activation (NumPy has {', '.join(ACTIVATIONS)})"
        )
    return gaps


def _view(t: Tensor) -> Array:
    return t.detach().numpy()


class NumpyForward:
    """The forward pass of a CPU ``ActorCritic`` over NumPy views of its parameters."""

    def __init__(self, policy: ActorCritic) -> None:
        gaps = numpy_gaps(policy)
        if gaps:
            raise ValueError(f"NumPy cannot compute this policy: {'; '.join(gaps)}")
        self.policy = policy
        self.activation = ACTIVATIONS[policy.config.activation]
        self.tanh = policy.config.activation == "tanh"
        dist = policy.distribution
        # the logits of each categorical, side by side: one block, or MultiCategorical's
        self.blocks: tuple[int, ...] = ()
        if isinstance(dist, Categorical):
            self.blocks = (dist.n,)
        elif isinstance(dist, MultiCategorical):
            self.blocks = dist.nvec
        self.categorical = bool(self.blocks)
        self.bernoulli = isinstance(dist, Bernoulli)
        self._noise: dict[tuple[int, ...], tuple[Tensor, Array]] = {}
        self._bind()

    def _bind(self) -> None:
        """(Re)take NumPy views of the weights and statistics, where they live now."""
        policy = self.policy
        trunk = policy.trunk
        self.twin: Layers = []
        self.actor_layers: Layers = []
        self.critic_layers: Layers = []
        if isinstance(trunk, TwinTrunks):
            self.twin = [
                (_view(w).transpose(0, 2, 1), _view(b))
                for w, b in zip(trunk.weights, trunk.biases, strict=True)
            ]
        elif isinstance(trunk, SharedTrunk):
            self.actor_layers = self.critic_layers = _linears(trunk.mlp.linears)
        else:
            assert isinstance(trunk, SeparateTrunks)
            self.actor_layers = _linears(trunk.actor.linears)
            self.critic_layers = _linears(trunk.critic_mlp.linears)
        self.twin_actor = [(w[0], b[0]) for w, b in self.twin]
        self.twin_critic = [(w[1], b[1]) for w, b in self.twin]
        self.shared = isinstance(trunk, SharedTrunk)
        self.actor_head = (_view(policy.actor_head.weight).T, _view(policy.actor_head.bias))
        self.critic_head = (_view(policy.critic_head.weight)[0], _view(policy.critic_head.bias))
        self.log_std = None if policy.log_std is None else _view(policy.log_std)
        normalization = policy.normalization
        rms = None if normalization is None else normalization.obs_rms
        self.obs_stats = None if rms is None else (_view(rms.mean), _view(rms.var))
        layout = self.layout = policy.encoder.layout
        self.cnns = numpy_cnns(policy.encoder)
        # indices become one-hot columns after the dense ones (CombinedEncoder's features)
        self.one_hot: tuple[int, Array, int] | None = None
        if isinstance(policy.encoder, CombinedEncoder) and layout.nvec:
            offsets = layout.dense_dim + np.cumsum((0, *layout.nvec[:-1]), dtype=np.int64)
            self.one_hot = (layout.dense_dim, offsets, layout.features_dim)
        self._anchor_param = policy.critic_head.bias  # one attribute lookup per step, not two
        self._anchor = self._anchor_param.data_ptr()

    def check_bound(self) -> None:
        """Retake the views if the parameters moved (call before using them)."""
        # share_memory() or .to() move the parameters: views of the old memory would go stale
        if self._anchor_param.data_ptr() != self._anchor:
            self._bind()

    def encode(
        self, obs: Array, keep: bool = False, passes: list[Pass] | None = None
    ) -> tuple[Array, list[Pass]]:
        """Stored observation rows as the encoder's features (the trunk's input): in
        CombinedEncoder's order, the Box values (normalized as the policy would) and bits,
        each image's CNN features, each index as a one-hot vector. With ``keep``, each CNN's
        pass: its features and what its backward reads. ``passes``: those passes, computed
        already (by acting on these rows with these weights), in place of the CNNs'."""
        rows = obs.reshape(obs.shape[0], -1)
        if not self.cnns:
            return self.prepare(rows), []
        layout = self.layout
        if passes is None:
            pixels = layout.pixels_of(rows)
            passes = [
                cnn.forward(pixels[:, start:stop], keep)
                for cnn, (start, stop) in zip(self.cnns, self.image_columns, strict=True)
            ]
        parts = [features for features, _ in passes]
        kept = passes if keep else []
        if layout.float_dim:
            flat = self.prepare(np.ascontiguousarray(layout.floats_of(rows)))
            dense = layout.dense_dim
            parts = [flat[:, :dense], *parts, flat[:, dense:]]
        return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)), kept

    @property
    def image_columns(self) -> list[tuple[int, int]]:
        """Each image's (start, stop) among a row's pixels."""
        layout = self.layout
        return [layout.columns[layout.leaves.index(leaf)] for leaf in layout.images]

    def prepare(self, obs: Array) -> Array:
        """Float rows as the features of the Box values, bits and indices: the Box columns
        normalized as the policy would, each index as a one-hot vector."""
        obs = obs.reshape(obs.shape[0], -1)
        if self.obs_stats is not None and self.obs_stats[0].size:
            normalization = self.policy.normalization
            assert normalization is not None
            mean, var = self.obs_stats
            box = mean.shape[0]
            std = np.sqrt(var + normalization.eps).astype(np.float32)
            scaled = (obs[:, :box] - mean.astype(np.float32)) / std
            scaled = np.clip(scaled, -normalization.clip, normalization.clip)
            obs = scaled if box == obs.shape[1] else np.concatenate([scaled, obs[:, box:]], 1)
        if self.one_hot is None:
            return obs
        dense, offsets, width = self.one_hot
        features = np.zeros((obs.shape[0], width), np.float32)
        features[:, :dense] = obs[:, :dense]
        columns = obs[:, dense:].astype(np.int64) + offsets
        np.put_along_axis(features, columns, 1.0, axis=1)
        return features

    def _mlp(self, x: Array, layers: Layers, keep: bool) -> list[Array]:
        acts = [x]
        for weight, bias in layers:
            out = self.activation(acts[-1] @ weight + bias)
            acts = [*acts, out] if keep else [out]
        return acts

    def trunk(self, x: Array, keep: bool = False) -> tuple[list[Array], Array, Array]:
        """The actor's and the critic's features of prepared observations ``x``, after the
        trunk's layer outputs (with ``keep``, every one, the input first; else the last).

        Twin trunks keep their stacked (2, B, out) outputs; separate ones, the actor's
        layers then the critic's, each list starting with ``x``.
        """
        if self.twin:  # (B, in) or (2, B, in) @ (2, in, out): both MLPs in one matmul
            acts = self._mlp(x, self.twin, keep)
            return acts, acts[-1][0], acts[-1][1]
        critic = self._mlp(x, self.critic_layers, keep)
        if self.shared:
            return critic, critic[-1], critic[-1]
        actor = self._mlp(x, self.actor_layers, keep)
        return actor + critic, actor[-1], critic[-1]

    def heads(self, actor: Array, critic: Array) -> tuple[Array, Array]:
        """The actor head's output (logits or mean) and the values."""
        weight, bias = self.actor_head
        return actor @ weight + bias, self.values(critic)

    def values(self, critic_features: Array) -> Array:
        weight, bias = self.critic_head
        return critic_features @ weight + bias

    def act(
        self, obs: Array, exploration: Tensor | None = None, passes: list[Pass] | None = None
    ) -> Array:
        """Sampled actions for a batch of observations (B, *obs_shape); only the actor runs.

        A gSDE policy's noise is ``features @ E`` with ``exploration`` the per-row matrices E
        (ActorCritic.exploration_noise); without them it is drawn from the marginal Gaussian.
        With ``passes`` (a list), each CNN's pass (``encode(keep=True)``'s) is put in it.
        """
        self.check_bound()
        layers = self.twin_actor if self.twin else self.actor_layers
        features, kept = self.encode(obs, keep=passes is not None)
        if passes is not None:
            passes += kept
        actor = self._mlp(features, layers, keep=False)[-1]
        weight, bias = self.actor_head
        head = actor @ weight + bias
        if self.categorical:
            return self._categorical_sample(head)
        noise_t, noise = self._noise_for(head.shape)
        if self.bernoulli:  # Bernoulli.sample: uniform draws below sigmoid(logits)
            noise_t.uniform_()
            return (noise < 1.0 / (1.0 + np.exp(-head))).astype(np.int64)
        if exploration is not None:
            return head + np.matmul(actor[:, None, :], _view(exploration))[:, 0]
        noise_t.normal_()
        return head + self.std(actor) * noise

    def _categorical_sample(self, logits: Array) -> Array:
        """The exponential race of Categorical.sample, argmax_i p_i / E_i with E_i ~ Exp(1),
        per block of logits, the blocks' noise drawn one after another as torch draws it."""
        actions, start = [], 0
        for n in self.blocks:
            block = logits[:, start : start + n]
            start += n
            noise_t, noise = self._noise_for(block.shape)
            noise_t.exponential_()
            actions.append(np.argmax(np.exp(block - block.max(axis=1, keepdims=True)) / noise, 1))
        if len(actions) == 1 and isinstance(self.policy.distribution, Categorical):
            return actions[0]
        return np.stack(actions, axis=1)

    def std(self, actor: Array) -> Array:
        """The Gaussian's standard deviation: exp(log_std), or gSDE's per-sample marginal."""
        assert self.log_std is not None
        if not self.policy.use_sde:
            return np.exp(self.log_std)
        variance = np.square(actor) @ np.exp(2.0 * self.log_std)
        return np.sqrt(variance + SDE_EPS)

    def value(self, obs: Array) -> Array:
        """Values of a batch of observations; only the critic runs."""
        self.check_bound()
        layers = self.twin_critic if self.twin else self.critic_layers
        return self.values(self._mlp(self.encode(obs)[0], layers, keep=False)[-1])

    def _noise_for(self, shape: tuple[int, ...]) -> tuple[Tensor, Array]:
        """A (B, k) tensor for torch's generator to fill, and its NumPy view."""
        if shape not in self._noise:
            noise = torch.empty(shape, dtype=torch.float32)
            self._noise[shape] = (noise, noise.numpy())
        return self._noise[shape]


def _linears(linears: torch.nn.ModuleList) -> Layers:
    layers = [layer for layer in linears if isinstance(layer, torch.nn.Linear)]
    return [(_view(layer.weight).T, _view(layer.bias)) for layer in layers]


@functools.cache
def _blas_libraries() -> Any:
    return ThreadpoolController().select(user_api="blas")


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which NumPy's BLAS uses one thread (restored after)."""
    try:
        return _blas_libraries().limit(limits=1)  # type: ignore[no-any-return]
    except Exception:  # a platform threadpoolctl cannot handle: leave the threads alone
        return contextlib.nullcontext()
