"""Vectorized Gymnasium environments: creation, autoreset mode, space checks."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from acrl.config.limits import MAX_ENVS
from acrl.config.wrappers import EnvWrapper
from acrl.envs.atari import is_native_atari, make_native_atari, native_atari_kwargs
from acrl.envs.families import family_of
from acrl.envs.ids import check_env_id, check_named_env, split_env_id
from acrl.envs.wrappers import WrapperStack, wrapper_classes
from acrl.errors import UserError, first_line, one_line

VECTORIZATIONS = ("auto", "native", "sync", "async")


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    vectorization: str = "auto",
    named_by: str | None = None,
    wrappers: Sequence[EnvWrapper] = (),
    threads: int = 0,
) -> VectorEnv:
    """A Gymnasium VectorEnv of ``n_envs`` copies of ``env_id``.

    ``vectorization``: "auto" uses the environment's native vector entry point
    where Gymnasium registers one, else a synchronous vector env; "native",
    "sync" and "async" (one subprocess per environment) force a mode. An Atari env's
    native vector env is ale-py's C++ AtariVectorEnv running the wrappers' preprocessing
    (acrl.envs.atari), never its own defaults (which clip rewards).
    ``env_kwargs`` reach the environment's constructor. With ``seed``, the
    environments are reset once with it so that their random streams are fixed.

    ``wrappers`` wrap each env, innermost first (then "auto" vectorizes with "sync": a
    native vector env takes no wrappers).

    ``named_by`` says where ``env_id``, ``env_kwargs`` and ``wrappers`` were read from when
    the user did not give them (a model file): then a module that they name is never
    imported (acrl.envs.ids, acrl.envs.wrappers). An env that raises while it is made is
    reported in one line. ``threads``: the threads of a native env that steps on threads of
    its own (ale-py's; 0: its default, one per env up to the cores).
    """
    if vectorization not in VECTORIZATIONS:
        raise UserError(
            f"vectorization must be one of {', '.join(VECTORIZATIONS)}, got {vectorization!r}"
        )
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or not 1 <= n_envs <= MAX_ENVS:
        raise UserError(f"n_envs must be an integer in [1, {MAX_ENVS:,}], got {n_envs!r}")
    if named_by is None:
        check_env_id(env_id)
    else:
        check_named_env(env_id, env_kwargs, named_by)
    classes = wrapper_classes(wrappers, named_by)
    name = split_env_id(env_id)[1]
    spec = gym.spec(name)
    atari: dict[str, Any] | None = None
    if family_of(name) == "ale" and vectorization in ("auto", "native"):
        atari, why = native_atari_kwargs(name, env_kwargs or {}, wrappers)
        if atari is None and vectorization == "native":
            raise UserError(
                f"{env_id}: ale-py's AtariVectorEnv (vectorization native) cannot run this: {why}"
            )
        mode = "ale" if atari is not None else "sync"
    elif vectorization == "auto":
        native = spec.vector_entry_point is not None and not wrappers
        mode = "vector_entry_point" if native else "sync"
    elif vectorization == "native":
        if spec.vector_entry_point is None:
            raise UserError(f"{env_id} has no native vector implementation; use sync or async")
        if wrappers:
            raise UserError(
                f"a native vector env takes no env wrappers ({wrappers[0].entry_point}): "
                "use vectorization sync or async"
            )
        mode = "vector_entry_point"
    else:
        mode = vectorization
    kwargs = dict(env_kwargs or {})
    if wrappers:
        kwargs["wrappers"] = [WrapperStack(wrappers, classes)]
    try:
        if atari is not None:
            env = make_native_atari(atari, n_envs, threads)
        else:
            env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=mode, **kwargs)
    except UserError:  # a wrapper that failed, in one line already
        raise
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"{env_id} needs a package that is not installed: {exc}") from None
    except TypeError as exc:
        if _is_signature_error(exc):
            raise UserError(f"bad env_kwargs for {env_id}: {first_line(exc)}") from None
        raise env_failed_to_start(env_id, exc) from None
    except Exception as exc:
        raise env_failed_to_start(env_id, exc) from None
    if seed is not None:
        try:
            env.reset(seed=seed)
        except Exception as exc:
            env.close()
            raise env_failed_to_start(env_id, exc, "reset()") from None
        env.action_space.seed(seed)
    return env


def lives_in(info: Mapping[str, Any], n_envs: int, env_name: str) -> np.ndarray:
    """Each env's lives left from a vector env's ``info["lives"]`` (ale-py reports them); a
    one-line UserError for an env without them (``terminal_on_life_loss`` needs them)."""
    lives = info.get("lives")
    if lives is None or np.shape(lives) != (n_envs,):
        raise UserError(
            f"terminal_on_life_loss needs lives in the env's info, and {env_name} reports "
            "none (ale-py's Atari envs do)"
        )
    return np.asarray(lives, dtype=np.int64)


def check_reports_lives(env: VectorEnv, env_name: str) -> None:
    """Reset ``env`` once to see that it reports lives: a run that needs them is refused
    before it starts, not at its first rollout."""
    try:
        _, info = env.reset()
    except Exception as exc:
        raise env_failed_to_start(env_name, exc, "reset()") from None
    lives_in(info, env.num_envs, env_name)


def abandon_envs(env: gym.Env | VectorEnv) -> bool:
    """After a call into ``env`` was given up on (it hung): an AsyncVectorEnv's processes are
    killed, since closing it would wait for the call (True: ``env`` is closed for good);
    envs in this process are left as they are (the next use starts with a reset)."""
    base = env.unwrapped
    if not isinstance(base, gym.vector.AsyncVectorEnv):
        return False
    if not base.closed:
        with warnings.catch_warnings():  # "close while waiting for a pending call": we know
            warnings.simplefilter("ignore")
            base.close(terminate=True)
    return True


def describe_envs(env: VectorEnv) -> str:
    """'16 x AtariVectorEnv (ale-py, C++)' or '8 x SyncVectorEnv': what steps the envs."""
    base = env.unwrapped
    kind = type(base).__name__
    if is_native_atari(base):
        kind = "AtariVectorEnv (ale-py, C++)"
    elif not isinstance(base, (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv)):
        kind += " (native)"
    return f"{env.num_envs} x {kind}"


def env_failed_to_start(env_id: str, exc: BaseException, where: str = "") -> UserError:
    """The one line for an env whose constructor (or first ``reset``) raised."""
    at = f" in {where}" if where else ""
    return UserError(f"env {env_id!r} failed to start{at}: {type(exc).__name__}: {first_line(exc)}")


def _is_signature_error(exc: TypeError) -> bool:
    """A TypeError from calling the env's constructor with arguments it does not take (not
    one raised inside it)."""
    text = str(exc)
    return "keyword argument" in text or "positional argument" in text


def autoreset_mode(env: VectorEnv) -> AutoresetMode:
    """The env's autoreset mode, from its metadata (Gymnasium's default is NEXT_STEP)."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, str):
        mode = AutoresetMode(mode)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise UserError(
            f"vector env autoreset mode {mode.value} is not supported: use NEXT_STEP or SAME_STEP"
        )
    return mode


