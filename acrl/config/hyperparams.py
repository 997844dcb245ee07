"""Hyperparameters of A2C (shared by A3C), validated once when a model is built."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acrl.config.checks import check_bool, check_choice, check_int, check_range
from acrl.config.policy import PolicyConfig
from acrl.config.schedules import Schedule, ScheduleSpec, parse_schedule

ADAM_BETAS = (0.9, 0.999)  # torch's and SB3's default
BACKENDS = ("auto", "torch", "numpy")
"""How updates are computed: "torch" (the policy module and autograd), "numpy" (the same
maths in NumPy for small CPU networks) or "auto" (acrl.learner.backends.choose_compute)."""


@dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters, named as in Stable-Baselines3, and the compute backend."""

    learning_rate: ScheduleSpec = 7e-4
    n_steps: int = 5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    rms_prop_eps: float = 1e-5
    use_rms_prop: bool = True
    rms_prop_tf_like: bool = False  # TensorFlow's RMSprop (the zoo's RMSpropTFLike, Atari)
    adam_betas: tuple[float, float] = ADAM_BETAS
    critic_lr_scale: float = 1.0  # the critic's own numbers step at this times the rate
    normalize_advantage: bool = False
    policy_kwargs: Mapping[str, Any] = field(default_factory=dict)
    normalize_obs: bool = False
    normalize_reward: bool = False
    normalize_value_targets: bool = False  # the critic learns returns / their running std
    use_sde: bool = False
    sde_sample_freq: int = -1
    clip_reward: bool = False  # the learner sees sign(reward); episodes keep the game's score
    terminal_on_life_loss: bool = False  # a lost life ends the learner's episode, not the game
    backend: str = "auto"

    def __post_init__(self) -> None:
        parse_schedule(self.learning_rate)
        check_int("n_steps", self.n_steps, low=1)
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("ent_coef", self.ent_coef, 0.0, math.inf)
        check_range("vf_coef", self.vf_coef, 0.0, math.inf)
        check_range("max_grad_norm", self.max_grad_norm, 0.0, math.inf, low_open=True)
        check_range("rms_prop_eps", self.rms_prop_eps, 0.0, math.inf, low_open=True)
        check_bool("use_rms_prop", self.use_rms_prop)
        check_bool("rms_prop_tf_like", self.rms_prop_tf_like)
        if self.rms_prop_tf_like and not self.use_rms_prop:
            raise ValueError("rms_prop_tf_like is a kind of RMSprop: set use_rms_prop to true")
        object.__setattr__(self, "adam_betas", _as_betas(self.adam_betas))
        if self.use_rms_prop and self.adam_betas != ADAM_BETAS:
            raise ValueError("adam_betas applies to Adam: set use_rms_prop to false")
        check_range("critic_lr_scale", self.critic_lr_scale, 0.0, math.inf, low_open=True)
        check_bool("normalize_advantage", self.normalize_advantage)
        check_bool("normalize_obs", self.normalize_obs)
        check_bool("normalize_reward", self.normalize_reward)
        check_bool("normalize_value_targets", self.normalize_value_targets)
        check_bool("use_sde", self.use_sde)
        check_bool("clip_reward", self.clip_reward)
        check_bool("terminal_on_life_loss", self.terminal_on_life_loss)
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
        check_choice("backend", self.backend, BACKENDS)
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


def _as_betas(value: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2), each in [0, 1), from a pair of numbers."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else ()
    ok = len(pair) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in pair
    )
    if not ok:
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {value!r}")
    return float(pair[0]), float(pair[1])
