"""The search space of ``acrl tune``: what each trial samples, written as preset keys.

Every trial draws the settings below (Optuna's names in brackets) over the env's preset (or
A2C's defaults); what the space does not name (env kwargs, wrappers, the policy's kind, A3C's
workers) stays the preset's.

- learning rate: log-uniform in [1e-4, 1e-2] (``learning_rate``); constant or decaying
  linearly to 0 (``lr_schedule``: the preset form ``lin_X``)
- envs: 4, 8, 16, 32 for A2C; 1, 2, 4, 8, 16 per worker for A3C (``n_envs``)
- steps per env and update: 5, 8, 16, 32, 64, 128 (``n_steps``)
- discount: 0.9, 0.95, 0.98, 0.99, 0.995, 0.999 (``gamma``); GAE: 0.8, 0.9, 0.95, 0.98, 1
  (``gae_lambda``)
- entropy coefficient: 0, 1e-5, 1e-4, 1e-3, 1e-2, 0.05 (``ent_coef``); value coefficient:
  uniform in [0.1, 1] (``vf_coef``); gradient clip: 0.3, 0.5, 1, 2, 5 (``max_grad_norm``);
  normalized advantages or not (``normalize_advantage``); the critic's own numbers at 0.5, 1,
  2, 4 or 8 times the learning rate (``critic_lr_scale``)
- optimizer: RMSprop with epsilon log-uniform in [1e-6, 1e-3] (``rms_prop_eps``), or Adam
  with beta1 0 or 0.9 and beta2 0.99 or 0.999 (``adam_beta1``, ``adam_beta2``)
- network (vector observations only): trunks of 32x32, 64x64 or 256x256 (``net_arch``),
  tanh or ReLU (``activation``), orthogonal initialization or not (``ortho_init``);
  observations normalized or not (``normalize_obs``)
- rewards normalized or not (``normalize_reward``); value targets normalized or not
  (``normalize_value_targets``)
- continuous actions only: state-dependent exploration (``use_sde``) and the initial log
  standard deviation -2, -1 or 0 (``log_std_init``)

A new study's first trial is the base's own settings (the preset's, with ``--config``'s
over it), each as near as the space can say it (``start_params``): the search starts from
what the preset scores, not from a random draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from acrl.config.hyperparams import ADAM_BETAS
from acrl.config.schedules import parse_schedule

if TYPE_CHECKING:
    from acrl.config.runs import RunConfig

N_ENVS = {"a2c": (4, 8, 16, 32), "a3c": (1, 2, 4, 8, 16)}
N_STEPS = (5, 8, 16, 32, 64, 128)
GAMMAS = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
GAE_LAMBDAS = (0.8, 0.9, 0.95, 0.98, 1.0)
ENT_COEFS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.05)
MAX_GRAD_NORMS = (0.3, 0.5, 1.0, 2.0, 5.0)
NET_ARCHS = {"small": [32, 32], "medium": [64, 64], "large": [256, 256]}
LEARNING_RATES = (1e-4, 1e-2)
RMS_PROP_EPS = (1e-6, 1e-3)
VF_COEFS = (0.1, 1.0)
CRITIC_LR_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
LOG_STD_INITS = (-2.0, -1.0, 0.0)


class Trial(Protocol):
    """The part of ``optuna.Trial`` the space uses."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


@dataclass(frozen=True)
class SpaceShape:
    """Which parts of the space apply to an env and algorithm."""

    algo: str = "a2c"
    vector_obs: bool = True  # a flat observation: an MLP's trunks and obs normalization
    continuous_actions: bool = False  # gSDE and the initial log std


