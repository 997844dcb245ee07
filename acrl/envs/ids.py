"""Env ids and who may import what they name: the user's own ids import their module, as in
``gym.make("pkg:Env-v0")``; an id read from a file (a model file, a run's config) never does.

Importing a module runs its code, so a model file that named ``pkg:Env-v0`` would run a
``pkg.py`` lying in the working directory. Importing the user's env module is the user's act:
a flag (``--env-module``), their own command line or config, or an import in their code.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from acrl.envs.families import ensure_registered
from acrl.errors import UserError, first_line
from acrl.user_modules import import_user_module

# gymnasium.make_vec's own arguments: not the env's, and never taken from a file
MAKE_VEC_ARGUMENTS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """(module, registered id) of "module:EnvId", or (None, env_id) without a module."""
    if not isinstance(env_id, str) or not env_id:
        raise UserError(f"an env id must be a non-empty string, got {env_id!r}")
    if env_id.count(":") > 1:
        raise UserError(f"env id {env_id!r} has more than one ':' (write module:EnvId)")
    module, _, name = env_id.rpartition(":")
    return module or None, name


_USER_MODULES: dict[str, None] = {}  # imported at the user's word, in order


def import_env_module(module: str, flag: str = "--env-module") -> None:
    """Import the user's env module (which registers their envs); one line if it fails."""
    try:
        import_user_module(module)
    except ImportError as exc:
        raise UserError(f"{flag} {module}: cannot import it: {exc}") from None
    except Exception as exc:  # the module's own code failed: still one line
        raise UserError(
            f"{flag} {module}: importing it raised {type(exc).__name__}: {first_line(exc)}"
        ) from None
    _USER_MODULES[module] = None


def user_env_modules() -> tuple[str, ...]:
    """The env modules this process imported at the user's word (``--env-module``, a
    "module:EnvId" id, env_packages): A3C's worker processes import them too."""
    return tuple(_USER_MODULES)


def check_env_id(env_id: str) -> None:
    """Raise a one-line UserError if ``env_id``, the user's own (their command line, their
    config, their code), is not a registered Gymnasium id. As in ``gym.make``,
    "module:EnvId" imports the module (which registers the env) first."""
    module, name = split_env_id(env_id)
    if module is not None:
        import_env_module(module, f"environment {env_id!r}:")
    ensure_registered(name)  # ALE/ and MinAtar/ ids: their package registers them
    try:
        gym.spec(name)
    except gym.error.Error as exc:
        raise UserError(f"unknown environment id {env_id!r}: {exc}") from None


def check_named_env(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    named_by: str = "the model file",
    env_packages: Sequence[str] = (),
) -> None:
    """Raise a one-line UserError unless ``env_id`` and ``env_kwargs``, read from a file
    (``named_by``), can make an env without importing anything the file names.

    The id's module part must be imported already and the id registered; the kwargs (plain
    data: the file is JSON or YAML) must be the env's own, none of ``gymnasium.make_vec``'s
    arguments (which take callables). ``env_packages``: the modules that the run imported to
    register its env, named (never imported) in the message for an unregistered id.
    """
    module, name = split_env_id(env_id)
    if module is not None and module not in sys.modules:
        raise UserError(
            f"{named_by} names env {env_id!r}, which needs module {module!r} imported; acrl "
            f"never imports a module a model file names: pass --env-module {module} (or "
            "import it yourself before A2C.load)"
        )
    ensure_registered(name)  # a dependency of acrl's atari extra, not the user's code
    try:
        gym.spec(name)
    except gym.error.Error:
        missing = [m for m in env_packages if m not in sys.modules]
        if missing:
            flags = " ".join(f"--env-module {m}" for m in missing)
            raise UserError(
                f"{named_by} names env {env_id!r}, which is not registered here; its run "
                f"registered it with env_packages {', '.join(missing)}, which acrl never "
                f"imports because a file names them: pass {flags}"
            ) from None
        raise UserError(
            f"{named_by} names env {env_id!r}, which is not registered here: install the "
            "package that provides it (and pass --env-module MODULE if a module of yours "
            "registers it)"
        ) from None
    for key in env_kwargs or {}:
        if key in MAKE_VEC_ARGUMENTS:
            raise UserError(
                f"{named_by} sets env_kwargs.{key}, an argument of gymnasium.make_vec, not of "
                "the env: acrl takes no such argument from a file"
            )
