"""Env wrappers as acrl applies and records them: the stack a config names, applied to each
env; the stack a wrapped Python env carries (``spec.additional_wrappers``), recorded.

Who may import a wrapper's module follows acrl.envs.ids: the user's own settings import it;
a stack read from a file (a model file, a run's config) is rebuilt only from Gymnasium's or
acrl's own modules, or from a module already imported (by ``--env-module`` or the user's
code). A wrapper that writes files or opens a window is never rebuilt from a file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv, VectorEnv

from acrl.config.wrappers import EnvWrapper, is_entry_point, plain_kwargs
from acrl.envs.ids import import_env_module
from acrl.errors import UserError, first_line

TRUSTED_PACKAGES = ("gymnasium", "acrl")
# Gymnasium wrappers with effects outside the env: not rebuilt because a file names them
NOT_FROM_FILES = {
    "RecordVideo": "writes video files",
    "HumanRendering": "opens a window",
}
# Gymnasium wrappers that change nothing the policy sees (what they record or show aside):
# left out when the wrappers of a Python env are recorded
NEUTRAL = ("RecordVideo", "HumanRendering", "RecordEpisodeStatistics", "RenderCollection")


def is_trusted(module: str) -> bool:
    """Whether ``module`` is Gymnasium's or acrl's own (importing it runs no user code), and
    not a package's ``__main__`` (importing ``acrl.__main__`` runs the command line)."""
    if "__main__" in module.split("."):
        return False
    return any(module == p or module.startswith(p + ".") for p in TRUSTED_PACKAGES)


def wrapper_classes(
    wrappers: Sequence[EnvWrapper], named_by: str | None = None
) -> list[type[gym.Wrapper]]:
    """The class of each wrapper; a one-line UserError for one that cannot be rebuilt.

    ``named_by`` None: the wrappers are the user's own (their config or code), whose modules
    are imported. Else they were read from ``named_by`` (a file), and a module of the user's
    must have been imported already (``--env-module``, or an import in their code).
    """
    return [_wrapper_class(w, named_by) for w in wrappers]


def _wrapper_class(wrapper: EnvWrapper, named_by: str | None) -> type[gym.Wrapper]:
    entry, module = wrapper.entry_point, wrapper.module
    source = "env_wrapper" if named_by is None else f"{named_by}: env wrapper"
    if wrapper.problem is not None or wrapper.kwargs is None:
        raise UserError(
            f"{source} {entry} cannot be rebuilt from its spec: {wrapper.problem}; in "
            "Python, pass the env to load(path, env=...); for the command line, make the "
            "wrapper record plain arguments (gymnasium.utils.RecordConstructorArgs) in a "
            "module of yours, train again and pass --env-module MODULE"
        )
    if named_by is None or is_trusted(module):
        import_env_module(module, f"{source} {entry}: module")
    elif module not in sys.modules:
        raise UserError(
            f"{named_by} names env wrapper {entry}, whose module {module!r} acrl never imports "
            f"because a file names it: pass --env-module {module} (or import it yourself "
            "before load)"
        )
    cls = getattr(sys.modules[module], wrapper.name, None)
    if not (isinstance(cls, type) and issubclass(cls, gym.Wrapper)):
        where = " (a script's: define it in a module)" if module == "__main__" else ""
        raise UserError(
            f"{source} {entry}: module {module}{where} has no gymnasium.Wrapper "
            f"named {wrapper.name}"
        )
    if named_by is not None and is_trusted(cls.__module__) and cls.__name__ in NOT_FROM_FILES:
        raise UserError(
            f"{named_by} names env wrapper {entry}, which {NOT_FROM_FILES[cls.__name__]}: "
            "acrl does not rebuild it from a file"
        )
    return cls


class WrapperStack:
    """A callable that applies resolved wrappers to one env, innermost first (what
    ``gymnasium.make_vec(wrappers=...)`` takes; picklable for async envs)."""

    def __init__(self, wrappers: Sequence[EnvWrapper], classes: Sequence[type[gym.Wrapper]]):
        self.layers = [
            (w.entry_point, c, w.arguments()) for w, c in zip(wrappers, classes, strict=True)
        ]

    def __call__(self, env: gym.Env) -> gym.Env:
        for entry, cls, kwargs in self.layers:
            try:
                env = cls(env, **kwargs)
            except Exception as exc:
                env.close()
                raise UserError(
                    f"env wrapper {entry} failed to wrap the env: {type(exc).__name__}: "
                    f"{first_line(exc)}"
                ) from None
        return env


def wrappers_of(env: gym.Env | VectorEnv) -> tuple[EnvWrapper, ...]:
    """The wrappers around a Python env, from what Gymnasium records of them
    (``spec.additional_wrappers``; for a vector env, those of its first env), less those
    its registration applies. A wrapper that cannot be rebuilt is kept with its reason."""
    spec = _single_spec(env)
    applied = () if spec is None else tuple(spec.additional_wrappers)
    try:
        registered = () if spec is None else tuple(gym.spec(spec.id).additional_wrappers)
    except gym.error.Error:
        registered = ()
    if applied[: len(registered)] == registered:
        applied = applied[len(registered) :]
    recorded = [_from_spec(w) for w in applied]
    kept = [w for w in recorded if not (is_trusted(w.module) and w.name in NEUTRAL)]
    if isinstance(env, VectorEnv) and isinstance(env, gym.vector.VectorWrapper):
        # vector wrappers are not in the env specs; one that the policy sees through cannot
        # be rebuilt: recorded as such, so that eval and video say so instead of differing
        outer: VectorEnv = env
        while isinstance(outer, gym.vector.VectorWrapper):
            cls = type(outer)
            if not (is_trusted(cls.__module__) and cls.__name__ in NEUTRAL):
                problem = "a vector wrapper, which acrl does not record or rebuild"
                kept.append(EnvWrapper(f"{cls.__module__}:{cls.__name__}", None, problem))
            outer = outer.env
    return tuple(kept)


def _single_spec(env: gym.Env | VectorEnv) -> Any:
    """The EnvSpec of one env inside ``env`` (a vector env's own spec when it has no
    separate envs: a native vector env)."""
    if not isinstance(env, VectorEnv):
        return env.spec
    base = env.unwrapped
    try:
        if isinstance(base, SyncVectorEnv):
            return base.envs[0].spec
        if isinstance(base, AsyncVectorEnv):
            return base.get_attr("spec")[0]
    except Exception:  # an env whose spec cannot be read or sent: record what the vector has
        pass
    return env.spec


def _from_spec(spec: Any) -> EnvWrapper:
    """An EnvWrapper from a Gymnasium WrapperSpec."""
    entry = spec.entry_point if isinstance(spec.entry_point, str) else None
    if entry is None or not is_entry_point(entry):
        name = re.sub(r"\W", "_", str(spec.name))
        name = name if re.match(r"[A-Za-z_]", name) else f"Wrapper_{name}"
        return EnvWrapper(f"unknown:{name}", None, f"its entry point {entry!r} is not module:Class")
    if spec.kwargs is None:
        return EnvWrapper(
            entry,
            None,
            "it does not record its arguments (it is no gymnasium.utils.RecordConstructorArgs)",
        )
    kwargs = plain_kwargs(spec.kwargs)
    if kwargs is None:
        return EnvWrapper(entry, None, "its arguments are not plain data (a function, an array)")
    return EnvWrapper(entry, kwargs)
