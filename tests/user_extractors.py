"""Features extractors as users write them for Stable-Baselines3: ``Class(observation_space,
features_dim)`` with a ``features_dim`` attribute (``--env-module tests.user_extractors``)."""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn


class TinyCNN(nn.Module):
    """One convolution over a channels-first image, as SB3's custom-CNN example."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 16) -> None:
        super().__init__()
        self.features_dim = features_dim
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(nn.Conv2d(channels, 8, 3), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


class WrongSize(nn.Module):
    """Claims 8 features and returns 3."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__()
        self.features_dim = 8
        self.linear = nn.LazyLinear(3)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations.flatten(1))


SCALE = torch.ones(1)  # a tensor made when the module is imported


class FlatLinear(nn.Module):
    """Reads tensor values while it is built and a module-level tensor while it runs."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 8) -> None:
        super().__init__()
        self.features_dim = features_dim
        size = int(torch.tensor(observation_space.shape).prod().item())
        self.linear = nn.Linear(size, features_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(observations.flatten(1) * SCALE))
