"""The actor-critic policy, composed of parts: encoder -> [memory] -> trunks -> heads.

- The encoder (acrl.model.encoders) turns observation rows into features (flattened values,
  one-hot indices, a CNN per image, or the user's extractor), their Box values first
  normalized by the running statistics where the policy normalizes
  (acrl.model.normalization). With ``share_features_extractor=False`` the critic has an
  encoder of its own (``critic_encoder``).
- ``memory`` (acrl.model.memory), for a recurrent policy, is an LSTM or GRU core between
  the encoder and the trunks, over a hidden state per env: one flat row of floats, zeroed
  where an episode starts. A feed-forward policy has none (None) and its features go
  straight to the trunks.
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
from acrl.model.memory import Memory
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
        self.memory: Memory | None = None
        self.distribution = make_distribution(action_space, self.config.action_scaling)
        features = self.encoder.features_dim
        if self.config.is_recurrent:
            critic_features = (self.critic_encoder or self.encoder).features_dim
            self.memory = Memory(self.config, features, critic_features)
            features = self.memory.hidden
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
            if self.memory is not None:
                self.memory.orthogonal_(HIDDEN_GAIN)
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

    @property
    def recurrent(self) -> bool:
        return self.memory is not None

    @property
    def state_size(self) -> int:
        """Floats in one env's hidden state (0 for a feed-forward policy)."""
        return 0 if self.memory is None else self.memory.state_size

    def critic_only_mask(self) -> Tensor:
        """For each number of ``parameters()`` (in their order, each flattened): whether only
        the critic reads it (its own encoder, memory core, trunk and head); a shared encoder
        or trunk is the actor's. Constant over every parameter that FlatParameters lays out
        channels-last (a CNN's), so it holds for the flat vector's order too."""
        masks = {id(p): mask for p, mask in self.trunk.critic_masks()}
        critic_memory = None if self.memory is None else self.memory.critic
        for module in (self.critic_encoder, critic_memory, self.critic_head):
            for p in module.parameters() if module is not None else ():
                masks[id(p)] = torch.ones_like(p, dtype=torch.bool)
        return torch.cat(
            [
                masks.get(id(p), torch.zeros_like(p, dtype=torch.bool)).reshape(-1)
                for p in self.parameters()
            ]
        )

    def initial_state(self, n: int) -> Tensor:
        """The hidden state of ``n`` envs at the start of their episodes: zeros (n, S)."""
        return torch.zeros((n, self.state_size), device=self.critic_head.weight.device)

    def forward(
        self, obs: Tensor, state: Tensor | None = None
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Distribution parameters and state values for a batch of observations; a recurrent
        policy's from ``state`` (default: an episode's first step)."""
        actor_features, critic_features, _ = self._features(obs, state)
        head = F.linear(actor_features, self.actor_head.weight, self.actor_head.bias)
        return self._action_params(actor_features, head), self._value_head(critic_features)

    def _features(self, obs: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The actor trunk's and the critic trunk's outputs for one step, and the next state."""
        if self.memory is not None:
            actor_in, critic_in, state = self._remember_step(obs, state)
            return self.trunk.actor_features(actor_in), self.trunk.critic(critic_in), state
        if self.critic_encoder is None:
            return *self.trunk(self.encode(obs)), None
        actor_features = self.trunk.actor_features(self.encode(obs))
        return actor_features, self.trunk.critic(self.encode(obs, critic=True)), None

    def _remember_step(self, obs: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """The memory's actor and critic outputs (N, hidden) for one step of every env from
        ``state`` (None: an episode's first step), and the next state."""
        if state is None:
            state = self.initial_state(obs.shape[0])
        actor_in, critic_in, state = self._remember(obs[None], state)
        return actor_in[0], critic_in[0], state

    def _remember(
        self, obs: Tensor, state: Tensor, starts: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The memory's actor and critic outputs (T, N, hidden) over observation sequences
        (T, N, ...) from ``state``, zeroed where ``starts`` (T, N) is 1 (None: nowhere), and
        the final state."""
        assert self.memory is not None
        t, n = obs.shape[:2]
        rows = obs.reshape(t * n, -1)
        features = self.encode(rows).reshape(t, n, -1)
        critic = None
        if self.critic_encoder is not None:
            critic = self.encode(rows, critic=True).reshape(t, n, -1)
        return self.memory(features, critic, state, starts)

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

    def value(self, obs: Tensor, state: Tensor | None = None) -> Tensor:
        """State values of a batch; a recurrent policy's from ``state`` (default: zeros)."""
        if self.memory is not None:
            return self._value_head(self._features(obs, state)[1])
        return self._value_head(self.trunk.critic(self.encode(obs, critic=True)))

    def act(
        self, obs: Tensor, deterministic: bool = False, exploration: Tensor | None = None
    ) -> Tensor:
        """Actions for ``obs`` from a feed-forward policy: sampled, or the mode if
        deterministic. Only the actor runs (a recurrent policy acts with ``step``).

        With gSDE, ``exploration`` (from ``exploration_noise``, one matrix per row) gives
        the noise ``features @ E``; without it, actions are drawn from the marginal Gaussian.
        """
        assert self.memory is None, "a recurrent policy acts with step(obs, state)"
        return self._actions(
            self.trunk.actor_features(self.encode(obs)), deterministic, exploration
        )

    def step(
        self,
        obs: Tensor,
        state: Tensor | None,
        deterministic: bool = False,
        exploration: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Actions for ``obs`` and the next hidden state (None for a feed-forward policy): one
        step of every env from ``state`` (default: an episode's first step)."""
        if self.memory is None:
            return self.act(obs, deterministic, exploration), None
        actor_in, _, state = self._remember_step(obs, state)
        actions = self._actions(self.trunk.actor_features(actor_in), deterministic, exploration)
        return actions, state

    def _actions(self, features: Tensor, deterministic: bool, exploration: Tensor | None) -> Tensor:
        head = F.linear(features, self.actor_head.weight, self.actor_head.bias)
        if exploration is not None and not deterministic:
            return head + torch.bmm(features.unsqueeze(1), exploration).squeeze(1)
        params = self._action_params(features, head)
        dist = self.distribution
        return dist.mode(params) if deterministic else dist.sample(params)

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log probabilities and entropies of ``actions`` under a feed-forward policy, and
        values (a recurrent policy's: ``evaluate_sequence``)."""
        assert self.memory is None, "a recurrent policy evaluates sequences: evaluate_sequence"
        params, values = self(obs)
        log_prob, entropy = self.distribution.log_prob_and_entropy(params, actions)
        return log_prob, entropy, values

    def evaluate_sequence(
        self, obs: Tensor, actions: Tensor, state: Tensor, starts: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A recurrent policy over a rollout: ``obs`` (T + 1, N, ...) seen from ``state``
        (N, S), the state zeroed before step t where ``starts[t]`` (T + 1, N) is 1. Returns
        the log-probabilities and entropies of ``actions`` (T, N, ...) and the values of the
        first T observations, flat (T * N,), and the values of the last one (N,)."""
        actor_in, critic_in, _ = self._remember(obs, state, starts)
        t = actions.shape[0]
        actor_features = self.trunk.actor_features(actor_in[:t].flatten(0, 1))
        critic_features = self.trunk.critic(critic_in.flatten(0, 1))
        head = F.linear(actor_features, self.actor_head.weight, self.actor_head.bias)
        params = self._action_params(actor_features, head)
        flat_actions = actions.reshape(-1, *actions.shape[2:])
        log_prob, entropy = self.distribution.log_prob_and_entropy(params, flat_actions)
        values = self._value_head(critic_features)
        n = actions.shape[1]
        return log_prob, entropy, values[: t * n], values[t * n :]


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())
