"""The actor-critic module: trunk(s), an actor head shaped by the action space, a critic head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from acrl.distributions import make_distribution
from acrl.networks import (
    HIDDEN_GAIN,
    POLICY_GAIN,
    VALUE_GAIN,
    activation_class,
    orthogonal_init,
    output_dim,
)
from acrl.normalization import Normalization
from acrl.trunks import make_trunks


@dataclass(frozen=True)
class PolicyConfig:
    """Network shape. ``net_arch`` is a list of hidden sizes, or {"pi": [...], "vf": [...]}."""

    net_arch: tuple[int, ...] | Mapping[str, tuple[int, ...]] = (64, 64)
    activation: str = "tanh"
    shared_trunk: bool = False
    layer_norm: bool = False
    ortho_init: bool = True
    log_std_init: float = 0.0
    use_sde: bool = False  # set by the algorithm's ``use_sde``, not through policy_kwargs

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None) -> PolicyConfig:
        """Build from SB3-style ``policy_kwargs`` (accepts ``activation_fn`` too)."""
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ValueError(f"policy_kwargs must be a mapping, got {kwargs!r}")
        kwargs = dict(kwargs or {})
        if "activation_fn" in kwargs:
            kwargs["activation"] = kwargs.pop("activation_fn")
        known = {
            "net_arch",
            "activation",
            "shared_trunk",
            "layer_norm",
            "ortho_init",
            "log_std_init",
        }
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(
                f"unknown policy_kwargs {unknown}; allowed: {', '.join(sorted(known))}"
            )
        arch = kwargs.get("net_arch", (64, 64))
        kwargs["net_arch"] = _normalize_arch(arch)
        activation = kwargs.get("activation", "tanh")
        activation_class(activation)
        if not isinstance(activation, str):
            activation = activation.__name__.lower()
        kwargs["activation"] = activation
        for flag in ("shared_trunk", "layer_norm", "ortho_init"):
            if not isinstance(kwargs.get(flag, False), bool):
                raise ValueError(
                    f"policy_kwargs.{flag} must be true or false, got {kwargs[flag]!r}"
                )
        log_std_init = kwargs.get("log_std_init", 0.0)
        if isinstance(log_std_init, bool) or not isinstance(log_std_init, (int, float)):
            raise ValueError(f"policy_kwargs.log_std_init must be a number, got {log_std_init!r}")
        kwargs["log_std_init"] = float(log_std_init)
        config = cls(**kwargs)
        if config.shared_trunk and isinstance(config.net_arch, Mapping):
            raise ValueError("policy_kwargs: shared_trunk=True needs net_arch as a list of sizes")
        return config

    def to_kwargs(self) -> dict[str, Any]:
        arch = self.net_arch
        arch_json: Any = (
            {k: list(v) for k, v in arch.items()} if isinstance(arch, Mapping) else list(arch)
        )
        return {
            "net_arch": arch_json,
            "activation": self.activation,
            "shared_trunk": self.shared_trunk,
            "layer_norm": self.layer_norm,
            "ortho_init": self.ortho_init,
            "log_std_init": self.log_std_init,
        }


def _normalize_arch(arch: Any) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    def sizes(value: Any, name: str) -> tuple[int, ...]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ValueError(f"policy_kwargs.{name} must be a list of layer sizes, got {value!r}")
        out = []
        for size in value:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(
                    f"policy_kwargs.{name} sizes must be positive integers, got {size!r}"
                )
            out.append(int(size))
        return tuple(out)

    if isinstance(arch, Mapping):
        if set(arch) != {"pi", "vf"}:
            raise ValueError(
                f"policy_kwargs.net_arch as a dict needs keys 'pi' and 'vf', got {sorted(arch)}"
            )
        return {"pi": sizes(arch["pi"], "net_arch.pi"), "vf": sizes(arch["vf"], "net_arch.vf")}
    return sizes(arch, "net_arch")


def flat_obs_dim(observation_space: spaces.Space) -> int:
    """Size of a flattened Box observation; other spaces are refused."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(
            f"unsupported observation space {observation_space}: acrl handles Box observations"
        )
    return int(np.prod(observation_space.shape))


SDE_EPS = 1e-6
"""Added to gSDE's variance before the square root, as in Stable-Baselines3."""


