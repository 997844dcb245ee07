"""Rollout collection: n steps from every environment of a VectorEnv, into a Rollout
(acrl.learner.storage).

Storage is preallocated once as (T, N, ...) arrays on the host, written in place; on the
CPU the rollout's tensors are views of them, on another device copies made once per rollout.
The backend (acrl.learner.backends) acts. Both Gymnasium autoreset modes are handled so that
no transition mixes two episodes:

- NEXT_STEP: the step after an episode ends only resets that env (its action is
  ignored, its reward is 0). Such a step is stored with ``valid = 0`` and left
  out of the loss. The observation it starts from is the final observation of
  the finished episode, so ``next_values`` of a truncated step is already the
  value of the final observation.
- SAME_STEP: the step that ends an episode returns the first observation of the
  next one; the final observation comes in ``info["final_obs"]`` and a
  truncated step bootstraps from its value.

A recurrent policy's collector carries each env's hidden state from step to step and from
one rollout to the next, zeroing it where an episode starts: with NEXT_STEP at the
observation after the reset step (the reset step itself still sees the finished episode's
final observation with that episode's state), with SAME_STEP at the observation after a done.
The rollout keeps the state its first step started from (``initial_state``) and where the
episodes start (``starts``, one row per observation, the one after the last step included),
so that the update recomputes the same sequence; a truncated episode's final observation
(SAME_STEP) is valued with the state it was seen with, the one after the step. Where a lost
life ends the learner's episode, the state is zeroed too (as Stable-Baselines3's episodic-life
wrapper makes its recurrent policies do).

Two training signals may differ from the env's (Atari's, as DQN and the zoo train): rewards
clipped to their sign, and a lost life ending the episode for the learner while the game goes
on. Only the learner sees them; the episodes tracked (logged, reported) are the env's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from acrl.envs import EpisodeStarts, abandon_envs, autoreset_mode, env_id_of, lives_in
from acrl.errors import EnvError, NonFiniteError, first_line
from acrl.learner.storage import EpisodeTracker, Rollout
from acrl.model.normalization import Normalization
from acrl.model.policy import ActorCritic

if TYPE_CHECKING:
    from acrl.learner.backends import Backend
    from acrl.learner.backends.torch_backend import TorchBackend


class EnvCalls:
    """A count of the collector's calls into its env, for a watch in another thread
    (acrl.engines.env_watch): ``entered`` goes up before each call, ``left`` catches up after
    it, and ``what`` names the call."""

    def __init__(self) -> None:
        self.entered = 0
        self.left = 0
        self.what = "step()"

    def run(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, counted as a call named ``what`` (the collector's
        steps are counted inline: a step is short)."""
        self.what = what
        self.entered += 1
        try:
            return call(*args, **kwargs)
        finally:
            self.left = self.entered


