"""The optimizer of a policy's one parameter vector, as the hyperparameters ask."""

from __future__ import annotations

import torch

from acrl.config.hyperparams import A2CConfig


def make_optimizer(vector: torch.Tensor, config: A2CConfig) -> torch.optim.Optimizer:
    """RMSprop (alpha 0.99, as SB3's A2C) or Adam (``adam_betas``, eps 1e-5) over the policy's
    one parameter vector."""
    lr = config.lr_schedule(1.0)
    if config.use_rms_prop:
        return torch.optim.RMSprop(
            [vector], lr=lr, alpha=0.99, eps=config.rms_prop_eps, foreach=False
        )
    return torch.optim.Adam([vector], lr=lr, betas=config.adam_betas, eps=1e-5, foreach=False)


def optimizer_step(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    """One step along the gradients already in place, at ``learning_rate``."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    optimizer.step()