class ActorCritic(nn.Module):
    """Actor and critic over flattened Box observations.

    With ``shared_trunk`` both heads read one MLP; otherwise the actor and the
    critic have separate MLPs (acrl.trunks). The actor head outputs logits (Discrete) or the
    mean of a diagonal Gaussian (Box) with a learned state-independent log-std.

    With ``use_sde`` (generalized state-dependent exploration, Raffin et al. 2021) the
    Gaussian's noise is ``features @ E`` for a matrix ``E ~ N(0, exp(log_std)^2)`` of shape
    (features, actions) that the collector draws per env and keeps for several steps
    (``exploration_noise``): exploration is smooth in time and scales with the state. The
    log-probabilities are those of its marginal N(mean, sqrt(features^2 @ exp(log_std)^2)),
    with the features detached, as in Stable-Baselines3.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: PolicyConfig | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        super().__init__()
        self.normalization = normalization
        self.config = config or PolicyConfig()
        self.observation_space = observation_space
        self.action_space = action_space
        self.obs_dim = flat_obs_dim(observation_space)
        self.distribution = make_distribution(action_space)
        act = activation_class(self.config.activation)
        arch = self.config.net_arch
        pi_arch, vf_arch = (arch["pi"], arch["vf"]) if isinstance(arch, Mapping) else (arch, arch)
        self.trunk = make_trunks(
            self.obs_dim, pi_arch, vf_arch, act, self.config.layer_norm, self.config.shared_trunk
        )
        latent_dim = output_dim(self.obs_dim, pi_arch)
        self.actor_head = nn.Linear(latent_dim, self.distribution.param_dim)
        self.critic_head = nn.Linear(output_dim(self.obs_dim, vf_arch), 1)
        self.use_sde = self.config.use_sde
        if self.use_sde and not self.distribution.action_shape():
            raise ValueError("use_sde needs a continuous (Box) action space")
        if self.distribution.action_shape():
            dim = self.distribution.param_dim
            shape = (latent_dim, dim) if self.use_sde else (dim,)
            init = float(self.config.log_std_init)
            self.log_std: nn.Parameter | None = nn.Parameter(torch.full(shape, init))
        else:
            self.log_std = None
        if self.config.ortho_init:
            self.trunk.orthogonal_(HIDDEN_GAIN)
            orthogonal_init(self.actor_head, POLICY_GAIN)
            orthogonal_init(self.critic_head, VALUE_GAIN)

    def forward(self, obs: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """Distribution parameters and state values for a batch of observations."""
        actor_features, head, values = self._heads(obs)
        if self.log_std is None:
            return (head,), values
        if self.use_sde:
            return (head, self.sde_log_std(actor_features)), values
        return (head, self.log_std), values

    def _heads(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Actor features, actor head output and values."""
        actor_features, critic_features = self.trunk(self._prepare(obs))
        head = F.linear(actor_features, self.actor_head.weight, self.actor_head.bias)
        return actor_features, head, self._value_head(critic_features)

    def sde_log_std(self, actor_features: Tensor) -> Tensor:
        """gSDE: per-sample log-std of the marginal Gaussian, log sqrt(f^2 @ sigma^2 + eps)."""
        assert self.log_std is not None
        variance = actor_features.detach().pow(2) @ torch.exp(2.0 * self.log_std)
        return 0.5 * torch.log(variance + SDE_EPS)

    def exploration_noise(self, n: int) -> Tensor:
        """gSDE: one exploration matrix per env, (n, features, actions), drawn with torch's
        generator from N(0, exp(log_std)^2)."""
        assert self.use_sde and self.log_std is not None
        std = self.log_std.detach().exp()
        return torch.randn((n, *std.shape), dtype=std.dtype, device=std.device) * std

    def _value_head(self, critic_features: Tensor) -> Tensor:
        return F.linear(critic_features, self.critic_head.weight, self.critic_head.bias).squeeze(-1)

    def _prepare(self, obs: Tensor) -> Tensor:
        obs = obs.reshape(obs.shape[0], -1)
        return obs if self.normalization is None else self.normalization.normalize_obs(obs)

    def value(self, obs: Tensor) -> Tensor:
        obs = self._prepare(obs)
        return self._value_head(self.trunk.critic(obs))

    def act(
        self, obs: Tensor, deterministic: bool = False, exploration: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Actions (sampled, or the mode if deterministic) and values for ``obs``.

        With gSDE, ``exploration`` (from ``exploration_noise``, one matrix per row) gives
        the noise ``features @ E``; without it, actions are drawn from the marginal Gaussian.
        """
        if exploration is not None and not deterministic:
            actor_features, head, values = self._heads(obs)
            noise = torch.bmm(actor_features.unsqueeze(1), exploration).squeeze(1)
            return head + noise, values
        params, values = self(obs)
        dist = self.distribution
        actions = dist.mode(params) if deterministic else dist.sample(params)
        return actions, values

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log probabilities and entropies of ``actions`` under the policy, and values."""
        params, values = self(obs)
        log_prob, entropy = self.distribution.log_prob_and_entropy(params, actions)
        return log_prob, entropy, values
