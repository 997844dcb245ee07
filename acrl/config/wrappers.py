"""The env settings a run adds around its env id: ``env_packages`` (modules that register the
env) and the wrapper stack (``env_wrapper`` entries, then ``frame_stack``), as plain records.

Parsing here only checks shapes; importing a module and applying a wrapper belong to
acrl.envs.wrappers, which also says who may import what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acrl.errors import UserError

FRAME_STACK = "gymnasium.wrappers:FrameStackObservation"
MAX_FRAME_STACK = 1024
_MODULE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_MODULE_NAME = re.compile(rf"^{_MODULE}$")
_ENTRY_POINT = re.compile(rf"^{_MODULE}:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class EnvWrapper:
    """One wrapper of the stack: ``entry_point`` "module:Class", called as
    ``Class(env, **kwargs)``. ``problem`` says why a wrapper recorded from a Python env
    cannot be rebuilt (its arguments unknown or not plain data); ``kwargs`` is then None."""

    entry_point: str
    kwargs: Mapping[str, Any] | None = None
    problem: str | None = None

    @property
    def module(self) -> str:
        return self.entry_point.rpartition(":")[0]

    @property
    def name(self) -> str:
        return self.entry_point.rpartition(":")[2]

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments to call it with; lists as tuples (YAML and JSON have no
        tuples, and wrappers such as ResizeObservation insist on them)."""
        return {k: _tuples(v) for k, v in (self.kwargs or {}).items()}

    def to_setting(self) -> str | dict[str, Any]:
        """The zoo-style entry of a config: "module:Class" or {"module:Class": {kwargs}}."""
        if self.kwargs == {}:
            return self.entry_point
        return {self.entry_point: None if self.kwargs is None else dict(self.kwargs)}

    def to_json(self) -> dict[str, Any]:
        return {"entry_point": self.entry_point, "kwargs": self.kwargs, "problem": self.problem}


def is_entry_point(text: str) -> bool:
    """Whether ``text`` reads "module:Class" (dotted module, plain class name)."""
    return _ENTRY_POINT.match(text) is not None


def parse_env_packages(value: Any) -> tuple[str, ...]:
    """``env_packages``: a module name or a list of them (None: none)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(
        isinstance(m, str) and _MODULE_NAME.match(m) for m in items
    ):
        raise UserError(f"env_packages must be a list of module names, got {value!r}")
    return tuple(items)


def parse_env_wrapper(value: Any) -> tuple[EnvWrapper, ...]:
    """``env_wrapper``, zoo-style: "module:Class", {"module:Class": {kwargs}}, or a list of
    those (innermost first); a mapping entry's kwargs may be empty (null)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(_parse_entry(item) for item in items)


def _parse_entry(item: Any) -> EnvWrapper:
    if isinstance(item, str):
        entry_point, kwargs = item, None
    elif isinstance(item, Mapping) and len(item) == 1:
        entry_point, kwargs = next(iter(item.items()))
    else:
        raise UserError(
            'env_wrapper entries are "module:Class" or {"module:Class": {kwargs}}, '
            f"got {item!r}"
        )
    if not isinstance(entry_point, str) or not _ENTRY_POINT.match(entry_point):
        raise UserError(f'env_wrapper entry {entry_point!r} is not "module:Class"')
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise UserError(f"env_wrapper {entry_point}: its kwargs must be a mapping, got {kwargs!r}")
    if "env" in kwargs:
        raise UserError(f"env_wrapper {entry_point}: kwargs.env is the env it wraps, not a setting")
    _check_stack_size(entry_point, kwargs, "env_wrapper")
    return EnvWrapper(entry_point, dict(kwargs))


def _check_stack_size(entry_point: str, kwargs: Mapping[str, Any] | None, source: str) -> None:
    """FrameStackObservation's stack_size within frame_stack's bounds, however it is given (a
    config's env_wrapper, a model file's wrappers): a huge one allocates gigabytes."""
    if entry_point == FRAME_STACK and kwargs and "stack_size" in kwargs:
        size = kwargs["stack_size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FRAME_STACK:
            raise UserError(
                f"{source} {FRAME_STACK}: stack_size must be an integer in "
                f"[1, {MAX_FRAME_STACK}], got {size!r}"
            )


def parse_frame_stack(value: Any) -> int | None:
    """``frame_stack``: None, or the K of FrameStackObservation(env, K)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FRAME_STACK:
        raise UserError(f"frame_stack must be an integer in [1, {MAX_FRAME_STACK}], got {value!r}")
    return value


def wrapper_stack(env_wrapper: Any = None, frame_stack: Any = None) -> tuple[EnvWrapper, ...]:
    """The wrappers applied to each env, innermost first: ``env_wrapper``'s in list order,
    then FrameStackObservation when ``frame_stack`` is set (both as a config gives them)."""
    return with_frame_stack(parse_env_wrapper(env_wrapper), parse_frame_stack(frame_stack))


def with_frame_stack(stack: tuple[EnvWrapper, ...], k: int | None) -> tuple[EnvWrapper, ...]:
    """``stack`` and then, with ``k``, FrameStackObservation(env, k)."""
    return stack if k is None else (*stack, EnvWrapper(FRAME_STACK, {"stack_size": k}))


def plain_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """``kwargs`` as JSON carries them (tuples as lists), or None if they are not plain data
    (a function, an array, a space)."""
    try:
        data = json.loads(json.dumps(dict(kwargs), allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def wrappers_from_json(value: Any) -> tuple[EnvWrapper, ...]:
    """A model file's ``env_wrappers`` (a list of EnvWrapper.to_json); UserError if damaged."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UserError("env_wrappers in the metadata is not a list")
    out = []
    for item in value:
        ok = isinstance(item, dict) and isinstance(item.get("entry_point"), str)
        ok = ok and _ENTRY_POINT.match(item["entry_point"]) is not None
        kwargs, problem = (item.get("kwargs"), item.get("problem")) if ok else (None, None)
        ok = ok and (kwargs is None or isinstance(kwargs, dict))
        ok = ok and (problem is None or isinstance(problem, str))
        if not ok or (kwargs is None and problem is None):
            raise UserError(f"bad env_wrappers entry in the metadata: {str(item)[:200]}")
        _check_stack_size(item["entry_point"], kwargs, "env_wrappers in the metadata:")
        out.append(EnvWrapper(item["entry_point"], kwargs, problem))
    return tuple(out)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value
