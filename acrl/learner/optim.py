"""The optimizer of a policy's one parameter vector, as the hyperparameters ask."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from acrl.config.hyperparams import A2CConfig


class RMSpropTFLike(torch.optim.Optimizer):
    """RMSprop as TensorFlow computes it, which the A2C/A3C papers and the zoo's Atari
    settings assume: the mean square starts at one (not zero) and epsilon sits inside the
    square root, so the first steps are small and ``eps`` bounds the step size:

        v <- alpha * v + (1 - alpha) * g^2;   p <- p - lr * g / sqrt(v + eps)

    Its state is made when it is built, so A3C's shared state starts from ones too.
    """

    def __init__(
        self, params: Iterable[Tensor], lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5
    ) -> None:
        if not (lr >= 0.0 and 0.0 <= alpha < 1.0 and eps > 0.0):
            raise ValueError(f"bad RMSpropTFLike settings: lr {lr}, alpha {alpha}, eps {eps}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] = torch.zeros((), dtype=p.dtype)
                self.state[p]["square_avg"] = torch.ones_like(
                    p, memory_format=torch.preserve_format
                )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
                p.addcdiv_(p.grad, square_avg.add(group["eps"]).sqrt_(), value=-group["lr"])
        return loss


def make_optimizer(vector: torch.Tensor, config: A2CConfig) -> torch.optim.Optimizer:
    """RMSprop (alpha 0.99, as SB3's A2C; TensorFlow's with ``rms_prop_tf_like``) or Adam
    (``adam_betas``, eps 1e-5) over the policy's one parameter vector."""
    lr = config.lr_schedule(1.0)
    if config.use_rms_prop and config.rms_prop_tf_like:
        return RMSpropTFLike([vector], lr=lr, alpha=0.99, eps=config.rms_prop_eps)
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
