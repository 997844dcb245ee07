"""Observation normalization, reward scaling and value-target scaling with running statistics.

The statistics are buffers of the policy module, so they are saved and loaded with the
weights, applied by ``predict`` and evaluation, and shared by A3C workers with the model.
They change only when training calls ``update_*``; acting and evaluation never update them.
Observation statistics cover the first ``obs_dim`` columns of a stored row: its Box values
(acrl.model.observations), never the bits or indices of MultiBinary, Discrete and
MultiDiscrete parts, which reach the encoder as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from gymnasium import spaces
from torch import Tensor, nn

from acrl.config.hyperparams import A2CConfig
from acrl.model.encoders import leading_floats
from acrl.model.observations import observation_layout


class RunningMeanStd(nn.Module):
    """Mean and variance of everything seen so far, merged batch by batch (in place)."""

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        # With several processes: given a batch's moment_sums, the sums to merge instead
        # (acrl.distributed: over every rank, so all keep the same statistics; the Ray
        # backend of A3C: the same sums, recorded for the parameter server).
        self.reduce: Callable[[Tensor], Tensor] | None = None

    @torch.no_grad()
    def update(self, batch: Tensor) -> None:
        """Merge a batch of shape (B, *shape) (Chan et al.'s parallel algorithm)."""
        batch = batch.to(torch.float64)
        if self.reduce is not None:
            self.merge_sums(self.reduce(moment_sums(batch)))
        elif batch.shape[0] > 0:
            self._merge(batch.mean(0), batch.var(0, correction=0), float(batch.shape[0]))

    @torch.no_grad()
    def merge_sums(self, sums: Tensor) -> None:
        """Merge a batch given by its ``moment_sums`` (size, sum, sum of squares)."""
        n, k = float(sums[0]), self.mean.numel()
        if n == 0:
            return
        mean = (sums[1 : 1 + k] / n).reshape(self.mean.shape)
        var = (sums[1 + k :] / n).reshape(self.mean.shape) - mean.pow(2)
        self._merge(mean, var.clamp_min(0.0), n)

    def _merge(self, batch_mean: Tensor, batch_var: Tensor, n: float) -> None:
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)


def moment_sums(batch: Tensor) -> Tensor:
    """A batch of shape (B, *shape) as one float64 vector: B, the sums and the sums of
    squares; what processes add up to merge their batches (``RunningMeanStd.merge_sums``)."""
    batch = batch.to(torch.float64)
    return torch.cat(
        [
            torch.tensor([float(batch.shape[0])], dtype=torch.float64),
            batch.sum(0).reshape(-1),
            batch.pow(2).sum(0).reshape(-1),
        ]
    )


class Normalization(nn.Module):
    """Normalizes observations (clipped), scales rewards by the std of the discounted return
    (``ret_rms``, as SB3's VecNormalize) and value targets by the std of the GAE returns
    (``value_rms``, as Tianshou's ``rew_norm``: the critic learns returns / std)."""

    def __init__(
        self,
        obs_dim: int,
        normalize_obs: bool,
        normalize_reward: bool,
        normalize_value_targets: bool = False,
        clip: float = 10.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.obs_rms = RunningMeanStd((obs_dim,)) if normalize_obs else None
        self.ret_rms = RunningMeanStd(()) if normalize_reward else None
        self.value_rms = RunningMeanStd(()) if normalize_value_targets else None
        self.clip = clip
        self.eps = eps

    def normalize_obs(self, obs: Tensor) -> Tensor:
        """Rows of observations with their Box columns (the first ``obs_dim``) normalized
        and clipped, and the other columns as they are."""
        if self.obs_rms is None or self.obs_rms.mean.numel() == 0:  # no Box part
            return obs
        box = self.obs_rms.mean.shape[0]
        std = torch.sqrt(self.obs_rms.var + self.eps).to(obs.dtype)
        scaled = (obs[..., :box] - self.obs_rms.mean.to(obs.dtype)) / std
        scaled = scaled.clamp(-self.clip, self.clip)
        return scaled if box == obs.shape[-1] else torch.cat([scaled, obs[..., box:]], dim=-1)

    def scale_rewards(self, rewards: Tensor) -> Tensor:
        if self.ret_rms is None:
            return rewards
        std = torch.sqrt(self.ret_rms.var + self.eps).to(rewards.device, rewards.dtype)
        return (rewards / std).clamp(-self.clip, self.clip)

    def update_obs(self, obs: Tensor) -> None:
        """Merge stored rows (acrl.model.observations) into the statistics of their Box
        values: the first ``box`` float values (of uint8 rows: their first bytes, as floats)."""
        if self.obs_rms is not None and self.obs_rms.mean.numel() > 0:  # no Box part: nothing
            box = self.obs_rms.mean.shape[0]
            rows = obs.reshape(-1, obs.shape[-1])
            if rows.dtype == torch.uint8:  # a space with images: the floats' bytes come first
                rows = leading_floats(rows, box)
            self.obs_rms.update(rows[:, :box])

    def update_returns(self, returns: Tensor) -> None:
        if self.ret_rms is not None:
            self.ret_rms.update(returns.reshape(-1))

    def update_value_targets(self, returns: Tensor) -> None:
        """Merge value targets in reward units (GAE returns of valid steps)."""
        if self.value_rms is not None:
            self.value_rms.update(returns.reshape(-1))

    def statistics(self) -> dict[str, RunningMeanStd]:
        """The running statistics this policy keeps, by attribute name (those switched on)."""
        named = {"obs_rms": self.obs_rms, "ret_rms": self.ret_rms, "value_rms": self.value_rms}
        return {name: rms for name, rms in named.items() if rms is not None}


def value_scale(normalization: Normalization | None) -> float:
    """What the critic's values are in units of: the std of the value targets seen so far
    with value-target normalization, else 1."""
    if normalization is None or normalization.value_rms is None:
        return 1.0
    return float(torch.sqrt(normalization.value_rms.var + normalization.eps))


def make_normalization(observation_space: spaces.Space, config: A2CConfig) -> Normalization | None:
    """The statistics a policy of ``observation_space`` with ``config``'s settings carries
    (observations: its Box values, ``ObservationLayout.box_dim``), or None when no
    normalization option is on."""
    options = (config.normalize_obs, config.normalize_reward, config.normalize_value_targets)
    if not any(options):
        return None
    return Normalization(observation_layout(observation_space).box_dim, *options)
