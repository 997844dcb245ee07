"""The resolved configuration of a training run: a preset, a config file, flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acrl.config.checks import check_seed
from acrl.config.hyperparams import A2CConfig
from acrl.config.policy import POLICIES
from acrl.config.presets import FAMILY_NAMES, find_preset, load_presets, read_yaml
from acrl.config.wrappers import (
    EnvWrapper,
    parse_env_packages,
    parse_env_wrapper,
    parse_frame_stack,
    with_frame_stack,
)
from acrl.errors import UserError

ALGOS = ("a2c", "a3c")


RUN_KEYS = (
    "env_id",
    "env_kwargs",
    "env_packages",
    "env_wrapper",
    "frame_stack",
    "n_envs",
    "n_timesteps",
    "policy",
    "vectorization",
    "seed",
)
A3C_DEFAULTS = {"n_workers": None, "lock_updates": False, "runtime": "processes"}
A3C_KEYS = tuple(A3C_DEFAULTS)
RUNTIMES = ("processes", "ray")  # where A3C's workers run
DEFAULT_N_ENVS = {"a2c": 8, "a3c": 1}


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs: the env, the budget, the seed and the hyperparameters."""

    env_id: str
    algo: str = "a2c"
    preset: str | None = None
    n_envs: int = 8
    n_timesteps: int = 100_000
    seed: int = 0
    policy: str = "auto"  # picks by the observation space (acrl.model.encoders)
    vectorization: str = "auto"
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    env_packages: tuple[str, ...] = ()  # imported before the env is made (as zoo's)
    env_wrapper: tuple[EnvWrapper, ...] = ()  # around each env, innermost first
    frame_stack: int | None = None  # FrameStackObservation(env, K), after env_wrapper
    hyperparams: A2CConfig = field(default_factory=A2CConfig)
    n_workers: int | None = None  # A3C only: None means one per core
    lock_updates: bool = False  # A3C only
    runtime: str = "processes"  # A3C only: worker processes on this machine, or Ray actors

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["env_kwargs"] = dict(self.env_kwargs)
        out["env_packages"] = list(self.env_packages)
        out["env_wrapper"] = [w.to_setting() for w in self.env_wrapper]
        out["hyperparams"] = self.hyperparams.to_dict()
        return out

    @property
    def wrappers(self) -> tuple[EnvWrapper, ...]:
        """Every wrapper around each env, innermost first: env_wrapper's, then frame_stack's."""
        return with_frame_stack(self.env_wrapper, self.frame_stack)


def resolve_run_config(
    env_or_preset: str,
    algo: str = "a2c",
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    assignments: Sequence[str] = (),
    file_values: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The run's config: the preset (named, or the env's own), then a config file's values
    (``read_config_file``), then overrides, then ``key=value``s.

    ``env_or_preset`` is an env id, or a preset name that carries its env id.
    """
    if algo not in ALGOS:
        raise UserError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    presets = load_presets(algo)
    if preset is not None and preset not in presets:
        raise UserError(f"unknown preset {preset!r}; known: {', '.join(presets)}")
    name = preset if preset is not None else find_preset(env_or_preset, presets)
    if name in FAMILY_NAMES and env_or_preset == name:
        raise UserError(f"preset {name!r} serves every env of {FAMILY_NAMES[name]}: give one")
    values: dict[str, Any] = dict(presets[name]) if name else {}
    values.setdefault("env_id", name)
    if env_or_preset != name:
        values["env_id"] = env_or_preset
    values.update(file_values or {})
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for assignment in assignments:
        key, value = parse_assignment(assignment)
        _assign(values, key, value)
    return build_run_config(values, algo, name)


MAX_CONFIG_BYTES = 1 << 20  # a config is a page of settings
MAX_CONFIG_VALUES = 100_000  # counted with YAML's aliases expanded, as config.yaml would be


def _too_many_values(data: Any) -> bool:
    """Whether ``data`` holds more than MAX_CONFIG_VALUES values, an alias counted each time
    it is used: a few nested aliases (a "billion laughs") expand to millions, which writing
    config.yaml or comparing settings would walk. Stops counting at the bound."""
    pending, count = [data], 0
    while pending:
        value = pending.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            return True
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a YAML file: a preset entry's flat keys, or a run's config.yaml (whose
    ``hyperparams`` mapping is flattened; its ``algo`` and ``preset`` keys are kept for the
    caller). Nothing is executed: tags beyond plain YAML are refused."""
    try:
        with open(path, "rb") as file:  # at most a bound: /dev/zero is a file name too
            raw = file.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UserError(f"cannot read config file {path}: {reason}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"config file {path} is larger than {MAX_CONFIG_BYTES:,} bytes")
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"config file {path}: {problem}{where}") from None
    if _too_many_values(data):
        raise UserError(
            f"config file {path} holds more than {MAX_CONFIG_VALUES:,} values once its "
            "aliases are expanded"
        )
    if not isinstance(data, dict):
        raise UserError(
            f"config file {path} must be a mapping of settings, not {type(data).__name__}"
        )
    values = {str(k): v for k, v in data.items()}
    values.pop("cadence", None)  # a run's checkpoint and log intervals: flags, not settings
    hyper = values.pop("hyperparams", None)
    if hyper is not None:
        if not isinstance(hyper, dict):
            raise UserError(f"config file {path}: hyperparams must be a mapping")
        values.update({str(k): v for k, v in hyper.items()})
    return _renamed_runtime(values)


