"""Rollout storage and collection: n steps from every environment of a VectorEnv.

Storage is preallocated once as (T, N, ...) tensors and written in place.
Both Gymnasium autoreset modes are handled so that no transition mixes two
episodes:

- NEXT_STEP: the step after an episode ends only resets that env (its action is
  ignored, its reward is 0). Such a step is stored with ``valid = 0`` and left
  out of the loss. The observation it starts from is the final observation of
  the finished episode, so ``next_values`` of a truncated step is already the
  value of the final observation.
- SAME_STEP: the step that ends an episode returns the first observation of the
  next one; the final observation comes in ``info["final_obs"]`` and a
  truncated step bootstraps from its value.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from acrl.envs import autoreset_mode
from acrl.policy import ActorCritic


@dataclass
class Rollout:
    """One rollout of T steps from N environments; every field is (T, N, ...)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    values: Tensor
    next_values: Tensor
    terminated: Tensor
    done: Tensor
    valid: Tensor

    @classmethod
    def allocate(
        cls, n_steps: int, n_envs: int, policy: ActorCritic, device: torch.device
    ) -> Rollout:
        dist = policy.distribution

        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros((n_steps, n_envs, *shape), dtype=dtype, device=device)

        return cls(
            obs=zeros(policy.obs_dim),
            actions=zeros(*dist.action_shape(), dtype=dist.action_dtype()),
            rewards=zeros(),
            values=zeros(),
            next_values=zeros(),
            terminated=zeros(),
            done=zeros(),
            valid=zeros(),
        )

    @property
    def n_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_envs(self) -> int:
        return self.rewards.shape[1]


class EpisodeTracker:
    """Running return and length of each env's current episode, and finished episodes."""

    def __init__(self, n_envs: int, window: int = 100) -> None:
        self.returns = np.zeros(n_envs, dtype=np.float64)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.recent: deque[tuple[float, int]] = deque(maxlen=window)
        self.finished: list[tuple[float, int]] = []
        self.total_episodes = 0

    def step(self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray) -> None:
        self.returns += rewards * valid
        self.lengths += valid.astype(np.int64)
        if done.any():
            for i in np.flatnonzero(done):
                episode = (float(self.returns[i]), int(self.lengths[i]))
                self.recent.append(episode)
                self.finished.append(episode)
            self.total_episodes += int(done.sum())
            self.returns[done] = 0.0
            self.lengths[done] = 0

    def clear_current(self) -> None:
        self.returns[:] = 0.0
        self.lengths[:] = 0

    def drain(self) -> list[tuple[float, int]]:
        """Episodes finished since the last call."""
        out, self.finished = self.finished, []
        return out

    def recent_mean_return(self) -> float:
        return float(np.mean([r for r, _ in self.recent])) if self.recent else float("nan")

    def recent_mean_length(self) -> float:
        return float(np.mean([n for _, n in self.recent])) if self.recent else float("nan")


class RolloutCollector:
    """Steps a VectorEnv with a policy and fills a preallocated Rollout."""

    def __init__(
        self,
        env: VectorEnv,
        policy: ActorCritic,
        n_steps: int,
        device: torch.device,
        seed: int | None = None,
    ) -> None:
        self.env = env
        self.policy = policy
        self.device = device
        self.mode = autoreset_mode(env)
        self.n_envs = env.num_envs
        self.rollout = Rollout.allocate(n_steps, self.n_envs, policy, device)
        self.episodes = EpisodeTracker(self.n_envs)
        self._seed = seed
        self._obs: Tensor | None = None
        self._prev_done = np.zeros(self.n_envs, dtype=bool)

    def reset(self, seed: int | None = None) -> None:
        obs, _ = self.env.reset(seed=seed)
        self._obs = self._to_tensor(obs)
        self._prev_done[:] = False
        self.episodes.clear_current()

    def _to_tensor(self, array: np.ndarray) -> Tensor:
        tensor = torch.as_tensor(array, dtype=torch.float32, device=self.device)
        return tensor.reshape(tensor.shape[0], -1)

    def collect(self) -> Rollout:
        """Take n steps in every env with the current policy; return the filled rollout."""
        if self._obs is None:
            self.reset(self._seed)
        assert self._obs is not None
        ro = self.rollout
        next_obs_values: dict[tuple[int, int], Tensor] = {}
        same_step = self.mode is AutoresetMode.SAME_STEP
        dist = self.policy.distribution
        with torch.inference_mode():
            for t in range(ro.n_steps):
                actions, values = self.policy.act(self._obs)
                ro.obs[t] = self._obs
                ro.actions[t] = actions
                ro.values[t] = values
                valid = np.ones(self.n_envs) if same_step else (~self._prev_done).astype(np.float64)
                obs, rewards, terminated, truncated, info = self.env.step(
                    dist.to_env(actions.cpu().numpy())
                )
                done = np.logical_or(terminated, truncated)
                ro.rewards[t] = torch.as_tensor(rewards, dtype=torch.float32)
                ro.terminated[t] = torch.as_tensor(terminated, dtype=torch.float32)
                ro.done[t] = torch.as_tensor(done, dtype=torch.float32)
                ro.valid[t] = torch.as_tensor(valid, dtype=torch.float32)
                if same_step and truncated.any():
                    next_obs_values.update(self._final_values(t, info, truncated & ~terminated))
                self.episodes.step(np.asarray(rewards, dtype=np.float64), done, valid)
                self._prev_done = done
                self._obs = self._to_tensor(obs)
            last_values = self.policy.value(self._obs)
        ro.next_values[:-1] = ro.values[1:]
        ro.next_values[-1] = last_values
        for (t, i), value in next_obs_values.items():
            ro.next_values[t, i] = value
        return ro

    def _final_values(
        self, t: int, info: dict, truncated: np.ndarray
    ) -> dict[tuple[int, int], Tensor]:
        """Critic values of the final observations of truncated episodes (SAME_STEP mode)."""
        envs = np.flatnonzero(truncated)
        if len(envs) == 0:
            return {}
        final = np.stack([np.asarray(info["final_obs"][i]) for i in envs])
        values = self.policy.value(self._to_tensor(final))
        return {(t, int(i)): values[k] for k, i in enumerate(envs)}
