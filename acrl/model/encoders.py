"""Observation encoders: the first part of a policy, chosen by the observation space.

An encoder maps a batch of observations to a batch of feature vectors of size
``features_dim``. Box observations of any shape are flattened; other spaces are refused here,
with one line, until an encoder exists for them.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from torch import Tensor, nn


class FlattenEncoder(nn.Module):
    """A Box observation of any shape as one flat vector (no parameters)."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__()
        self.features_dim = int(np.prod(observation_space.shape))

    def forward(self, obs: Tensor) -> Tensor:
        return obs.reshape(obs.shape[0], -1)


Encoder = FlattenEncoder


def make_encoder(observation_space: spaces.Space) -> Encoder:
    """The encoder for an observation space."""
    if isinstance(observation_space, spaces.Box):
        return FlattenEncoder(observation_space)
    raise ValueError(
        f"unsupported observation space {observation_space}: acrl handles Box observations"
    )


def features_dim(observation_space: spaces.Space) -> int:
    """The size of the features the encoder of ``observation_space`` outputs."""
    return make_encoder(observation_space).features_dim
