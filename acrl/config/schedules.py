"""Learning-rate schedules: constants, callables of remaining progress, and the zoo's "lin_X"."""

from __future__ import annotations

from collections.abc import Callable

Schedule = Callable[[float], float]
ScheduleSpec = float | str | Schedule


def constant(value: float) -> Schedule:
    return lambda _progress_remaining: value


def linear(initial: float) -> Schedule:
    """Linear decay from ``initial`` (progress_remaining = 1) to 0 (progress_remaining = 0)."""
    return lambda progress_remaining: progress_remaining * initial


def parse_schedule(spec: ScheduleSpec, name: str = "learning_rate") -> Schedule:
    """A float, a callable of remaining progress (1 -> 0), or "lin_X" / "const_X"."""
    if callable(spec):
        return spec
    if isinstance(spec, str):
        kind, _, number = spec.partition("_")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{name} {spec!r}: expected a number, 'lin_X' or 'const_X'") from None
        if kind not in ("lin", "const"):
            raise ValueError(f"{name} {spec!r}: expected a number, 'lin_X' or 'const_X'")
        _check_positive(value, name)
        return linear(value) if kind == "lin" else constant(value)
    if isinstance(spec, bool) or not isinstance(spec, (int, float)):
        raise ValueError(f"{name} must be a number, 'lin_X' or a callable, got {spec!r}")
    _check_positive(float(spec), name)
    return constant(float(spec))


MAX_LEARNING_RATE = 1.0
"""RMSprop and Adam move every weight by about the learning rate per update: above 1, the
first updates throw an initialized network (weights below 1) far out, then overflow it."""


def _check_positive(value: float, name: str) -> None:
    if not 0.0 < value <= MAX_LEARNING_RATE:
        raise ValueError(f"{name} must be a number in (0, {MAX_LEARNING_RATE:g}], got {value}")