_MISSING = object()


def without_a3c_defaults(values: Mapping[str, Any], algo: str) -> dict[str, Any]:
    """A config file's values for ``algo``: a run's config.yaml lists the A3C keys at their
    defaults, which an A2C run does not take."""
    if algo == "a3c":
        return dict(values)
    return {k: v for k, v in values.items() if A3C_DEFAULTS.get(k, _MISSING) != v}


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' with the value read as YAML (numbers, booleans, lists, mappings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value, got {text!r}")
    try:
        value = read_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise UserError(f"--set {key}: cannot read value {raw!r}") from None
    return key.strip(), value


def _assign(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` in ``values``; a dotted key (``policy_kwargs.features_extractor_kwargs.
    features_dim``) sets one entry of the mappings under env_kwargs or policy_kwargs."""
    head, _, rest = key.partition(".")
    if not rest:
        values[key] = value
        return
    if head not in ("env_kwargs", "policy_kwargs"):
        raise UserError(
            f"unknown setting {key!r}: only env_kwargs.X and policy_kwargs.X take a dot"
        )
    parts = [head, *rest.split(".")]
    if not all(parts):
        raise UserError(f"--set {key}: an empty name between dots")
    target = values
    for part in parts[:-1]:
        inner = target.get(part)
        if inner is not None and not isinstance(inner, Mapping):
            raise UserError(f"--set {key}: {part} is not a mapping ({inner!r})")
        target[part] = dict(inner or {})
        target = target[part]
    target[parts[-1]] = value


# Settings that are floats: an integer in a file or on --set (2) means the float (2.0).
_FLOAT_SETTINGS = (
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "rms_prop_eps",
    "critic_lr_scale",
)


def build_run_config(
    values: Mapping[str, Any], algo: str = "a2c", preset: str | None = None
) -> RunConfig:
    """Validate a flat mapping of run keys and hyperparameters into a RunConfig."""
    allowed = set(RUN_KEYS) | set(A2CConfig.field_names())
    if algo == "a3c":
        allowed |= set(A3C_KEYS)
        values = _renamed_runtime(values)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    hyper = {k: v for k, v in values.items() if k in A2CConfig.field_names()}
    if (
        "learning_rate" in hyper
        and isinstance(hyper["learning_rate"], int)
        and not isinstance(hyper["learning_rate"], bool)
    ):
        hyper["learning_rate"] = float(hyper["learning_rate"])
    for key in _FLOAT_SETTINGS:
        if isinstance(hyper.get(key), int) and not isinstance(hyper.get(key), bool):
            hyper[key] = float(hyper[key])
    try:
        hyperparams = A2CConfig(**hyper)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    env_kwargs = values.get("env_kwargs") or {}
    if not isinstance(env_kwargs, Mapping):
        raise UserError(f"env_kwargs must be a mapping, got {env_kwargs!r}")
    policy = values.get("policy", "auto")
    if policy not in POLICIES:
        raise UserError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    return RunConfig(
        env_id=str(values["env_id"]),
        algo=algo,
        preset=preset,
        n_envs=_as_int("n_envs", values.get("n_envs", DEFAULT_N_ENVS[algo]), low=1),
        n_timesteps=_as_int("n_timesteps", values.get("n_timesteps", 100_000), low=1),
        seed=_as_seed(values.get("seed", 0)),
        policy=policy,
        vectorization=str(values.get("vectorization", "auto")),
        env_kwargs=dict(env_kwargs),
        env_packages=parse_env_packages(values.get("env_packages")),
        env_wrapper=parse_env_wrapper(values.get("env_wrapper")),
        frame_stack=parse_frame_stack(values.get("frame_stack")),
        hyperparams=hyperparams,
        n_workers=None
        if values.get("n_workers") is None
        else _as_int("n_workers", values["n_workers"], low=1),
        lock_updates=_as_bool("lock_updates", values.get("lock_updates", False)),
        runtime=_as_choice("runtime", values.get("runtime", "processes"), RUNTIMES),
    )


def _renamed_runtime(values: Mapping[str, Any]) -> dict[str, Any]:
    """acrl 0.2 called A3C's runtime ``backend``; a config that still does is read as such
    (the two never share a value: ``backend`` now names the compute backend)."""
    out = dict(values)
    if out.get("backend") in RUNTIMES:
        out.setdefault("runtime", out.pop("backend"))
    return out


def _as_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def _as_seed(value: Any) -> int:
    seed = _as_int("seed", value, low=0)
    try:
        check_seed("seed", seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return seed


def _as_int(name: str, value: Any, low: int) -> int:
    """An integer setting; YAML's 2.0e+5 is accepted when it is a whole number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
