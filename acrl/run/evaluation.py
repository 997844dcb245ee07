"""Evaluate a policy for an exact number of complete episodes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from acrl.engines.env_watch import CallAbandoned, EnvHung, EnvWatch
from acrl.engines.signals import stop_asked
from acrl.envs import EpisodeStarts, abandon_envs, as_vector_env, env_id_of, make_vec_env
from acrl.learner.rollout import EnvCalls


class Predictor(Protocol):
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


class EvaluationStopped(Exception):
    """A stop signal came while training's callbacks evaluated or filmed: they give up (the
    run stops after the update, as the signal asks)."""


@contextlib.contextmanager
def watched_calls(env: gym.Env | VectorEnv) -> Iterator[EnvCalls]:
    """The count of calls into ``env`` that an evaluation or a video makes, watched as
    training's are (acrl.engines.env_watch): a call hung for ACRL_ENV_TIMEOUT seconds raises
    EnvError, and a stop signal while one hangs gives up (EvaluationStopped); envs in
    subprocesses are killed either way."""
    calls = EnvCalls()
    with EnvWatch(calls, env_id_of(env) or "the environment") as watch:
        try:
            yield calls
        except EnvHung:
            abandon_envs(env)
            raise watch.hung_error() from None
        except CallAbandoned:  # a stop signal while the env hung
            abandon_envs(env)
            raise EvaluationStopped from None


def evaluate_policy(
    model: Predictor,
    env: str | gym.Env | VectorEnv,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    return_episode_rewards: bool = False,
    seed: int | None = None,
) -> tuple[float, float] | tuple[list[float], list[int]]:
    """Mean and std of the return over exactly ``n_eval_episodes`` complete episodes.

    With N vector envs, env i runs (n_eval_episodes + i) // N episodes, so long
    and short episodes are not over- or under-counted. With
    ``return_episode_rewards`` the per-episode returns and lengths come back. An env id
    never imports a module: "pkg:Env-v0" needs ``pkg`` imported first (the id is often a
    model's, which its file named).
    """
    if (
        isinstance(n_eval_episodes, bool)
        or not isinstance(n_eval_episodes, int)
        or n_eval_episodes < 1
    ):
        raise ValueError(f"n_eval_episodes must be an integer >= 1, got {n_eval_episodes!r}")
    owned = isinstance(env, str)
    vec = (
        make_vec_env(env, 1, named_by="the env id passed to evaluate_policy")
        if isinstance(env, str)
        else as_vector_env(env)
    )
    try:
        with watched_calls(vec) as calls:
            returns, lengths = _run_episodes(
                model, vec, n_eval_episodes, deterministic, seed, calls
            )
    finally:
        if owned:
            vec.close()
    if return_episode_rewards:
        return returns, lengths
    return float(np.mean(returns)), float(np.std(returns))


def _run_episodes(
    model: Predictor,
    env: VectorEnv,
    n_episodes: int,
    deterministic: bool,
    seed: int | None,
    calls: EnvCalls,
) -> tuple[list[float], list[int]]:
    n = env.num_envs
    targets = np.array([(n_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    current_return = np.zeros(n)
    current_length = np.zeros(n, dtype=int)
    episodes = EpisodeStarts(env)
    returns: list[float] = []
    lengths: list[int] = []
    obs, info = calls.run("reset()", env.reset, seed=seed)
    # a recurrent policy's state, zeroed where an episode starts (feed-forward: None), and
    # where a life is lost if the policy trained with a lost life as an episode's end
    state: Any = None
    config = getattr(model, "config", None)
    lives = info.get("lives") if getattr(config, "terminal_on_life_loss", False) else None
    while (counts < targets).any():
        if stop_asked():  # a stop signal during training's evaluation: honoured now
            raise EvaluationStopped
        actions, state = model.predict(
            obs, state=state, episode_start=episodes.starts, deterministic=deterministic
        )
        obs, rewards, terminated, truncated, info = calls.run("step()", env.step, actions)
        live = episodes.live
        current_return += np.where(live, rewards, 0.0)
        current_length += live
        done = episodes.step(terminated, truncated)
        for i in np.flatnonzero(done):
            if counts[i] < targets[i]:
                returns.append(float(current_return[i]))
                lengths.append(int(current_length[i]))
                counts[i] += 1
            current_return[i] = 0.0
            current_length[i] = 0
        if lives is not None and "lives" in info:
            lost = np.asarray(info["lives"]) < lives
            episodes.starts |= lost & ~done & live  # the game goes on: no reset step
            lives = np.asarray(info["lives"])
    return returns, lengths
