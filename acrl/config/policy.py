"""The shape of a policy network, as validated settings (no torch: the model reads them)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acrl.config.checks import check_bool, check_choice, check_range

ACTIVATIONS = ("tanh", "relu", "silu", "gelu", "elu", "leaky_relu", "sigmoid")
POLICY_KWARGS = (
    "net_arch",
    "activation",
    "shared_trunk",
    "layer_norm",
    "ortho_init",
    "log_std_init",
    "features_extractor_class",
    "features_extractor_kwargs",
    "normalize_images",
    "share_features_extractor",
    "image_channels",
    "recurrent",
    "hidden_size",
    "n_recurrent_layers",
    "shared_recurrent",
    "critic_recurrent",
    "action_scaling",
)
RECURRENT_ALIASES = {
    "lstm_hidden_size": "hidden_size",
    "n_lstm_layers": "n_recurrent_layers",
    "shared_lstm": "shared_recurrent",
    "enable_critic_lstm": "critic_recurrent",
}
"""sb3-contrib's names of the recurrent settings (RecurrentPPO's policy_kwargs)."""
RECURRENT = ("none", "lstm", "gru")
MAX_HIDDEN_SIZE = 4096
MAX_RECURRENT_LAYERS = 8
EXTRACTORS = ("auto", "NatureCNN", "SmallCNN")
"""Built-in image encoders ("auto": NatureCNN for images of at least 36x36, else SmallCNN);
any other value is a user's torch module as "module:Class" (acrl.model.extractors)."""
IMAGE_CHANNELS = ("auto", "first", "last")
LOG_STD_INIT_RANGE = (-20.0, 20.0)  # a std from 2e-9 to 5e8: every variance fits a float32
POLICIES = (
    "auto",
    "MlpPolicy",
    "CnnPolicy",
    "MultiInputPolicy",
    "MlpLstmPolicy",
    "CnnLstmPolicy",
    "MultiInputLstmPolicy",
)
"""Policy names, as Stable-Baselines3's and sb3-contrib's: all build the one policy, whose
encoder the observation space chooses (acrl.model.encoders); the name is checked against the
space (acrl.model.encoders.check_policy_name): "CnnPolicy" for an image, "MultiInputPolicy"
for a Dict, "MlpPolicy" for anything without images, "auto" for any space. An "...LstmPolicy"
is the same with an LSTM core (``recurrent="lstm"``, acrl.model.memory)."""


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
    features_extractor_class: str = "auto"  # EXTRACTORS, or "module:Class"
    features_extractor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    normalize_images: bool = True  # pixels / 255 inside the model
    share_features_extractor: bool = True  # False: the critic has an encoder of its own
    image_channels: str = "auto"  # where an image's channels are: IMAGE_CHANNELS
    recurrent: str = "none"  # the memory core: RECURRENT
    hidden_size: int = 64  # the core's units per layer (sb3-contrib: lstm_hidden_size)
    n_recurrent_layers: int = 1  # (sb3-contrib: n_lstm_layers)
    shared_recurrent: bool = False  # the critic reads the actor's core (shared_lstm)
    critic_recurrent: bool = True  # else a linear critic input (enable_critic_lstm)
    use_sde: bool = False  # set by the algorithm's ``use_sde``, not through policy_kwargs
    action_scaling: bool = False  # Box actions: [-1, 1] mapped onto the bounds (Tianshou's)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None) -> PolicyConfig:
        """Build from SB3-style ``policy_kwargs`` (accepts ``activation_fn`` too)."""
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ValueError(f"policy_kwargs must be a mapping, got {kwargs!r}")
        kwargs = dict(kwargs or {})
        if "activation_fn" in kwargs:
            kwargs["activation"] = kwargs.pop("activation_fn")
        for alias, name in RECURRENT_ALIASES.items():
            if alias in kwargs:
                if name in kwargs:
                    raise ValueError(f"policy_kwargs: give {name} or {alias}, not both")
                kwargs[name] = kwargs.pop(alias)
        unknown = sorted(set(kwargs) - set(POLICY_KWARGS))
        if unknown:
            raise ValueError(
                f"unknown policy_kwargs {unknown}; allowed: {', '.join(sorted(POLICY_KWARGS))}"
            )
        kwargs["net_arch"] = _normalize_arch(kwargs.get("net_arch", (64, 64)))
        kwargs["activation"] = activation_name(kwargs.get("activation", "tanh"))
        for flag in ("shared_trunk", "layer_norm", "ortho_init", "action_scaling"):
            check_bool(f"policy_kwargs.{flag}", kwargs.get(flag, False))
        log_std_init = kwargs.get("log_std_init", 0.0)
        if isinstance(log_std_init, bool) or not isinstance(log_std_init, (int, float)):
            raise ValueError(f"policy_kwargs.log_std_init must be a number, got {log_std_init!r}")
        check_range("policy_kwargs.log_std_init", log_std_init, *LOG_STD_INIT_RANGE)
        kwargs["log_std_init"] = float(log_std_init)
        kwargs["features_extractor_class"] = extractor_name(
            kwargs.get("features_extractor_class", "auto")
        )
        kwargs["features_extractor_kwargs"] = _json_kwargs(
            kwargs.get("features_extractor_kwargs") or {}
        )
        for flag in ("normalize_images", "share_features_extractor"):
            check_bool(f"policy_kwargs.{flag}", kwargs.get(flag, True))
        check_choice(
            "policy_kwargs.image_channels", kwargs.get("image_channels", "auto"), IMAGE_CHANNELS
        )
        _check_recurrent(kwargs)
        if kwargs.get("shared_recurrent"):  # the shared core is the critic's: none of its own
            kwargs["critic_recurrent"] = False
        config = cls(**kwargs)
        if config.shared_trunk and isinstance(config.net_arch, Mapping):
            raise ValueError("policy_kwargs: shared_trunk=True needs net_arch as a list of sizes")
        return config

    @property
    def is_recurrent(self) -> bool:
        return self.recurrent != "none"

    @property
    def user_extractor(self) -> bool:
        """The features extractor is the user's class ("module:Class"), not a built-in."""
        return self.features_extractor_class not in EXTRACTORS

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
            "features_extractor_class": self.features_extractor_class,
            "features_extractor_kwargs": dict(self.features_extractor_kwargs),
            "normalize_images": self.normalize_images,
            "share_features_extractor": self.share_features_extractor,
            "image_channels": self.image_channels,
            **self._memory_kwargs(),
            **({"action_scaling": True} if self.action_scaling else {}),
        }

    def _memory_kwargs(self) -> dict[str, Any]:
        """The recurrent core's settings, for a recurrent policy only."""
        if not self.is_recurrent:
            return {}
        return {
            "recurrent": self.recurrent,
            "hidden_size": self.hidden_size,
            "n_recurrent_layers": self.n_recurrent_layers,
            "shared_recurrent": self.shared_recurrent,
            "critic_recurrent": self.critic_recurrent,
        }


