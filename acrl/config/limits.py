"""Sizes a run may ask for: cheap estimates of what a network, a rollout or a plot grid will
allocate, refused in one line before anything is allocated or written.

The limit is this machine's physical memory (``os.sysconf``); networks are also capped at
``MAX_PARAMETERS``, far above any actor-critic MLP (the presets' largest has ~20,000).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from acrl.config.policy import PolicyConfig
from acrl.errors import UserError

MAX_PARAMETERS = 10**9
MAX_ENVS = 2**16  # environments in one process (acrl's fastest measured setting: 1,024)
FLOAT_BYTES = 4
# Copies of every parameter that training holds: the weights, the gradient, the optimizer's
# state (one for RMSprop, two for Adam), and the NumPy backend's or a worker's copy.
PARAMETER_COPIES = 5
_FALLBACK_MEMORY = 2**40  # where the OS does not say: 1 TiB


def memory_limit() -> int:
    """This machine's physical memory in bytes."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY


def check_fits(what: str, need: int, advice: str) -> None:
    """Raise a one-line UserError if ``need`` bytes exceed this machine's memory."""
    limit = memory_limit()
    if need > limit:
        raise UserError(
            f"{what} would need {format_bytes(need)}, more than this machine's "
            f"{format_bytes(limit)} of memory: {advice}"
        )


def network_parameters(
    config: PolicyConfig, features: int, action_params: int, encoder_params: int = 0
) -> int:
    """The number of parameters of the policy network (encoder, trunks, heads, log std)."""

    def mlp(sizes: Sequence[int]) -> tuple[int, int]:
        count, width = 0, features
        for size in sizes:
            count += width * size + size + (2 * size if config.layer_norm else 0)
            width = size
        return count, width

    pi_count, pi_out = mlp(config.pi_arch)
    vf_count, vf_out = (0, pi_out) if config.shared_trunk else mlp(config.vf_arch)
    log_std = pi_out * action_params if config.use_sde else action_params
    heads = (pi_out + 1) * action_params + vf_out + 1 + log_std
    return encoder_params + pi_count + vf_count + heads


def check_network(
    config: PolicyConfig, features: int, action_params: int, encoder_params: int = 0
) -> None:
    """Refuse a network above ``MAX_PARAMETERS`` or too large for memory while training."""
    count = network_parameters(config, features, action_params, encoder_params)
    arch = config.to_kwargs()["net_arch"]
    if count > MAX_PARAMETERS:
        raise UserError(
            f"policy_kwargs.net_arch {arch} makes a network of {count:,} parameters; acrl "
            f"trains networks of up to {MAX_PARAMETERS:,}"
        )
    check_fits(
        f"policy_kwargs.net_arch {arch} ({count:,} parameters)",
        count * FLOAT_BYTES * PARAMETER_COPIES,
        "use smaller layers",
    )


def rollout_bytes(
    n_steps: int,
    n_envs: int,
    features: int,
    action_params: int,
    hidden: Sequence[int],
    obs_bytes: int = 0,
) -> int:
    """A lower bound of the memory of one rollout and its update: per transition, the
    stored observation (``obs_bytes``), the features, action, reward and flags, and the
    activations of the hidden layers."""
    per_transition = obs_bytes + FLOAT_BYTES * (features + action_params + 8 + 2 * sum(hidden))
    return per_transition * (n_steps + 1) * n_envs


def check_rollout(
    n_steps: int,
    n_envs: int,
    features: int,
    action_params: int,
    hidden: Sequence[int],
    obs_bytes: int = 0,
) -> None:
    """Refuse a rollout (``n_steps`` x ``n_envs`` transitions) that cannot fit in memory."""
    check_fits(
        f"a rollout of n_steps={n_steps} x n_envs={n_envs} transitions",
        rollout_bytes(n_steps, n_envs, features, action_params, hidden, obs_bytes),
        "lower n_steps or n_envs",
    )


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    value, power = float(n), 0
    while value >= 1024 and power < len(units) - 1:
        value, power = value / 1024, power + 1
    return f"{value:.3g} {units[power]}"
