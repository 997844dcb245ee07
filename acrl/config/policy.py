"""The shape of a policy network, as validated settings (no torch: the model reads them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acrl.config.checks import check_bool, check_range

ACTIVATIONS = ("tanh", "relu", "silu", "gelu", "elu", "leaky_relu", "sigmoid")
POLICY_KWARGS = (
    "net_arch",
    "activation",
    "shared_trunk",
    "layer_norm",
    "ortho_init",
    "log_std_init",
)
LOG_STD_INIT_RANGE = (-20.0, 20.0)  # a std from 2e-9 to 5e8: every variance fits a float32
POLICIES = ("MlpPolicy", "MultiInputPolicy")
"""Policy names, as Stable-Baselines3's: both build the one policy, whose encoder the
observation space chooses (acrl.model.encoders). "MultiInputPolicy", SB3's name for Dict
observations, is taken for Dict spaces only, as SB3 does; "MlpPolicy" for any space."""


def activation_name(value: Any) -> str:
    """'tanh', 'ReLU', the zoo's 'nn.ReLU' or a torch module class, as a name of ACTIVATIONS."""
    raw = value.__name__ if isinstance(value, type) else value
    key = str(raw).removeprefix("torch.").removeprefix("nn.").lower()
    key = {"leakyrelu": "leaky_relu"}.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, got {value!r}"
        )
    return key


@dataclass(frozen=True)
class PolicyConfig:
    """Network shape. ``net_arch`` is a list of hidden sizes, or {"pi": [...], "vf": [...]}."""

    net_arch: tuple[int, ...] | Mapping[str, tuple[int, ...]] = (64, 64)
    activation: str = "tanh"
    shared_trunk: bool = False
    layer_norm: bool = False
    ortho_init: bool = True
    log_std_init: float = 0.0
    use_sde: bool = False  # set by the algorithm's ``use_sde``, not through policy_kwargs

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None) -> PolicyConfig:
        """Build from SB3-style ``policy_kwargs`` (accepts ``activation_fn`` too)."""
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ValueError(f"policy_kwargs must be a mapping, got {kwargs!r}")
        kwargs = dict(kwargs or {})
        if "activation_fn" in kwargs:
            kwargs["activation"] = kwargs.pop("activation_fn")
        unknown = sorted(set(kwargs) - set(POLICY_KWARGS))
        if unknown:
            raise ValueError(
                f"unknown policy_kwargs {unknown}; allowed: {', '.join(sorted(POLICY_KWARGS))}"
            )
        kwargs["net_arch"] = _normalize_arch(kwargs.get("net_arch", (64, 64)))
        kwargs["activation"] = activation_name(kwargs.get("activation", "tanh"))
        for flag in ("shared_trunk", "layer_norm", "ortho_init"):
            check_bool(f"policy_kwargs.{flag}", kwargs.get(flag, False))
        log_std_init = kwargs.get("log_std_init", 0.0)
        if isinstance(log_std_init, bool) or not isinstance(log_std_init, (int, float)):
            raise ValueError(f"policy_kwargs.log_std_init must be a number, got {log_std_init!r}")
        check_range("policy_kwargs.log_std_init", log_std_init, *LOG_STD_INIT_RANGE)
        kwargs["log_std_init"] = float(log_std_init)
        config = cls(**kwargs)
        if config.shared_trunk and isinstance(config.net_arch, Mapping):
            raise ValueError("policy_kwargs: shared_trunk=True needs net_arch as a list of sizes")
        return config

    @property
    def pi_arch(self) -> tuple[int, ...]:
        arch = self.net_arch
        return tuple(arch["pi"]) if isinstance(arch, Mapping) else tuple(arch)

    @property
    def vf_arch(self) -> tuple[int, ...]:
        arch = self.net_arch
        return tuple(arch["vf"]) if isinstance(arch, Mapping) else tuple(arch)

    def to_kwargs(self) -> dict[str, Any]:
        arch = self.net_arch
        arch_json: Any = (
            {k: list(v) for k, v in arch.items()} if isinstance(arch, Mapping) else list(arch)
        )
        return {
            "net_arch": arch_json,
            "activation": self.activation,
            "shared_trunk": self.shared_trunk,
            "layer_norm": self.layer_norm,
            "ortho_init": self.ortho_init,
            "log_std_init": self.log_std_init,
        }


def _normalize_arch(arch: Any) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    def sizes(value: Any, name: str) -> tuple[int, ...]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ValueError(f"policy_kwargs.{name} must be a list of layer sizes, got {value!r}")
        out = []
        for size in value:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(
                    f"policy_kwargs.{name} sizes must be positive integers, got {size!r}"
                )
            out.append(int(size))
        return tuple(out)

    if isinstance(arch, Mapping):
        if set(arch) != {"pi", "vf"}:
            raise ValueError(
                f"policy_kwargs.net_arch as a dict needs keys 'pi' and 'vf', got {sorted(arch)}"
            )
        return {"pi": sizes(arch["pi"], "net_arch.pi"), "vf": sizes(arch["vf"], "net_arch.vf")}
    return sizes(arch, "net_arch")
