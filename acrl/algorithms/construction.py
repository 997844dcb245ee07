"""What a model's constructor checks and resolves before it allocates anything: the
device, the hyperparameters among its arguments, the sizes of its network, rollout and envs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from acrl.config.hyperparams import A2CConfig
from acrl.config.limits import MAX_ENVS, check_network, check_rollout
from acrl.errors import UserError
from acrl.model.distributions import make_distribution
from acrl.model.encoders import make_encoder
from acrl.model.memory import recurrent_parameters
from acrl.model.observations import observation_layout


def check_n_envs(n_envs: Any) -> None:
    """An integer >= 1 that one process can run (refused before any env is made)."""
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
    if n_envs > MAX_ENVS:
        raise UserError(
            f"n_envs={n_envs:,} is more environments than one process runs (at most "
            f"{MAX_ENVS:,}); scale out with A3C workers or torchrun ranks"
        )


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but this torch build sees no CUDA device")
    return resolved


def config_from(arguments: Mapping[str, Any]) -> A2CConfig:
    """The hyperparameters among a constructor's arguments (its ``locals()``), validated."""
    values = {name: arguments[name] for name in A2CConfig.field_names()}
    values["policy_kwargs"] = dict(values["policy_kwargs"] or {})
    return A2CConfig(**values)


def check_sizes(
    config: A2CConfig,
    n_envs: int,
    observation_space: gym.Space,
    action_space: gym.Space,
    may_import: bool = False,
) -> None:
    """Refuse a network or a rollout that cannot fit in memory (acrl.config.limits); the
    encoder is built on the meta device to count its features and parameters."""
    policy = config.policy_config
    # a built-in encoder is sized on the meta device (no memory); a user's extractor is built
    # on the CPU: its module is imported, and its code may read tensors, as in training
    with torch.device("cpu" if policy.user_extractor else "meta"):
        encoder = make_encoder(observation_space, policy, may_import)
    features = encoder.features_dim
    copies = 1 if policy.share_features_extractor else 2
    encoder_params = copies * sum(p.numel() for p in encoder.parameters())
    trunk_in = features
    memory: tuple[int, ...] = ()  # the recurrent cores' activations per transition
    if policy.is_recurrent:  # the trunks read the memory's outputs
        encoder_params += recurrent_parameters(policy, features)
        trunk_in = policy.hidden_size
        memory = (policy.hidden_size,) * (2 * policy.n_recurrent_layers)
    # ValueError for another space, or action scaling without a Box's finite bounds
    action_params = make_distribution(action_space, policy.action_scaling).param_dim
    check_network(policy, trunk_in, action_params, encoder_params)
    hidden = policy.pi_arch if policy.shared_trunk else policy.pi_arch + policy.vf_arch
    hidden = hidden + memory
    layout = observation_layout(observation_space)
    obs_bytes = layout.raw_dim * (1 if layout.dtype is np.uint8 else 4)
    check_rollout(config.n_steps, n_envs, features, action_params, hidden, obs_bytes)


def with_image_defaults(config: A2CConfig, observation_space: gym.Space) -> A2CConfig:
    """``config`` with Stable-Baselines3's network for image policies where the user set
    none: no hidden layers between a built-in CNN's features and the heads (net_arch []); a
    user's extractor keeps [64, 64], as in SB3."""
    layout = observation_layout(observation_space)
    user = config.policy_config.user_extractor
    if not layout.is_image or user or "net_arch" in config.policy_kwargs:
        return config
    return dataclasses.replace(config, policy_kwargs={**config.policy_kwargs, "net_arch": []})
