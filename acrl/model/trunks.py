"""The actor's and the critic's feature extractors ("trunks"), in the three shapes acrl offers.

Every trunk module maps observations to ``(actor_features, critic_features)`` and has
``actor_features(obs)`` and ``critic(obs)`` for either alone (acting needs only the actor's),
and ``critic_masks()``: which of its numbers only the critic reads (``critic_lr_scale``):

- ``SharedTrunk``: one MLP read by both heads (``shared_trunk=True``).
- ``TwinTrunks``: two MLPs of the same shape (the default, 64x64 each), computed as one:
  layer i of both is a (2, out, in) weight and one batched matmul. Half the operator calls
  of two separate MLPs, forward and backward, which is most of the cost of RL-sized nets.
- ``SeparateTrunks``: two MLPs of different shapes (``net_arch={"pi": [...], "vf": [...]}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from acrl.model.networks import FUNCTIONAL, MLP, orthogonal_init

Features = tuple[Tensor, Tensor]


class SharedTrunk(nn.Module):
    def __init__(self, mlp: MLP) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, obs: Tensor) -> Features:
        features = self.mlp(obs)
        return features, features

    def actor_features(self, obs: Tensor) -> Tensor:
        return self.mlp(obs)

    def critic(self, obs: Tensor) -> Tensor:
        return self.mlp(obs)

    def orthogonal_(self, gain: float) -> None:
        orthogonal_init(self.mlp, gain)

    def critic_masks(self) -> Iterator[tuple[nn.Parameter, Tensor]]:
        return iter(())  # both heads read every number


class SeparateTrunks(nn.Module):
    def __init__(self, actor: MLP, critic: MLP) -> None:
        super().__init__()
        self.actor, self.critic_mlp = actor, critic

    def forward(self, obs: Tensor) -> Features:
        return self.actor(obs), self.critic_mlp(obs)

    def actor_features(self, obs: Tensor) -> Tensor:
        return self.actor(obs)

    def critic(self, obs: Tensor) -> Tensor:
        return self.critic_mlp(obs)

    def orthogonal_(self, gain: float) -> None:
        orthogonal_init(self.actor, gain)
        orthogonal_init(self.critic_mlp, gain)

    def critic_masks(self) -> Iterator[tuple[nn.Parameter, Tensor]]:
        return ((p, torch.ones_like(p, dtype=torch.bool)) for p in self.critic_mlp.parameters())


class TwinTrunks(nn.Module):
    """An actor MLP and a critic MLP of identical shape, stacked along a leading axis of 2.

    Initialized exactly as two ``MLP``s would be (nn.Linear's default, drawn in the same
    order), so a seed gives the same initial network either way.
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], activation: type[nn.Module], layer_norm: bool
    ) -> None:
        super().__init__()
        sizes = [in_dim, *hidden]
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(2, b, a)) for a, b in pairs)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(2, 1, b)) for _, b in pairs)
        self.norm_weights = self.norm_biases = None
        if layer_norm:
            self.norm_weights = nn.ParameterList(nn.Parameter(torch.ones(2, 1, b)) for b in hidden)
            self.norm_biases = nn.ParameterList(nn.Parameter(torch.zeros(2, 1, b)) for b in hidden)
        self.activation = activation()
        self._act = FUNCTIONAL.get(activation, self.activation)
        with torch.no_grad():
            for copy in range(2):
                for weight, bias in zip(self.weights, self.biases, strict=True):
                    nn.init.kaiming_uniform_(weight[copy], a=math.sqrt(5))  # as nn.Linear
                    bound = 1.0 / math.sqrt(weight.shape[2])
                    nn.init.uniform_(bias[copy], -bound, bound)

    def forward(self, obs: Tensor) -> Features:
        h = obs.unsqueeze(0).expand(2, *obs.shape)
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(bias, h, weight.transpose(1, 2))
            if self.norm_weights is not None and self.norm_biases is not None:
                h = F.layer_norm(h, h.shape[-1:]) * self.norm_weights[i] + self.norm_biases[i]
            h = self._act(h)
        return h[0], h[1]

    def actor_features(self, obs: Tensor) -> Tensor:
        return self._half(obs, 0)

    def critic(self, obs: Tensor) -> Tensor:
        return self._half(obs, 1)

    def _half(self, obs: Tensor, index: int) -> Tensor:
        """One MLP of the two (0: actor, 1: critic): as many operator calls as both (what
        small batches pay for), half the arithmetic (what large batches pay for)."""
        h = obs
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = F.linear(h, weight[index], bias[index, 0])
            if self.norm_weights is not None and self.norm_biases is not None:
                norm_weight, norm_bias = self.norm_weights[i][index], self.norm_biases[i][index]
                h = F.layer_norm(h, h.shape[-1:]) * norm_weight + norm_bias
            h = self._act(h)
        return h

    def orthogonal_(self, gain: float) -> None:
        with torch.no_grad():
            for copy in range(2):
                for weight, bias in zip(self.weights, self.biases, strict=True):
                    nn.init.orthogonal_(weight[copy], gain=gain)
                    bias[copy].zero_()

    def critic_masks(self) -> Iterator[tuple[nn.Parameter, Tensor]]:
        for p in self.parameters():  # every one stacks (actor, critic) on its first axis
            mask = torch.zeros_like(p, dtype=torch.bool)
            mask[1] = True
            yield p, mask


Trunks = SharedTrunk | TwinTrunks | SeparateTrunks


def make_trunks(
    in_dim: int,
    pi_arch: Sequence[int],
    vf_arch: Sequence[int],
    activation: type[nn.Module],
    layer_norm: bool,
    shared: bool,
) -> Trunks:
    if shared:
        return SharedTrunk(MLP(in_dim, pi_arch, activation, layer_norm))
    if tuple(pi_arch) == tuple(vf_arch):
        return TwinTrunks(in_dim, pi_arch, activation, layer_norm)
    return SeparateTrunks(
        MLP(in_dim, pi_arch, activation, layer_norm), MLP(in_dim, vf_arch, activation, layer_norm)
    )
