"""Load a saved model of any algorithm, dispatching on the algorithm its file records."""

from __future__ import annotations

import os
from typing import Any

from acrl.a2c import A2C
from acrl.agent import Agent
from acrl.errors import UserError
from acrl.persistence import read_model

ALGORITHMS: dict[str, type[Agent]] = {"a2c": A2C}


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> Agent:
    """The model saved at ``path`` (a .acrl file or a run directory)."""
    _, meta = read_model(path)
    algo = meta.get("algo")
    if algo not in ALGORITHMS:
        raise UserError(f"{path} holds a model of unknown algorithm {algo!r}")
    return ALGORITHMS[algo].load(path, **kwargs)
