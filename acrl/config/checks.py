"""Validation of single settings: one ValueError naming the setting and what it accepts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def check_range(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = is_number and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high == math.inf else "]"
        bound = "inf" if high == math.inf else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{low:g}, {bound}{right}, got {value!r}")


MAX_SEED = 2**32 - 1  # NumPy's seed range; every stream acrl derives from a seed fits


def check_seed(name: str, value: Any, optional: bool = False) -> None:
    """A seed: an integer in [0, MAX_SEED] (or None when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        none = " or None" if optional else ""
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}]{none}, got {value!r}")