class EpisodeStarts:
    """Which steps of a vector env count and which observations start an episode, step after
    step, in its autoreset mode: with NEXT_STEP the step after a done only resets that env
    (it does not count) and the observation it returns is the first; with SAME_STEP every
    step counts and the observation returned with a done is the next episode's first. What
    a recurrent policy acting on the env needs (``predict``'s ``episode_start``)."""

    def __init__(self, env: VectorEnv) -> None:
        n = env.num_envs
        self.next_step = autoreset_mode(env) is AutoresetMode.NEXT_STEP
        self.resetting = np.zeros(n, dtype=bool)  # NEXT_STEP: the next step only resets
        self.starts = np.ones(n, dtype=bool)  # the observations after reset() are all first

    @property
    def live(self) -> np.ndarray:
        """The envs whose next step belongs to an episode (not a reset step)."""
        return ~self.resetting if self.next_step else np.ones_like(self.resetting)

    def step(self, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """After a step taken while ``live``: the envs whose episode it ended (their done
        flags); ``starts`` then marks the observations that start an episode."""
        done = np.logical_or(terminated, truncated) & self.live
        self.starts = (self.resetting if self.next_step else done).copy()  # the caller's own
        self.resetting = done
        return done


def as_vector_env(env: gym.Env | VectorEnv) -> VectorEnv:
    """Wrap a single Env as a one-env SyncVectorEnv; return a VectorEnv unchanged."""
    if isinstance(env, VectorEnv):
        return env
    if isinstance(env, gym.Env):
        return gym.vector.SyncVectorEnv([lambda: env])
    raise UserError(f"expected a Gymnasium Env or VectorEnv, got {type(env).__name__}")


def env_id_of(env: gym.Env | VectorEnv) -> str | None:
    """The registered id behind an env, if Gymnasium knows it."""
    spec = getattr(env, "spec", None)
    return None if spec is None else spec.id


def check_spaces(got: gym.Space, expected: gym.Space, what: str) -> None:
    """Raise a one-line UserError if an env's space differs from the model's."""
    if got != expected:
        raise UserError(
            f"env {what} space {one_line(got)} does not match the model's {one_line(expected)}"
        )


def check_env_spaces(
    env: VectorEnv, observation_space: gym.Space, action_space: gym.Space, named_by: str
) -> None:
    """A one-line UserError, ``env`` closed, unless its spaces are the model's."""
    try:
        check_spaces(env.single_observation_space, observation_space, "observation")
        check_spaces(env.single_action_space, action_space, "action")
    except UserError as exc:
        env.close()
        raise UserError(f"{named_by}: {exc}") from None
