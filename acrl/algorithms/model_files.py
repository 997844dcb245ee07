"""What a model file holds of a model, and the model rebuilt from it.

A model file (acrl.run.model_file) is safetensors tensors and a JSON header: the policy's
weights, the optimizer's state and the RNG states as tensors; the algorithm, its
hyperparameters, the compute choice, the spaces and the counters as JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from acrl.config.hyperparams import A2CConfig
from acrl.errors import UserError
from acrl.run.model_file import optimizer_from_tensors, optimizer_to_tensors, space_from_json
from acrl.run.run_files import rng_state
from acrl.run.upgrade import is_old_layout, upgrade_file

if TYPE_CHECKING:
    from acrl.algorithms.base import Agent


def contents(model: Agent) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON metadata of ``model``'s file."""
    tensors = {f"policy.{k}": v for k, v in model.policy.state_dict().items()}
    opt_tensors, opt_meta = optimizer_to_tensors(model.optimizer)
    tensors.update(opt_tensors)
    meta = model._meta()
    meta["optimizer"] = opt_meta
    rng_tensors, meta["rng"] = rng_state()
    tensors.update(rng_tensors)
    return tensors, meta


def restore(
    cls: type[Agent],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    device: str | torch.device | None,
    overrides: dict[str, Any],
) -> Agent:
    """A ``cls`` model rebuilt from a file's tensors and metadata (``overrides``: settings
    that replace the saved ones, as ``Agent.load`` takes them)."""
    from acrl.algorithms.base import Agent  # the base's constructor, not the engine's

    config_fields = dict(meta["config"])
    extra = {k: overrides.pop(k) for k in list(overrides) if k in A2CConfig.field_names()}
    config_fields.update(extra)
    model = cls.__new__(cls)
    Agent.__init__(
        model,
        "MlpPolicy",
        None,
        A2CConfig(**config_fields),
        n_envs=meta["n_envs"],
        seed=meta.get("seed"),
        device=cls.default_device if device is None else device,
        env_kwargs=meta.get("env_kwargs"),
        vectorization=meta.get("vectorization", "auto"),
        observation_space=space_from_json(meta["observation_space"]),
        action_space=space_from_json(meta["action_space"]),
        seed_rngs=False,
        threads=overrides.pop("threads", "auto"),
    )
    model._init_engine(**{**cls._engine_kwargs(meta), **overrides})
    model.env_id = meta.get("env_id")
    if is_old_layout(tensors):
        tensors = upgrade_file(tensors, meta, model.policy)
    policy_state = {
        k.removeprefix("policy."): v for k, v in tensors.items() if k.startswith("policy.")
    }
    try:
        model.policy.load_state_dict(policy_state)
        optimizer_from_tensors(model.optimizer, tensors, meta["optimizer"])
    except RuntimeError as exc:
        raise UserError(
            f"weights do not match the saved architecture ({str(exc).splitlines()[0]})"
        ) from None
    model.num_timesteps = int(meta["num_timesteps"])
    model.num_updates = int(meta["num_updates"])
    model.total_episodes = int(meta.get("total_episodes", 0))
    model.recent_episodes.extend((float(r), int(n)) for r, n in meta.get("recent_episodes", []))
    if "rng" in meta:
        model._saved_rng = (
            {k: v for k, v in tensors.items() if k.startswith("rng.")},
            meta["rng"],
        )
    return model
