"""Atari (ale-py) envs: rl-baselines3-zoo's AtariWrapper preprocessing as a Gymnasium wrapper
stack, and the same stack run by ale-py's C++ AtariVectorEnv where that env implements it.

The stack a run names (``AtariPreprocessing``, ``FireReset``, ``FrameStackObservation``, over
an env made with ``frameskip=1``) is the one description of the preprocessing: it is what a
model file records and what eval and video rebuild; ``native_atari_kwargs`` translates it into
AtariVectorEnv's arguments, or says why it cannot. Reward clipping and life-loss terminals are
not part of it: they are training signals applied by the rollout collector
(acrl.learner.rollout), so that episodes logged, evaluated and filmed are full games scored
as the game scores them.

The two run the same preprocessing, not the same random starts: the C++ env presses FIRE for
one frame among its 0-29 no-op frames, the wrappers take 1-30 no-ops and then FIRE and UP as
two steps. Neither presses FIRE after a lost life (the zoo's EpisodicLifeEnv under its
FireResetEnv does): a policy learns to launch the ball itself, and a deterministic one that
never does plays on until the time limit (108,000 frames).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from acrl.config.wrappers import FRAME_STACK, EnvWrapper
from acrl.envs.families import ensure_registered

ATARI_PREPROCESSING = "gymnasium.wrappers:AtariPreprocessing"
FIRE_RESET = "acrl.envs.atari:FireReset"
ALE_ENTRY_POINT = "ale_py.env:AtariEnv"
# AtariPreprocessing's arguments and defaults (Gymnasium 1.x); the zoo's AtariWrapper agrees
# on noop 30, skip 4, 84x84 grey
PREPROCESSING_DEFAULTS: dict[str, Any] = {
    "noop_max": 30,
    "frame_skip": 4,
    "screen_size": 84,
    "terminal_on_life_loss": False,
    "grayscale_obs": True,
    "grayscale_newaxis": False,
    "scale_obs": False,
}
# the base env's settings AtariVectorEnv takes; any other (mode, difficulty, obs_type) is
# left to the Python envs
NATIVE_ENV_KWARGS = {
    "game",
    "frameskip",
    "repeat_action_probability",
    "full_action_space",
    "max_num_frames_per_episode",
}


class FireReset(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """After each reset, press FIRE (then UP, as the zoo's FireResetEnv) in games whose second
    action is FIRE: Breakout and others do not start until it is pressed. A game that ends
    during those steps is reset again."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        meanings: list[str] = getattr(env.unwrapped, "get_action_meanings", list)()
        self.fires = len(meanings) >= 3 and meanings[1] == "FIRE"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        obs, info = self.env.reset(seed=seed, options=options)
        if not self.fires:
            return obs, info
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info


def atari_wrappers(
    frame_stack: int = 4, fire_reset: bool = True, **preprocessing: Any
) -> tuple[EnvWrapper, ...]:
    """The zoo's Atari preprocessing as acrl's wrapper stack, innermost first; the base env
    must be made with ``env_kwargs={"frameskip": 1}`` (AtariPreprocessing skips frames).
    ``preprocessing`` overrides AtariPreprocessing's arguments (``noop_max``, ...)."""
    unknown = sorted(set(preprocessing) - set(PREPROCESSING_DEFAULTS))
    if unknown:
        raise ValueError(f"AtariPreprocessing has no argument {unknown[0]!r}")
    stack = [EnvWrapper(ATARI_PREPROCESSING, {**PREPROCESSING_DEFAULTS, **preprocessing})]
    if fire_reset:
        stack.append(EnvWrapper(FIRE_RESET, {}))
    if frame_stack > 1:
        stack.append(EnvWrapper(FRAME_STACK, {"stack_size": frame_stack, "padding_type": "zero"}))
    return tuple(stack)


def atari_kwargs(
    frame_stack: int = 4,
    fire_reset: bool = True,
    clip_reward: bool = True,
    terminal_on_life_loss: bool = True,
    **preprocessing: Any,
) -> dict[str, Any]:
    """The Atari presets' env settings and training signals as keyword arguments of
    ``A2C``/``A3C`` over an ALE env id: ``A2C("CnnPolicy", "ALE/Pong-v5", **atari_kwargs())``
    (the counterpart of SB3's ``make_atari_env`` + ``VecFrameStack``, recorded in the model)."""
    wrappers = atari_wrappers(frame_stack, fire_reset, **preprocessing)
    return {
        "env_kwargs": {"frameskip": 1},
        "env_wrapper": [w.to_setting() for w in wrappers],
        "clip_reward": clip_reward,
        "terminal_on_life_loss": terminal_on_life_loss,
    }


def native_atari_kwargs(
    env_id: str, env_kwargs: Mapping[str, Any], wrappers: Sequence[EnvWrapper]
) -> tuple[dict[str, Any] | None, str]:
    """AtariVectorEnv's keyword arguments for ``n`` copies of ``env_id`` with ``env_kwargs``
    inside ``wrappers``, and "" (or None and why the C++ env cannot run them): it runs
    AtariPreprocessing (grey or RGB, no scaling, no life-loss terminal), an optional
    FireReset and FrameStackObservation padded with zeros (as the zoo's VecFrameStack), over
    an env that skips no frames itself."""
    ensure_registered(env_id)
    spec = gym.spec(env_id)
    if spec.entry_point != ALE_ENTRY_POINT:
        return None, f"{env_id} is not an ale-py AtariEnv"
    base = {**spec.kwargs, **env_kwargs}
    other = sorted(set(base) - NATIVE_ENV_KWARGS)
    if other:
        return None, f"it takes no env_kwargs.{other[0]}"
    if base.get("frameskip", 1) != 1:
        return None, "AtariPreprocessing skips frames: the env needs env_kwargs.frameskip 1"
    names = [w.entry_point for w in wrappers]
    fire = FIRE_RESET in names
    expected = [ATARI_PREPROCESSING, *([FIRE_RESET] if fire else []), FRAME_STACK]
    if names != expected:
        return None, (
            "it runs AtariPreprocessing, FireReset (optional) and "
            f"FrameStackObservation, in this order; the wrappers are {names or 'none'}"
        )
    pre = {**PREPROCESSING_DEFAULTS, **wrappers[0].arguments()}
    stack = wrappers[-1].arguments()
    if set(pre) != set(PREPROCESSING_DEFAULTS) or set(stack) - {"stack_size", "padding_type"}:
        return None, "a wrapper argument that it does not take"
    if pre["terminal_on_life_loss"] or pre["scale_obs"] or pre["grayscale_newaxis"]:
        return None, "it has no life-loss terminal, scaled or channel-axis grey frames"
    if stack.get("padding_type") != "zero":
        return None, "it pads a new episode's stack with zeros (padding_type zero)"
    size = pre["screen_size"]
    width, height = (size, size) if isinstance(size, int) else tuple(size)
    return {
        "game": base["game"],
        "repeat_action_probability": float(base.get("repeat_action_probability", 0.0)),
        "full_action_space": bool(base.get("full_action_space", False)),
        "max_num_frames_per_episode": int(base.get("max_num_frames_per_episode", 108_000)),
        "img_height": int(height),
        "img_width": int(width),
        "grayscale": bool(pre["grayscale_obs"]),
        "stack_num": int(stack["stack_size"]),
        "frameskip": int(pre["frame_skip"]),
        "maxpool": True,
        "noop_max": int(pre["noop_max"]),
        "use_fire_reset": fire,
        "episodic_life": False,
        "reward_clipping": False,
    }, ""


MAX_ALE_SEED = 2**31  # the C++ env seeds with an int


def make_native_atari(kwargs: Mapping[str, Any], n_envs: int, threads: int = 0) -> Any:
    """ale-py's C++ AtariVectorEnv of ``n_envs`` games (NEXT_STEP autoreset) on ``threads``
    threads (0: one per env, up to the cores), taking every seed acrl takes."""
    from ale_py.vector_env import AtariVectorEnv

    class SeededAtariVectorEnv(AtariVectorEnv):  # type: ignore[misc]
        """AtariVectorEnv whose integer seed may be any of acrl's (up to 2^32 - 1): env i
        gets (seed + i) mod 2^31, as the C++ env's int takes it (the same seeds below)."""

        def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> Any:
            if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
                mask = (options or {}).get("reset_mask")
                n = self.num_envs if mask is None else int(np.count_nonzero(mask))
                seed = (int(seed) + np.arange(n, dtype=np.int64)) % MAX_ALE_SEED
            return super().reset(seed=seed, options=options)

    return SeededAtariVectorEnv(
        num_envs=n_envs, autoreset_mode="NextStep", num_threads=threads, **kwargs
    )


def is_native_atari(env: Any) -> bool:
    """Whether ``env`` (unwrapped) is ale-py's C++ vector env."""
    return any(c.__module__.startswith("ale_py") for c in type(env).__mro__[:-1])
