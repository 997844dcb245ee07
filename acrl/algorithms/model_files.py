"""What a model file holds of a model, and the model rebuilt from it.

A model file (acrl.run.model_file) is safetensors tensors and a JSON header: the policy's
weights, the optimizer's state and the RNG states as tensors; the algorithm, its
hyperparameters, the compute choice, the spaces and the counters as JSON. Before a model is
built from a file, its tensors are checked against a skeleton of the network that the
metadata describes (acrl.run.model_checks), and its RNG states on fresh generators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from gymnasium import spaces

from acrl.config.hyperparams import A2CConfig
from acrl.config.wrappers import parse_env_packages, wrappers_from_json
from acrl.errors import UserError, first_line
from acrl.model.normalization import make_normalization
from acrl.model.observations import observation_layout
from acrl.model.policy import ActorCritic
from acrl.run.model_checks import check_tensors, mismatch
from acrl.run.model_file import optimizer_from_tensors, optimizer_to_tensors
from acrl.run.run_files import rng_state, rng_states
from acrl.run.space_json import space_from_json
from acrl.run.upgrade import is_old_layout, upgrade_file

if TYPE_CHECKING:
    from acrl.algorithms.base import Agent


def contents(model: Agent) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON metadata of ``model``'s file."""
    tensors = {f"policy.{k}": v for k, v in model.policy.state_dict().items()}
    opt_tensors, opt_meta = optimizer_to_tensors(model.optimizer)
    tensors.update(_vector_states(opt_tensors, model.params.vector, model.params.logical))
    meta = model._meta()
    meta["optimizer"] = opt_meta
    rng_tensors, meta["rng"] = rng_state()
    tensors.update(rng_tensors)
    return tensors, meta


def _vector_states(
    tensors: dict[str, torch.Tensor],
    vector: torch.Tensor,
    reorder: Callable[[torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """``tensors`` with the optimizer's states of the parameter vector's shape reordered:
    files hold them in the parameters' logical order, the optimizer in the vector's
    (channels-last convolution weights, acrl.model.flat_params)."""
    return {
        k: reorder(v) if k.startswith("optimizer.") and v.shape == vector.shape else v
        for k, v in tensors.items()
    }


def skeleton(
    observation_space: spaces.Space, action_space: spaces.Space, config: A2CConfig
) -> ActorCritic:
    """The policy that ``Agent`` builds for these spaces and settings, on the meta device:
    every name, shape and dtype, and no memory (a user's extractor is built on the CPU: its
    code may read tensors)."""
    with torch.device("cpu" if config.policy_config.user_extractor else "meta"):
        normalization = make_normalization(observation_space, config)
        return ActorCritic(observation_space, action_space, config.policy_config, normalization)


def restore(
    cls: type[Agent],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    device: str | torch.device | None,
    overrides: dict[str, Any],
) -> Agent:
    """A ``cls`` model rebuilt from a file's tensors and metadata (``overrides``: settings
    that replace the saved ones, as ``Agent.load`` takes them). The tensors are checked
    against the metadata before anything is allocated."""
    from acrl.algorithms.base import Agent  # the base's constructor, not the engine's

    config_fields = dict(meta["config"])
    extra = {k: overrides.pop(k) for k in list(overrides) if k in A2CConfig.field_names()}
    # another optimizer (Adam for RMSprop, TensorFlow's RMSprop for torch's) starts fresh:
    # the file's state is another algorithm's
    fresh_optimizer = any(
        k in extra and extra[k] != config_fields.get(k, getattr(A2CConfig, k))
        for k in ("use_rms_prop", "rms_prop_tf_like")
    )
    config_fields.update(extra)
    config = A2CConfig(**config_fields)
    observation_space = space_from_json(meta["observation_space"])
    action_space = space_from_json(meta["action_space"])
    expected = skeleton(observation_space, action_space, config)
    if is_old_layout(tensors):
        try:
            tensors = upgrade_file(tensors, meta, expected)
        except (RuntimeError, KeyError, IndexError) as exc:
            raise UserError(mismatch(f"{type(exc).__name__}: {first_line(exc)}")) from None
    if observation_layout(observation_space).images and not any(
        k.startswith("policy.encoder.") for k in tensors
    ):
        raise UserError(
            "this model was trained before acrl encoded images with a CNN (an MLP on the raw "
            "pixels, unscaled): train it again with CnnPolicy"
        )
    check_tensors(tensors, expected)
    saved_rng = None
    if "rng" in meta:
        rng_states(tensors, meta["rng"])  # a bad state is refused now, not at a resume
        saved_rng = ({k: v for k, v in tensors.items() if k.startswith("rng.")}, meta["rng"])
    model = cls.__new__(cls)
    Agent.__init__(
        model,
        "auto",
        None,
        config,
        n_envs=meta["n_envs"],
        seed=meta.get("seed"),
        device=cls.default_device if device is None else device,
        env_kwargs=meta.get("env_kwargs"),
        vectorization=meta.get("vectorization", "auto"),
        observation_space=observation_space,
        action_space=action_space,
        seed_rngs=False,
        threads=overrides.pop("threads", "auto"),
        may_import=False,
    )
    model._init_engine(**{**cls._engine_kwargs(meta), **overrides})
    model.env_id = meta.get("env_id")
    model.env_wrappers = wrappers_from_json(meta.get("env_wrappers"))
    model.env_packages = parse_env_packages(meta.get("env_packages"))
    policy_state = {
        k.removeprefix("policy."): v for k, v in tensors.items() if k.startswith("policy.")
    }
    try:
        model.policy.load_state_dict(policy_state)
        if not fresh_optimizer:
            states = _vector_states(tensors, model.params.vector, model.params.from_logical)
            optimizer_from_tensors(model.optimizer, states, meta["optimizer"])
    except RuntimeError as exc:
        raise UserError(mismatch(first_line(exc))) from None
    try:
        model.num_timesteps = int(meta["num_timesteps"])
        model.num_updates = int(meta["num_updates"])
        model.total_episodes = int(meta.get("total_episodes", 0))
        recent = [(float(r), int(n)) for r, n in meta.get("recent_episodes", [])]
    except OverflowError:  # an infinite count; the other bad values are the caller's
        raise UserError("a step or episode count in the metadata is not finite") from None
    model.recent_episodes.extend(recent)
    model._saved_rng = saved_rng
    return model
