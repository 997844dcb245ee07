"""acrl: advantage actor-critic (A2C, A3C) on PyTorch and Gymnasium."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.4.0.dev0"

# Public names and the module of each. They load on first use, so that `acrl --help` and a
# mistyped command line answer without importing torch.
_EXPORTS = {
    "A2C": "acrl.algorithms.a2c",
    "A3C": "acrl.algorithms.a3c",
    "BaseCallback": "acrl.run.callbacks",
    "CallbackList": "acrl.run.callbacks",
    "EvalCallback": "acrl.run.eval_callback",
    "RecordVideoEvery": "acrl.run.callbacks",
    "StopOnReturn": "acrl.run.callbacks",
    "make_vec_env": "acrl.envs",
    "atari_kwargs": "acrl.envs.atari",
    "evaluate_policy": "acrl.run.evaluation",
    "ActorCritic": "acrl.model.policy",
}

if TYPE_CHECKING:
    from acrl.algorithms.a2c import A2C
    from acrl.algorithms.a3c import A3C
    from acrl.envs import make_vec_env
    from acrl.envs.atari import atari_kwargs
    from acrl.model.policy import ActorCritic
    from acrl.run.callbacks import BaseCallback, CallbackList, RecordVideoEvery, StopOnReturn
    from acrl.run.eval_callback import EvalCallback
    from acrl.run.evaluation import evaluate_policy

__all__ = [
    "A2C",
    "A3C",
    "BaseCallback",
    "CallbackList",
    "EvalCallback",
    "RecordVideoEvery",
    "StopOnReturn",
    "ActorCritic",
    "atari_kwargs",
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
