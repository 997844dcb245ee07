"""Multi-layer perceptrons with named activations, optional layer norm and orthogonal init."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from acrl.config.policy import activation_name

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


def activation_class(name: str | type[nn.Module]) -> type[nn.Module]:
    """Resolve 'tanh', 'ReLU' or the zoo's 'nn.ReLU' spelling to a module class."""
    return ACTIVATIONS[activation_name(name)]


class MLP(nn.Module):
    """Linear -> [LayerNorm] -> activation for each hidden size; no hidden sizes: identity.

    The forward pass calls the functional ops directly: for the small networks of
    reinforcement learning, per-module call overhead costs as much as the maths.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        activation: type[nn.Module],
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        sizes = [in_dim, *hidden]
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.norms = nn.ModuleList(nn.LayerNorm(b) for b in hidden) if layer_norm else None
        self.activation = activation()
        self._act = FUNCTIONAL.get(activation, self.activation)

    def forward(self, x: Tensor) -> Tensor:
        for i, linear in enumerate(self.linears):
            assert isinstance(linear, nn.Linear)
            x = F.linear(x, linear.weight, linear.bias)
            if self.norms is not None:
                norm = self.norms[i]
                assert isinstance(norm, nn.LayerNorm)
                x = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            x = self._act(x)
        return x


FUNCTIONAL: dict[type[nn.Module], Callable[[Tensor], Tensor]] = {
    nn.Tanh: torch.tanh,
    nn.ReLU: torch.relu,
    nn.SiLU: F.silu,
    nn.GELU: F.gelu,
    nn.ELU: F.elu,
    nn.LeakyReLU: F.leaky_relu,
    nn.Sigmoid: torch.sigmoid,
}


def output_dim(in_dim: int, hidden: Sequence[int]) -> int:
    return hidden[-1] if hidden else in_dim


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every Linear layer in ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


HIDDEN_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0
