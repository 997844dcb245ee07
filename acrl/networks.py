"""Multi-layer perceptrons with named activations, optional layer norm and orthogonal init."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

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
    if isinstance(name, type) and issubclass(name, nn.Module):
        return name
    key = str(name).removeprefix("nn.").removeprefix("torch.nn.").lower()
    key = {"leakyrelu": "leaky_relu"}.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, got {name!r}"
        )
    return ACTIVATIONS[key]


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    activation: type[nn.Module],
    layer_norm: bool = False,
) -> nn.Sequential:
    """Linear -> [LayerNorm] -> activation, for each hidden size. Empty hidden: identity."""
    layers: list[nn.Module] = []
    last = in_dim
    for size in hidden:
        layers.append(nn.Linear(last, size))
        if layer_norm:
            layers.append(nn.LayerNorm(size))
        layers.append(activation())
        last = size
    return nn.Sequential(*layers)


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
