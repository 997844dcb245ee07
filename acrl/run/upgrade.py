"""Model files of acrl 0.1, read into today's layout.

acrl 0.1 named the trunks ``actor_trunk.*`` and ``critic_trunk.*`` and kept one optimizer
state per parameter tensor. Today the trunks are ``trunk.*`` (equal-shaped trunks stacked,
acrl.trunks) and the optimizer steps one parameter vector (acrl.flat_params). The weights
and the optimizer state are converted, so a 0.1 model predicts and trains on unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from acrl.model.policy import ActorCritic
from acrl.model.trunks import SeparateTrunks, SharedTrunk, Trunks

# A module yields its own parameters (log_std) before its children's.
_PART_ORDER = ("log_std", "actor_trunk", "critic_trunk", "actor_head", "critic_head")
_TWIN_NAMES = {
    "linears.{i}.weight": "weights.{i}",
    "linears.{i}.bias": "biases.{i}",
    "norms.{i}.weight": "norm_weights.{i}",
    "norms.{i}.bias": "norm_biases.{i}",
}


def is_old_layout(tensors: dict[str, Tensor]) -> bool:
    return any(k.startswith("policy.actor_trunk.") for k in tensors)


def upgrade_file(
    tensors: dict[str, Tensor], meta: dict[str, Any], policy: ActorCritic
) -> dict[str, Tensor]:
    """The file's tensors (policy and optimizer) in today's names and shapes.

    ``meta["optimizer"]`` is updated in place to describe the one parameter vector.
    """
    old_policy = {
        k.removeprefix("policy."): v for k, v in tensors.items() if k.startswith("policy.")
    }
    out = {"policy." + k: v for k, v in upgrade_policy_state(old_policy, policy.trunk).items()}
    per_param: dict[str, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            per_param.setdefault(key, {})[index] = value
    names = _old_parameter_names(old_policy)
    new_names = [n for n, _ in policy.named_parameters()]
    for key, by_index in per_param.items():
        if len(by_index) != len(names):
            raise ValueError(
                f"optimizer state {key!r} has {len(by_index)} entries for {len(names)} parameters"
            )
        first = by_index["0"]
        if first.dim() == 0:  # a step count, the same for every parameter
            out[f"optimizer.0.{key}"] = first
            continue
        named = upgrade_policy_state(
            {n: by_index[str(j)] for j, n in enumerate(names)}, policy.trunk
        )
        out[f"optimizer.0.{key}"] = torch.cat([named[n].reshape(-1) for n in new_names])
    scalars = meta["optimizer"].get("scalars", {})
    meta["optimizer"]["scalars"] = {"0": scalars["0"]} if "0" in scalars else {}
    meta["optimizer"]["param_groups"] = [{**meta["optimizer"]["param_groups"][0], "params": [0]}]
    return out


def upgrade_policy_state(state: dict[str, Tensor], trunks: Trunks) -> dict[str, Tensor]:
    """A 0.1 policy state_dict (or anything keyed like one) in today's names."""
    out = {k: v for k, v in state.items() if not k.startswith(("actor_trunk.", "critic_trunk."))}
    old = {k: v for k, v in state.items() if k not in out}
    if isinstance(trunks, SharedTrunk):
        out.update({"trunk.mlp." + k.removeprefix("actor_trunk."): v for k, v in old.items()})
    elif isinstance(trunks, SeparateTrunks):
        for k, v in old.items():
            name = k.replace("actor_trunk.", "trunk.actor.", 1)
            out[name.replace("critic_trunk.", "trunk.critic_mlp.", 1)] = v
    else:
        shapes = {k: v.shape for k, v in trunks.state_dict().items()}
        for i in range(len(trunks.weights)):
            for old_name, new_name in _TWIN_NAMES.items():
                actor = old.get(f"actor_trunk.{old_name}".format(i=i))
                critic = old.get(f"critic_trunk.{old_name}".format(i=i))
                if actor is not None and critic is not None:
                    name = new_name.format(i=i)
                    out[f"trunk.{name}"] = torch.stack([actor, critic]).reshape(shapes[name])
    return out


def _old_parameter_names(state: dict[str, Tensor]) -> list[str]:
    """0.1's parameters in the order its modules registered them (the optimizer's order)."""

    def rank(name: str) -> tuple[int, ...]:
        parts = name.split(".")
        part = _PART_ORDER.index(parts[0])
        if part in (1, 2):  # actor_trunk / critic_trunk . linears|norms . i . weight|bias
            return (part, ("linears", "norms").index(parts[1]), int(parts[2]), parts[3] == "bias")
        return (part, 0, 0, parts[-1] == "bias")

    return sorted((k for k in state if k.split(".")[0] in _PART_ORDER), key=rank)
