"""acrl: advantage actor-critic (A2C, A3C) on PyTorch and Gymnasium."""

__version__ = "0.2.0"

from acrl.a2c import A2C  # noqa: E402
from acrl.a3c import A3C  # noqa: E402
from acrl.callbacks import StopOnReturn  # noqa: E402
from acrl.envs import make_vec_env  # noqa: E402
from acrl.evaluation import evaluate_policy  # noqa: E402
from acrl.policy import ActorCritic  # noqa: E402

__all__ = [
    "A2C",
    "A3C",
    "StopOnReturn",
    "ActorCritic",
    "evaluate_policy",
    "make_vec_env",
    "__version__",
]
