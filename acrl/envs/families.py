"""Env families that an optional package registers: Atari (``ALE/...``, ``...NoFrameskip-v4``,
by ale-py) and MinAtar (``MinAtar/...``, by minatar). Their ids work without the user
importing anything: acrl imports the package (a dependency of the ``atari`` extra, not user
code, so a model file's id may trigger it too) and registers its envs, or says in one line
which extra to install. acrl's partially observed classic-control tasks
(``CartPoleNoVel-v1``..., acrl.envs.partial) are registered the same way, on demand.
Gymnasium registers its MuJoCo envs itself; they need the mujoco package (the ``mujoco``
extra), named in one line where it is missing.
"""

from __future__ import annotations

import importlib
import warnings

import gymnasium as gym

from acrl.config.presets import is_mujoco_id
from acrl.envs.partial import NO_VELOCITY, register_no_velocity
from acrl.errors import UserError

EXTRA = "atari"
# MuJoCo 4 deprecates a compiler attribute that Gymnasium's own model files use: a warning
# for every env made (and a MUJOCO_LOG.TXT in the working directory) about files that are
# neither acrl's nor the user's.
_GYMNASIUM_ASSET_WARNINGS = ("'settotalmass' is deprecated",)


def family_of(env_id: str) -> str | None:
    """ "ale", "minatar", "no-velocity", "mujoco" or None for an env id (without a
    "module:" prefix)."""
    if env_id in NO_VELOCITY:
        return "no-velocity"
    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        return "ale"
    if env_id.startswith("MinAtar/"):
        return "minatar"
    return "mujoco" if is_mujoco_id(env_id) else None


def ensure_registered(env_id: str) -> None:
    """Register the envs of ``env_id``'s family if it has one and they are not yet; for a
    MuJoCo env, check that mujoco is installed and route its warnings (once per process)."""
    family = family_of(env_id)
    if family == "mujoco":
        _use_mujoco(env_id)
        return
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


def _use_mujoco(env_id: str) -> None:
    try:
        mujoco = importlib.import_module("mujoco")
    except ImportError:
        raise UserError(
            f"environment {env_id!r} needs the mujoco package: pip install 'acrl[mujoco]'"
        ) from None
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(mujoco_warning)


def mujoco_warning(text: str) -> None:
    """MuJoCo's warnings as Python warnings (which users filter as any other), except those
    about Gymnasium's own model files."""
    if not any(known in text for known in _GYMNASIUM_ASSET_WARNINGS):
        warnings.warn(f"MuJoCo: {text}", RuntimeWarning, stacklevel=2)
