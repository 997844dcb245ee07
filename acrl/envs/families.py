"""Env families that an optional package registers: Atari (``ALE/...``, ``...NoFrameskip-v4``,
by ale-py) and MinAtar (``MinAtar/...``, by minatar). Their ids work without the user importing
anything: acrl imports the package (a dependency of the ``atari`` extra, not user code, so a
model file's id may trigger it too) and registers its envs, or says in one line which extra
to install. acrl's partially observed classic-control tasks (``CartPoleNoVel-v1``...,
acrl.envs.partial) are registered the same way, on demand.
"""

from __future__ import annotations

import importlib

import gymnasium as gym

from acrl.envs.partial import NO_VELOCITY, register_no_velocity
from acrl.errors import UserError

EXTRA = "atari"


def family_of(env_id: str) -> str | None:
    """ "ale", "minatar", "no-velocity" or None for an env id (without a "module:" prefix)."""
    if env_id in NO_VELOCITY:
        return "no-velocity"
    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        return "ale"
    if env_id.startswith("MinAtar/"):
        return "minatar"
    return None


def ensure_registered(env_id: str) -> None:
    """Register the envs of ``env_id``'s family if it has one and they are not yet."""
    family = family_of(env_id)
    if family is None or env_id in gym.registry:
        return
    if family == "no-velocity":
        register_no_velocity(env_id)
        return
    package = "ale_py" if family == "ale" else "minatar.gym"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise UserError(
            f"environment {env_id!r} needs the {package.split('.')[0]} package: "
            f"pip install 'acrl[{EXTRA}]'"
        ) from None
    if family == "ale":
        gym.register_envs(module)
        module.ALEInterface.setLoggerMode(module.LoggerMode.Error)  # no banner per env
    else:
        module.register_envs()