class RolloutCollector:
    """Steps a VectorEnv with a policy's backend and fills a preallocated Rollout.

    What comes from the environment and the backend's actor (observations, rewards, flags,
    actions) is written into NumPy arrays: one copy per step and no tensor conversions in
    the loop. The critic runs only for the final observations of truncated episodes in
    SAME_STEP mode (they are not kept); the update computes every other value.
    """

    def __init__(
        self,
        env: VectorEnv,
        policy: ActorCritic,
        n_steps: int,
        device: torch.device,
        seed: int | None = None,
        gamma: float = 0.99,
        normalization: Normalization | None = None,
        stats_lock: AbstractContextManager[Any] | None = None,
        sde_sample_freq: int = -1,
        backend: Backend | None = None,
        name_env_errors: bool = False,
        clip_reward: bool = False,
        terminal_on_life_loss: bool = False,
    ) -> None:
        """``backend`` acts (default: the torch module itself). ``normalization`` (default:
        the policy's) scales the rewards by the running std of the discounted return, whose
        statistics are updated under ``stats_lock`` if given. A gSDE policy gets new
        exploration matrices at the start of every rollout and, with ``sde_sample_freq`` > 0,
        every that many steps within it (Stable-Baselines3's rule). With ``name_env_errors``
        an exception that the env raises becomes an EnvError naming the env (A2C's one line;
        an A3C worker reports the env's own exception with its rank). ``clip_reward`` and
        ``terminal_on_life_loss`` (the env must report ``info["lives"]``) change what the
        learner sees, not the episodes tracked."""
        if backend is None:
            from acrl.learner.backends.torch_backend import TorchBackend

            backend = TorchBackend(policy)
        self.env = env
        self.policy = policy
        self.backend = backend
        self.gamma = gamma
        self.normalization = policy.normalization if normalization is None else normalization
        self._stats_lock = stats_lock or contextlib.nullcontext()
        self.device = device
        self.mode = autoreset_mode(env)
        self.n_envs = n = env.num_envs
        self.n_steps = n_steps
        self.sde_sample_freq = sde_sample_freq
        self.name_env_errors = name_env_errors
        self.clip_reward = clip_reward
        self.terminal_on_life_loss = terminal_on_life_loss
        self._lives = np.zeros(n, dtype=np.int64)
        self.exploration: Tensor | None = None
        self.episodes = EpisodeTracker(n)
        self._seed = seed
        self._started = False
        self.calls = EnvCalls()
        self.envs_gone = False  # an abandoned call killed the envs' processes
        self._episode_starts = EpisodeStarts(env)  # which steps count, where episodes start
        self._discounted_return = np.zeros(n, dtype=np.float64)
        dist = policy.distribution
        action_dtype = np.int64 if dist.action_dtype() == torch.int64 else np.float32
        # Host buffers; obs has one extra row for the observation after the last step. Each
        # observation is stored as one flat row of the policy's layout (acrl.model.observations;
        # uint8 for images).
        self._layout = policy.encoder.layout
        self._obs = np.zeros((n_steps + 1, n, policy.obs_dim), dtype=self._layout.dtype)
        # reward, terminated, done, valid, final_mask, final_values
        self._flags = np.zeros((6, n_steps, n), dtype=np.float32)
        self._actions = np.zeros((n_steps, n, *dist.action_shape()), dtype=action_dtype)
        # a recurrent policy's state: carried on the policy's device, kept at each rollout's
        # start on the host; the episode starts of each observation
        self._state = policy.initial_state(n)
        self._initial_state = np.zeros((n, policy.state_size), dtype=np.float32)
        self._starts = np.zeros((n_steps + 1, n), dtype=np.float32)
        self._torch: TorchBackend | None = None  # a recurrent policy's (acrl.model.memory)
        if policy.recurrent:
            if backend.name != "torch":
                raise ValueError(
                    f"a recurrent policy acts on the torch backend, not {backend.name}"
                )
            self._torch = cast("TorchBackend", backend)
        host = self._host_tensors()
        self.rollout = (
            host
            if device.type == "cpu"
            else Rollout(**{k: torch.empty_like(v, device=device) for k, v in vars(host).items()})
        )

    def _host_tensors(self) -> Rollout:
        """The host buffers as a Rollout of tensor views."""
        flags = torch.from_numpy(self._flags)
        obs = torch.from_numpy(self._obs)
        return Rollout(
            obs=obs[: self.n_steps],
            next_obs=obs[self.n_steps],
            actions=torch.from_numpy(self._actions),
            rewards=flags[0],
            values=torch.zeros_like(flags[0]),
            next_values=torch.zeros_like(flags[0]),
            terminated=flags[1],
            done=flags[2],
            valid=flags[3],
            final_mask=flags[4],
            final_values=flags[5],
            initial_state=torch.from_numpy(self._initial_state),
            starts=torch.from_numpy(self._starts),
        )

    @property
    def env_name(self) -> str:
        """The env's id for messages."""
        return env_id_of(self.env) or "the environment"

    def reset(self, seed: int | None = None) -> None:
        try:
            obs, info = self.calls.run("reset()", self.env.reset, seed=seed)
        except Exception as exc:
            if not self.name_env_errors:
                raise
            raise self._env_error("reset()", exc) from exc
        self._store(obs, self._obs[0], "reset()")
        first = self._layout.floats_of(self._obs[0])
        if not np.isfinite(first).all():
            i, d = np.argwhere(~np.isfinite(first))[0]
            raise NonFiniteError(
                f"{self.env_name} returned a non-finite observation ({first[i, d]}) "
                f"from reset() in env {i}: the environment's fault, not the learner's"
            )
        if self.terminal_on_life_loss:
            self._lives = lives_in(info, self.n_envs, self.env_name)
        self._episode_starts = EpisodeStarts(self.env)
        self._starts[0] = 1.0
        self._state = self.policy.initial_state(self.n_envs)
        self.episodes.clear_current()
        self._started = True

    def abandon(self) -> None:
        """After a call into the env was given up on (acrl.engines.env_watch): the envs and
        this rollout are half way through a step, so the next collect starts with a reset;
        envs in subprocesses are gone (acrl.envs.abandon_envs): ``envs_gone``."""
        self._started = False
        self.envs_gone = abandon_envs(self.env)

    def collect(self) -> Rollout:
        """Take n steps in every env with the current policy; return the filled rollout."""
        if not self._started:
            self.reset(self._seed)
        else:
            self._obs[0] = self._obs[self.n_steps]
            self._starts[0] = self._starts[self.n_steps]
        rewards, terminated, done, valid, final_mask, final_values = self._flags
        final_mask[:] = 0.0
        same_step = self.mode is AutoresetMode.SAME_STEP
        to_env = self.policy.distribution.to_env
        act = self.backend.act
        recurrent = self.policy.recurrent
        calls = self.calls
        calls.what = "step()"
        if recurrent:
            self._initial_state[...] = self._state.cpu().numpy()
        # NaN and inf are found by _check_finite, which names their source: no warnings first
        errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        with torch.inference_mode(), self.backend.acting(), errstate:
            for t in range(self.n_steps):
                self._draw_exploration(t)
                if recurrent:
                    actions = self._actions[t] = self._step_recurrent(t)
                else:
                    actions = self._actions[t] = act(self._obs[t], self.exploration)
                valid_t = self._episode_starts.live
                calls.entered += 1
                try:
                    obs, reward, term, trunc, info = self.env.step(to_env(actions))
                except Exception as exc:
                    if not self.name_env_errors:
                        raise
                    raise self._env_error("step()", exc) from exc
                finally:
                    calls.left = calls.entered
                done_t = self._episode_starts.step(term, trunc)
                self._store(obs, self._obs[t + 1], "step()")
                rewards[t], terminated[t], done[t], valid[t] = reward, term, done_t, valid_t
                if self.clip_reward:
                    np.sign(rewards[t], out=rewards[t])
                lost = None
                if self.terminal_on_life_loss:
                    lives = lives_in(info, self.n_envs, self.env_name)
                    lost = (lives < self._lives) & ~done_t
                    terminated[t] += lost
                    done[t] += lost
                    self._lives = lives
                if same_step and trunc.any():
                    self._final_values(t, info, trunc & ~term)
                # the next observation starts an episode (EpisodeStarts); the learner's,
                # after a lost life too (no reset step)
                self._starts[t + 1] = self._episode_starts.starts
                if lost is not None:
                    self._starts[t + 1] = np.logical_or(self._starts[t + 1], lost)
                self.episodes.step(reward, done_t, valid_t)
        self._check_finite()
        if self.normalization is not None and self.normalization.ret_rms is not None:
            self._scale_rewards()
        if self.device.type != "cpu":
            for name, host in vars(self._host_tensors()).items():
                getattr(self.rollout, name).copy_(host, non_blocking=True)
        return self.rollout

    def _step_recurrent(self, t: int) -> np.ndarray:
        """A recurrent policy's actions at step t from each env's state, zeroed where an
        episode starts at ``obs[t]``; the state moves on."""
        starts = torch.from_numpy(self._starts[t]).to(self._state.device)
        state = self._state * (1.0 - starts).unsqueeze(1)
        assert self._torch is not None
        actions, self._state = self._torch.step(self._obs[t], state, self.exploration)
        return actions

    def _draw_exploration(self, t: int) -> None:
        freq = self.sde_sample_freq
        if self.policy.use_sde and (t == 0 or (freq > 0 and t % freq == 0)):
            self.exploration = self.policy.exploration_noise(self.n_envs)

    def _store(self, obs: Any, rows: np.ndarray, call: str) -> None:
        """Write observations that ``call`` returned into ``rows``; one outside the env's
        observation space (an index out of range, a part of the wrong size) is an EnvError."""
        try:
            self._layout.write(obs, rows)
        except ValueError as exc:
            raise EnvError(
                f"{self.env_name} returned an observation outside its space from {call}: "
                f"{first_line(exc)}"
            ) from None

    def _env_error(self, call: str, exc: Exception) -> EnvError:
        """The one line for an exception raised by the env's ``call``."""
        return EnvError(
            f"{self.env_name} raised in {call}: {type(exc).__name__}: {first_line(exc)}"
        )

    def _check_finite(self) -> None:
        """Raise NonFiniteError if a NaN or inf came in, blaming its first source: the env (an
        observation or reward it returned) or the policy (an action it took from finite
        observations). Checked once per rollout: a few microseconds, and the rollout is
        never learned from."""
        faults: list[tuple[int, int, str]] = []  # (step, the policy's first at a step, text)
        observations = self._layout.floats_of(self._obs[1:])  # pixels are always finite
        for what, values in (("reward", self._flags[0]), ("observation", observations)):
            if not np.isfinite(values).all():
                where = tuple(np.argwhere(~np.isfinite(values))[0])
                t, i = where[0], where[1]
                text = (
                    f"{self.env_name} returned a non-finite {what} ({values[where]}) at step "
                    f"{t} of a rollout in env {i}: the environment's fault, not the learner's"
                )
                faults.append((int(t), 1, text))
        actions = self._actions
        if actions.dtype.kind == "f" and not np.isfinite(actions).all():
            where = tuple(np.argwhere(~np.isfinite(actions))[0])
            text = (
                f"the policy took a non-finite action ({actions[where]}) at step {where[0]} of "
                f"a rollout in env {where[1]}, from finite observations: the learner's fault, "
                "not the environment's (its updates diverged: try a lower learning_rate)"
            )
            faults.append((int(where[0]), 0, text))
        if faults:
            raise NonFiniteError(min(faults)[2])

    def _scale_rewards(self) -> None:
        """Divide the rollout's rewards by the running std of the discounted return."""
        assert self.normalization is not None
        rewards, _, done, valid = self._flags[:4]
        returns = self._discounted_return
        seen = []
        for t in range(self.n_steps):
            returns[:] = np.where(valid[t] > 0, returns * self.gamma + rewards[t], returns)
            seen.append(returns[valid[t] > 0].copy())
            returns[done[t] > 0] = 0.0
        with self._stats_lock:
            self.normalization.update_returns(torch.from_numpy(np.concatenate(seen)))
        scaled = self.normalization.scale_rewards(torch.from_numpy(rewards))
        rewards[:] = scaled.cpu().numpy()

    def _final_values(self, t: int, info: dict, truncated: np.ndarray) -> None:
        """Critic values of the final observations of truncated episodes (SAME_STEP mode)."""
        envs = np.flatnonzero(truncated)
        if len(envs) == 0:  # every truncated env also terminated: nothing to bootstrap
            return
        final = np.empty((len(envs), self.policy.obs_dim), dtype=self._layout.dtype)
        for row, i in zip(final, envs, strict=True):
            self._store(info["final_obs"][i], row[None], 'info["final_obs"]')
        if not np.isfinite(self._layout.floats_of(final)).all():
            i = envs[np.argwhere(~np.isfinite(self._layout.floats_of(final)))[0][0]]
            raise NonFiniteError(
                f"{self.env_name} returned a non-finite final observation at step {t} of a "
                f"rollout in env {i}: the environment's fault, not the learner's"
            )
        if self._torch is not None:  # the state the final observation was seen with
            state = self._state[torch.from_numpy(envs).to(self._state.device)]
            self._flags[5, t, envs] = self._torch.value(final, state)
        else:
            self._flags[5, t, envs] = self.backend.value(final)
        self._flags[4, t, envs] = 1.0
