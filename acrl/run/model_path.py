"""Where a model file is, from a path as users give it: with or without ``.acrl``, or a run
directory; and the suffix of each export format. No torch here, so that a wrong path or
format is answered at once."""

from __future__ import annotations

import os
from pathlib import Path

from acrl.errors import UserError

SUFFIX = ".acrl"
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # acrl export's formats, their suffixes


def model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with the .acrl suffix added when it has none (as SB3 adds .zip)."""
    p = Path(path)
    return p if p.suffix else p.with_suffix(SUFFIX)


def find_model_file(path: str | os.PathLike[str]) -> Path:
    """The file ``path`` names: itself, itself with .acrl added, or a run directory's
    model.acrl; a UserError when there is none."""
    p = Path(path)
    if not p.exists() and model_path(p).exists():
        p = model_path(p)
    if p.is_dir() and (p / f"model{SUFFIX}").exists():
        p = p / f"model{SUFFIX}"
    if not p.is_file():
        raise UserError(f"no model file at {path}")
    return p
