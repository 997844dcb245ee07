"""acrl: advantage actor-critic (A2C, A3C) on PyTorch and Gymnasium."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# Public names and the module of each. They load on first use, so that `acrl --help` and a
# mistyped command line answer without importing torch.
_EXPORTS = {
    "A2C": "acrl.a2c",
    "A3C": "acrl.a3c",
    "StopOnReturn": "acrl.callbacks",
    "make_vec_env": "acrl.envs",
    "evaluate_policy": "acrl.evaluation",
    "ActorCritic": "acrl.policy",
}

if TYPE_CHECKING:
    from acrl.a2c import A2C
    from acrl.a3c import A3C
    from acrl.callbacks import StopOnReturn
    from acrl.envs import make_vec_env
    from acrl.evaluation import evaluate_policy
    from acrl.policy import ActorCritic

__all__ = [
    "A2C",
    "A3C",
    "StopOnReturn",
    "ActorCritic",
    "evaluate_policy",
    "make_vec_env",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'acrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