def sample_settings(trial: Trial, shape: SpaceShape) -> dict[str, Any]:
    """One trial's settings, as the keys of a preset entry (``acrl train --config`` reads
    them)."""
    lr = _round(trial.suggest_float("learning_rate", *LEARNING_RATES, log=True))
    schedule = trial.suggest_categorical("lr_schedule", ["constant", "linear"])
    settings: dict[str, Any] = {
        "learning_rate": lr if schedule == "constant" else f"lin_{lr}",
        "n_envs": trial.suggest_categorical("n_envs", list(N_ENVS[shape.algo])),
        "n_steps": trial.suggest_categorical("n_steps", list(N_STEPS)),
        "gamma": trial.suggest_categorical("gamma", list(GAMMAS)),
        "gae_lambda": trial.suggest_categorical("gae_lambda", list(GAE_LAMBDAS)),
        "ent_coef": trial.suggest_categorical("ent_coef", list(ENT_COEFS)),
        "vf_coef": _round(trial.suggest_float("vf_coef", *VF_COEFS)),
        "max_grad_norm": trial.suggest_categorical("max_grad_norm", list(MAX_GRAD_NORMS)),
        "normalize_advantage": trial.suggest_categorical("normalize_advantage", [False, True]),
        "critic_lr_scale": trial.suggest_categorical("critic_lr_scale", list(CRITIC_LR_SCALES)),
        "normalize_reward": trial.suggest_categorical("normalize_reward", [False, True]),
        "normalize_value_targets": trial.suggest_categorical(
            "normalize_value_targets", [False, True]
        ),
    }
    optimizer = trial.suggest_categorical("optimizer", ["rmsprop", "adam"])
    settings["use_rms_prop"] = optimizer == "rmsprop"
    if optimizer == "rmsprop":  # the base's Adam settings do not apply
        settings["rms_prop_eps"] = _round(
            trial.suggest_float("rms_prop_eps", *RMS_PROP_EPS, log=True)
        )
        settings["adam_betas"] = list(ADAM_BETAS)
    else:  # nor its kind of RMSprop (Atari's TensorFlow-style one)
        beta1 = trial.suggest_categorical("adam_beta1", [0.0, 0.9])
        settings["adam_betas"] = [beta1, trial.suggest_categorical("adam_beta2", [0.99, 0.999])]
        settings["rms_prop_tf_like"] = False
    policy_kwargs: dict[str, Any] = {}
    if shape.vector_obs:
        settings["normalize_obs"] = trial.suggest_categorical("normalize_obs", [False, True])
        policy_kwargs["net_arch"] = NET_ARCHS[
            trial.suggest_categorical("net_arch", list(NET_ARCHS))
        ]
        policy_kwargs["activation"] = trial.suggest_categorical("activation", ["tanh", "relu"])
        policy_kwargs["ortho_init"] = trial.suggest_categorical("ortho_init", [False, True])
    if shape.continuous_actions:
        settings["use_sde"] = trial.suggest_categorical("use_sde", [False, True])
        policy_kwargs["log_std_init"] = trial.suggest_categorical(
            "log_std_init", list(LOG_STD_INITS)
        )
    if policy_kwargs:
        settings["policy_kwargs"] = policy_kwargs
    return settings


def start_params(config: RunConfig, shape: SpaceShape) -> dict[str, Any]:
    """The space's parameters (Optuna's names) nearest to ``config``'s settings: numbers
    within the ranges, the nearest choice of each list. A schedule other than constant or
    linear counts as constant from its first value."""
    hyper, policy = config.hyperparams, config.hyperparams.policy_config
    spec = hyper.learning_rate
    linear = isinstance(spec, str) and spec.startswith("lin_")
    rate = float(parse_schedule(spec)(1.0))  # the rate at the start of training
    params: dict[str, Any] = {
        "learning_rate": _within(rate, LEARNING_RATES),
        "lr_schedule": "linear" if linear else "constant",
        "n_envs": _nearest(config.n_envs, N_ENVS[shape.algo]),
        "n_steps": _nearest(hyper.n_steps, N_STEPS),
        "gamma": _nearest(hyper.gamma, GAMMAS),
        "gae_lambda": _nearest(hyper.gae_lambda, GAE_LAMBDAS),
        "ent_coef": _nearest(hyper.ent_coef, ENT_COEFS),
        "vf_coef": _within(hyper.vf_coef, VF_COEFS),
        "max_grad_norm": _nearest(hyper.max_grad_norm, MAX_GRAD_NORMS),
        "normalize_advantage": hyper.normalize_advantage,
        "critic_lr_scale": _nearest(hyper.critic_lr_scale, CRITIC_LR_SCALES),
        "normalize_reward": hyper.normalize_reward,
        "normalize_value_targets": hyper.normalize_value_targets,
        "optimizer": "rmsprop" if hyper.use_rms_prop else "adam",
    }
    if hyper.use_rms_prop:
        params["rms_prop_eps"] = _within(hyper.rms_prop_eps, RMS_PROP_EPS)
    else:
        params["adam_beta1"] = _nearest(hyper.adam_betas[0], (0.0, 0.9))
        params["adam_beta2"] = _nearest(hyper.adam_betas[1], (0.99, 0.999))
    if shape.vector_obs:
        arch = policy.net_arch
        widths = list(arch["pi"] if isinstance(arch, Mapping) else arch)
        params["normalize_obs"] = hyper.normalize_obs
        params["net_arch"] = min(NET_ARCHS, key=lambda k: _arch_distance(NET_ARCHS[k], widths))
        params["activation"] = policy.activation if policy.activation == "relu" else "tanh"
        params["ortho_init"] = policy.ortho_init
    if shape.continuous_actions:
        params["use_sde"] = hyper.use_sde
        params["log_std_init"] = _nearest(policy.log_std_init, LOG_STD_INITS)
    return params


def _nearest(value: float, choices: Sequence[Any]) -> Any:
    return min(choices, key=lambda choice: abs(choice - value))


def _within(value: float, bounds: tuple[float, float]) -> float:
    return min(max(float(value), bounds[0]), bounds[1])


def _arch_distance(choice: list[int], widths: list[int]) -> tuple[int, int]:
    """Depth first, then the width of the layers."""
    mean = sum(widths) / len(widths) if widths else 0
    return abs(len(choice) - len(widths)), abs(choice[0] - round(mean))


def _round(value: float) -> float:
    """Four significant digits: the value the trial trains with is the one its YAML shows."""
    return float(f"{value:.4g}")
