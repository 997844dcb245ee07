"""Hyperparameters of A2C (shared by A3C), validated once when a model is built."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acrl.policy import PolicyConfig
from acrl.schedules import Schedule, ScheduleSpec, parse_schedule

ADAM_BETAS = (0.9, 0.999)  # torch's and SB3's default


@dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters, named as in Stable-Baselines3."""

    learning_rate: ScheduleSpec = 7e-4
    n_steps: int = 5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    rms_prop_eps: float = 1e-5
    use_rms_prop: bool = True
    adam_betas: tuple[float, float] = ADAM_BETAS
    normalize_advantage: bool = False
    policy_kwargs: Mapping[str, Any] = field(default_factory=dict)
    normalize_obs: bool = False
    normalize_reward: bool = False
    use_sde: bool = False
    sde_sample_freq: int = -1

    def __post_init__(self) -> None:
        parse_schedule(self.learning_rate)
        _check_int("n_steps", self.n_steps, low=1)
        _check_range("gamma", self.gamma, 0.0, 1.0, low_open=True)
        _check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        _check_range("ent_coef", self.ent_coef, 0.0, math.inf)
        _check_range("vf_coef", self.vf_coef, 0.0, math.inf)
        _check_range("max_grad_norm", self.max_grad_norm, 0.0, math.inf, low_open=True)
        _check_range("rms_prop_eps", self.rms_prop_eps, 0.0, math.inf, low_open=True)
        _check_bool("use_rms_prop", self.use_rms_prop)
        object.__setattr__(self, "adam_betas", _as_betas(self.adam_betas))
        if self.use_rms_prop and self.adam_betas != ADAM_BETAS:
            raise ValueError("adam_betas applies to Adam: set use_rms_prop to false")
        _check_bool("normalize_advantage", self.normalize_advantage)
        _check_bool("normalize_obs", self.normalize_obs)
        _check_bool("normalize_reward", self.normalize_reward)
        _check_bool("use_sde", self.use_sde)
        sde_freq = self.sde_sample_freq
        if (
            isinstance(sde_freq, bool)
            or not isinstance(sde_freq, int)
            or sde_freq == 0
            or sde_freq < -1
        ):
            raise ValueError(
                f"sde_sample_freq must be -1 (new noise each rollout) or an integer >= 1, "
                f"got {sde_freq!r}"
            )
        PolicyConfig.from_kwargs(self.policy_kwargs)

    @property
    def lr_schedule(self) -> Schedule:
        return parse_schedule(self.learning_rate)

    @property
    def policy_config(self) -> PolicyConfig:
        config = PolicyConfig.from_kwargs(self.policy_kwargs)
        return dataclasses.replace(config, use_sde=self.use_sde)

    def as_kwargs(self) -> dict[str, Any]:
        """The hyperparameters as keyword arguments of an engine's constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready hyperparameters (a callable learning rate cannot be)."""
        out = self.as_kwargs()
        out["policy_kwargs"] = self.policy_config.to_kwargs()
        out["adam_betas"] = list(self.adam_betas)
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _as_betas(value: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2), each in [0, 1), from a pair of numbers."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else ()
    ok = len(pair) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in pair
    )
    if not ok:
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {value!r}")
    return float(pair[0]), float(pair[1])


def _check_range(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = is_number and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high == math.inf else "]"
        bound = "inf" if high == math.inf else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{low:g}, {bound}{right}, got {value!r}")
