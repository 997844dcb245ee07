"""The actor-critic policy, composed of parts: encoder -> [memory] -> trunks -> heads.

- The encoder (acrl.model.encoders) turns observation rows into features (flattened values,
  one-hot indices, a CNN per image, or the user's extractor), their Box values first
  normalized by the running statistics where the policy normalizes
  (acrl.model.normalization). With ``share_features_extractor=False`` the critic has an
  encoder of its own (``critic_encoder``).
- ``memory`` is the slot of a recurrent core between the encoder and the trunks (it will
  take and return a hidden state); no policy fills it yet, so it is None and the features
  go straight to the trunks.
- The trunks (acrl.model.trunks) are the actor's and the critic's MLPs: shared, twin or
  separate.
- The heads: ``actor_head`` outputs the parameters of the action distribution made from the
  action space (acrl.model.distributions), with a learned ``log_std`` for Gaussian actions;
  ``critic_head`` outputs the state value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from acrl.config.policy import PolicyConfig
from acrl.model.distributions import DiagGaussian, make_distribution
from acrl.model.encoders import make_encoder, orthogonal_encoder_
from acrl.model.networks import (
    HIDDEN_GAIN,
    POLICY_GAIN,
    VALUE_GAIN,
    activation_class,
    orthogonal_init,
    output_dim,
)
from acrl.model.normalization import Normalization
from acrl.model.trunks import make_trunks

SDE_EPS = 1e-6
"""Added to gSDE's variance before the square root, as in Stable-Baselines3."""


class ActorCritic(nn.Module):
    """Actor and critic over one observation encoder.

    With ``shared_trunk`` both heads read one MLP; otherwise the actor and the critic have
    separate MLPs. The actor head outputs logits (Discrete; one set per dimension for
    MultiDiscrete; one per element for MultiBinary) or the mean of a diagonal Gaussian (Box)
    with a learned state-independent log-std.

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
        may_import: bool = False,
    ) -> None:
        """``may_import``: the user named ``config``'s features extractor on this command,
        so its module may be imported (acrl.model.extractors); a model file's never is."""
        super().__init__()
        self.normalization = normalization
        self.config = config or PolicyConfig()
        self.observation_space = observation_space
        self.action_space = action_space
        self.encoder = make_encoder(observation_space, self.config, may_import)
        # share_features_extractor=False: the critic encodes with parameters of its own
        self.critic_encoder = (
            None
            if self.config.share_features_extractor or not _has_parameters(self.encoder)
            else make_encoder(observation_space, self.config, may_import)
        )
        self.memory: nn.Module | None = None
        self.distribution = make_distribution(action_space)
        features = self.encoder.features_dim
        pi_arch, vf_arch = self.config.pi_arch, self.config.vf_arch
        act = activation_class(self.config.activation)
        self.trunk = make_trunks(
            features, pi_arch, vf_arch, act, self.config.layer_norm, self.config.shared_trunk
        )
        latent_dim = output_dim(features, pi_arch)
        self.actor_head = nn.Linear(latent_dim, self.distribution.param_dim)
        self.critic_head = nn.Linear(output_dim(features, vf_arch), 1)
        self.use_sde = self.config.use_sde
        gaussian = isinstance(self.distribution, DiagGaussian)
        if self.use_sde and not gaussian:
            raise ValueError("use_sde needs a continuous (Box) action space")
        self.log_std: nn.Parameter | None = None
        if gaussian:
            dim = self.distribution.param_dim
            shape = (latent_dim, dim) if self.use_sde else (dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(self.config.log_std_init)))
        if self.config.ortho_init:
            for encoder in (self.encoder, self.critic_encoder):
                if encoder is not None:
                    orthogonal_encoder_(encoder, HIDDEN_GAIN)
            self.trunk.orthogonal_(HIDDEN_GAIN)
            orthogonal_init(self.actor_head, POLICY_GAIN)
            orthogonal_init(self.critic_head, VALUE_GAIN)

    @property
    def obs_dim(self) -> int:
        """The size of a stored observation row: what a rollout stores per observation
        (acrl.model.observations; a Box's values, one float per Discrete index)."""
        return self.encoder.layout.raw_dim

    def encode(self, obs: Tensor, critic: bool = False) -> Tensor:
        """Features of a batch of observation rows: the Box values normalized if the policy
        normalizes, then encoded (one-hot indices, bits as they are, images by a CNN); with
        ``critic``, by the critic's own encoder where it has one."""
        rows = obs.reshape(obs.shape[0], -1)
        normalize = None if self.normalization is None else self.normalization.normalize_obs
        if critic and self.critic_encoder is not None:
            return self.critic_encoder(rows, normalize)
        return self.encoder(rows, normalize)

    def forward(self, obs: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """Distribution parameters and state values for a batch of observations."""
        if self.critic_encoder is None:
            actor_features, critic_features = self.trunk(self.encode(obs))
        else:
            actor_features = self.trunk.actor_features(self.encode(obs))
            critic_features = self.trunk.critic(self.encode(obs, critic=True))
        head = F.linear(actor_features, self.actor_head.weight, self.actor_head.bias)
        return self._action_params(actor_features, head), self._value_head(critic_features)

    def _action_params(self, actor_features: Tensor, head: Tensor) -> tuple[Tensor, ...]:
        """The action distribution's parameters from the actor head's output."""
        if self.log_std is None:
            return (head,)
        if self.use_sde:
            return (head, self.sde_log_std(actor_features))
        return (head, self.log_std)

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

    def value(self, obs: Tensor) -> Tensor:
        return self._value_head(self.trunk.critic(self.encode(obs, critic=True)))

    def act(
        self, obs: Tensor, deterministic: bool = False, exploration: Tensor | None = None
    ) -> Tensor:
        """Actions for ``obs``: sampled, or the mode if deterministic. Only the actor runs.

        With gSDE, ``exploration`` (from ``exploration_noise``, one matrix per row) gives
        the noise ``features @ E``; without it, actions are drawn from the marginal Gaussian.
        """
        features = self.trunk.actor_features(self.encode(obs))
        head = F.linear(features, self.actor_head.weight, self.actor_head.bias)
        if exploration is not None and not deterministic:
            return head + torch.bmm(features.unsqueeze(1), exploration).squeeze(1)
        params = self._action_params(features, head)
        dist = self.distribution
        return dist.mode(params) if deterministic else dist.sample(params)

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log probabilities and entropies of ``actions`` under the policy, and values."""
        params, values = self(obs)
        log_prob, entropy = self.distribution.log_prob_and_entropy(params, actions)
        return log_prob, entropy, values


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())