def _check_recurrent(kwargs: dict[str, Any]) -> None:
    """The memory core's settings: a known cell, sizes in range, flags as booleans."""
    check_choice("policy_kwargs.recurrent", kwargs.get("recurrent", "none"), RECURRENT)
    for name, top in (
        ("hidden_size", MAX_HIDDEN_SIZE),
        ("n_recurrent_layers", MAX_RECURRENT_LAYERS),
    ):
        value = kwargs.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ValueError(
                f"policy_kwargs.{name} must be an integer from 1 to {top}, got {value!r}"
            )
    for flag in ("shared_recurrent", "critic_recurrent"):
        check_bool(f"policy_kwargs.{flag}", kwargs.get(flag, True))
    if kwargs.get("shared_recurrent") and kwargs.get("critic_recurrent") is True:
        raise ValueError(
            "policy_kwargs: shared_recurrent=True gives the critic the actor's core; "
            "critic_recurrent=True (enable_critic_lstm) asks for one of its own: choose one"
        )
    if kwargs.get("shared_recurrent") and kwargs.get("share_features_extractor") is False:
        raise ValueError(
            "policy_kwargs: shared_recurrent=True reads one encoder's features; it cannot go "
            "with share_features_extractor=False"
        )


def with_policy_name(kwargs: Mapping[str, Any], policy: str) -> dict[str, Any]:
    """``policy_kwargs`` with what the policy name says: an "...LstmPolicy" is an LSTM core."""
    out = dict(kwargs)
    if policy.endswith("LstmPolicy"):
        given = out.get("recurrent", "lstm")
        if given != "lstm":
            raise ValueError(f"{policy} is an LSTM policy; policy_kwargs.recurrent is {given!r}")
        out["recurrent"] = "lstm"
    defaults = PolicyConfig()
    memory = sorted(
        key  # set away from its default (files of feed-forward runs may hold the defaults)
        for key in set(out) & {*RECURRENT_ALIASES, *RECURRENT_ALIASES.values()}
        if out[key] != getattr(defaults, RECURRENT_ALIASES.get(key, key))
    )
    if out.get("recurrent", "none") == "none" and memory:
        raise ValueError(
            f"policy_kwargs {memory} set a recurrent core, which this policy has not: use an "
            "...LstmPolicy or policy_kwargs.recurrent 'lstm' or 'gru'"
        )
    return out


def base_policy_name(policy: str) -> str:
    """The feed-forward name of a policy name ("MlpLstmPolicy" -> "MlpPolicy")."""
    return policy.replace("LstmPolicy", "Policy")


PASSED_CLASSES: dict[str, type] = {}
"""Extractor classes passed as objects (``policy_kwargs={"features_extractor_class": Net}``),
by their "module:Class" name: how a class defined in a function or a notebook is found again."""


def extractor_name(value: Any) -> str:
    """A built-in extractor's name, or "module:Class" for a user's class (passed as a class
    or as that string); the class is looked up when the model is built, not here."""
    if isinstance(value, type):
        name = f"{value.__module__}:{value.__qualname__}"
        if value.__name__ in EXTRACTORS and value.__module__.startswith("acrl."):
            return value.__name__
        PASSED_CLASSES[name] = value
        return name
    if isinstance(value, str) and value in EXTRACTORS:
        return value
    if isinstance(value, str) and re.fullmatch(_CLASS_PATH, value):
        return value
    raise ValueError(
        "policy_kwargs.features_extractor_class must be one of "
        f"{', '.join(EXTRACTORS)}, a torch module class or 'module:Class', got {value!r}"
    )


_CLASS_PATH = r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_<>][\w<>]*)*"


def _json_kwargs(value: Any) -> dict[str, Any]:
    """Keyword arguments that a model file can record (JSON: numbers, strings, lists, dicts)."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(
            f"policy_kwargs.features_extractor_kwargs must be a mapping of names, got {value!r}"
        )
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError):
        raise ValueError(
            "policy_kwargs.features_extractor_kwargs must hold numbers, strings, booleans, "
            f"lists and mappings (a model file records them), got {value!r}"
        ) from None


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
