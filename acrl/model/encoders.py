"""Observation encoders: the first part of a policy, chosen by the observation space.

An encoder maps a batch of stored observation rows (acrl.model.observations: Box values, then
MultiBinary bits, then indices) to feature vectors of size ``features_dim``. A Box observation
of any shape is its row (``FlattenEncoder``); any other space (Discrete, MultiDiscrete,
MultiBinary, Dict and Tuple of them) keeps its Box values and bits and makes each index a
one-hot vector (``CombinedEncoder``), as Stable-Baselines3's ``preprocess_obs`` and
``CombinedExtractor`` do for vector observations. Neither has parameters.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor, nn

from acrl.model.observations import ObservationLayout, observation_layout


class FlattenEncoder(nn.Module):
    """A Box observation of any shape as one flat vector (no parameters)."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__()
        self.layout = observation_layout(observation_space)
        self.features_dim = self.layout.features_dim

    def forward(self, obs: Tensor) -> Tensor:
        return obs.reshape(obs.shape[0], -1)


class CombinedEncoder(nn.Module):
    """Rows of Box values, bits and indices as the values and bits, then one one-hot vector
    per index (index minus its space's start, which the row already is)."""

    def __init__(self, layout: ObservationLayout) -> None:
        super().__init__()
        self.layout = layout
        self.features_dim = layout.features_dim
        self.dense_dim = layout.dense_dim
        nvec = layout.nvec
        self.offsets = [sum(nvec[:i]) for i in range(len(nvec))]  # of each one-hot block
        self.one_hot_dim = sum(nvec)
        # a tensor per device, made once (not a buffer: buffers are state that engines copy)
        self._offsets: dict[torch.device, Tensor] = {}

    def forward(self, obs: Tensor) -> Tensor:
        obs = obs.reshape(obs.shape[0], -1)
        dense = obs[:, : self.dense_dim]
        if not self.offsets:
            return dense
        offsets = self._offsets.get(obs.device)
        if offsets is None:
            offsets = self._offsets[obs.device] = torch.tensor(self.offsets, device=obs.device)
        columns = obs[:, self.dense_dim :].long() + offsets
        hot = obs.new_zeros((obs.shape[0], self.one_hot_dim)).scatter_(1, columns, 1.0)
        return torch.cat([dense, hot], dim=1)


Encoder = FlattenEncoder | CombinedEncoder


def make_encoder(observation_space: spaces.Space) -> Encoder:
    """The encoder for an observation space; a one-line ValueError for one acrl cannot
    observe (Text, Graph, Sequence, ...)."""
    layout = observation_layout(observation_space)
    if layout.is_box:
        assert isinstance(observation_space, spaces.Box)
        return FlattenEncoder(observation_space)
    return CombinedEncoder(layout)


def features_dim(observation_space: spaces.Space) -> int:
    """The size of the features the encoder of ``observation_space`` outputs."""
    return observation_layout(observation_space).features_dim
