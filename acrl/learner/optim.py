"""The optimizer of a policy's one parameter vector: RMSprop (torch's or TensorFlow's) or Adam.

acrl steps one flat vector (acrl.model.flat_params), so it needs none of
``torch.optim.Optimizer``'s machinery (parameter groups, hooks, per-parameter state dicts),
whose first use imports ``torch._dynamo``: 1.3 s, a third of a short run's start-up, in every
process and every A3C worker. These optimizers do the arithmetic of torch's single-tensor
kernels in the same order, so they step bitwise as ``torch.optim.RMSprop`` and
``torch.optim.Adam`` (tests/test_optim.py), and keep torch's state names and ``state_dict``
layout, so files written with torch's optimizers load and resume.

The state is made when the optimizer is built (torch makes it at the first step), so A3C's
shared state exists before any worker starts.

``lr_scale`` (None: 1 everywhere) multiplies each number's step: ``critic_lr_scale`` on the
critic's own numbers, as torch's optimizers with the critic's parameters in a group of their
own at that multiple of the learning rate (equal to rounding; tests/test_optim.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from acrl.config.hyperparams import A2CConfig

OptimizerState = dict[str, Tensor]
_FLOAT32_TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32


def _root(square: Tensor, absorbed: float) -> Tensor:
    """sqrt(square) for a float32 denominator ``sqrt(square) / c + eps`` (c = 1 but for
    Adam's bias correction), where roots under ``absorbed`` (2^-30 of eps * c: under half of
    eps's last bit once divided by c) vanish in the sum.
    Entries under absorbed^2 are raised to it first: the sum is bit for bit the same, and
    exact zeros (parameters whose gradient was always zero, as weights behind a dead ReLU)
    and denormals stay out of torch's sqrt, which is 15-45x slower on them (torch 2.13's
    CPU kernels, AVX2 and AVX-512 alike: 234-750 against 16 µs over MinAtar's 132k
    parameters, in training a twentieth of an update)."""
    floor = absorbed * absorbed
    return (square.clamp_min(floor) if floor >= _FLOAT32_TINY else square).sqrt()


class VectorOptimizer:
    """One parameter vector, its state tensors and the learning rate of the next step."""

    moments: ClassVar[dict[str, float]]  # state name -> its initial value
    name: ClassVar[str]
    # the rest of torch's parameter group, written so that torch.optim reads our files too
    torch_group: ClassVar[dict[str, Any]] = {
        "weight_decay": 0.0,
        "maximize": False,
        "foreach": False,
        "capturable": False,
        "differentiable": False,
    }

    def __init__(self, vector: Tensor, lr: float, state: OptimizerState | None = None) -> None:
        if not lr >= 0.0:
            raise ValueError(f"{self.name}: bad learning rate {lr}")
        self.vector, self.lr = vector, lr
        self.lr_scale: Tensor | None = None
        if state is None:
            state = {"step": torch.zeros((), dtype=vector.dtype, device=vector.device)}
            for key, initial in self.moments.items():
                state[key] = torch.full_like(vector, initial, memory_format=torch.contiguous_format)
        if set(state) != {"step", *self.moments}:
            raise ValueError(f"{self.name} keeps {['step', *self.moments]}, not {sorted(state)}")
        self.state = state

    def hyperparameters(self) -> dict[str, Any]:
        """The settings besides the learning rate, as torch's parameter group names them."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self) -> None:
        """One step along ``vector.grad`` (nothing if there is none), at ``lr``."""
        grad = self.vector.grad
        if grad is not None:
            self.state["step"] += 1
            self._apply(self.vector, grad)

    def _apply(self, param: Tensor, grad: Tensor) -> None:
        raise NotImplementedError

    def _scaled(self, numerator: Tensor) -> Tensor:
        """A step's numerator times ``lr_scale`` (itself without one)."""
        return numerator if self.lr_scale is None else numerator * self.lr_scale

    def share_memory(self) -> OptimizerState:
        """Move the state to shared memory (A3C's processes); the tensors, to ``attach``."""
        for value in self.state.values():
            value.share_memory_()
        return self.state

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: ``{"state": {0: ...}, "param_groups": [{..., "params": [0]}]}``."""
        group = {"lr": self.lr, **self.hyperparameters(), **self.torch_group, "params": [0]}
        return {"state": {0: dict(self.state)}, "param_groups": [group]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Copy a ``state_dict`` (ours or torch's) into the state in place; the learning rate
        too. A state torch never made (a file saved before the first step) leaves it fresh."""
        groups, states = saved["param_groups"], saved["state"]
        if len(groups) != 1 or len(states) > 1:
            raise ValueError(f"{self.name} steps one parameter vector, not {len(groups)} groups")
        entry = next(iter(states.values()), None)
        if entry is not None:
            if set(entry) != set(self.state):
                raise ValueError(f"{self.name} keeps {sorted(self.state)}, not {sorted(entry)}")
            for key, value in entry.items():
                self.state[key].copy_(torch.as_tensor(value))
        self.lr = float(groups[0]["lr"])


class RMSprop(VectorOptimizer):
    """torch's RMSprop: ``v <- alpha v + (1 - alpha) g^2;  p <- p - lr g / (sqrt(v) + eps)``."""

    name, moments = "RMSprop", {"square_avg": 0.0}
    torch_group = {**VectorOptimizer.torch_group, "momentum": 0.0, "centered": False}

    def __init__(
        self, vector: Tensor, lr: float, alpha: float = 0.99, eps: float = 1e-8, **kwargs: Any
    ) -> None:
        if not (0.0 <= alpha < 1.0 and eps > 0.0):
            raise ValueError(f"bad {self.name} settings: alpha {alpha}, eps {eps}")
        self.alpha, self.eps = alpha, eps
        super().__init__(vector, lr, **kwargs)

    def hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "eps": self.eps}

    def _apply(self, param: Tensor, grad: Tensor) -> None:
        square_avg = self.state["square_avg"]
        square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        denom = _root(square_avg, self.eps * 2.0**-30).add_(self.eps)
        param.addcdiv_(self._scaled(grad), denom, value=-self.lr)


class RMSpropTFLike(RMSprop):
    """RMSprop as TensorFlow computes it, which the A2C/A3C papers and the zoo's Atari
    settings assume: the mean square starts at one (not zero) and epsilon sits inside the
    square root, so the first steps are small and ``eps`` bounds the step size:

        v <- alpha * v + (1 - alpha) * g^2;   p <- p - lr * g / sqrt(v + eps)
    """

    name, moments = "RMSpropTFLike", {"square_avg": 1.0}

    def _apply(self, param: Tensor, grad: Tensor) -> None:
        square_avg = self.state["square_avg"]
        square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        param.addcdiv_(self._scaled(grad), square_avg.add(self.eps).sqrt_(), value=-self.lr)


class Adam(VectorOptimizer):
    """Adam with bias correction: moments ``m``, ``v`` of ``g`` and ``g^2`` at ``betas``;
    ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``."""

    name, moments = "Adam", {"exp_avg": 0.0, "exp_avg_sq": 0.0}
    torch_group = {
        **VectorOptimizer.torch_group,
        "amsgrad": False,
        "fused": None,
        "decoupled_weight_decay": False,
    }

    def __init__(
        self,
        vector: Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        **kwargs: Any,
    ) -> None:
        if not (all(0.0 <= b < 1.0 for b in betas) and len(betas) == 2 and eps > 0.0):
            raise ValueError(f"bad {self.name} settings: betas {betas}, eps {eps}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), eps
        super().__init__(vector, lr, **kwargs)

    def hyperparameters(self) -> dict[str, Any]:
        return {"betas": self.betas, "eps": self.eps}

    def _apply(self, param: Tensor, grad: Tensor) -> None:
        beta1, beta2 = self.betas
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.state["step"])
        step_size = self.lr / (1 - beta1**step)
        correction = (1 - beta2**step) ** 0.5
        root = _root(exp_avg_sq, self.eps * correction * 2.0**-30)
        denom = (root / correction).add_(self.eps)
        param.addcdiv_(self._scaled(exp_avg), denom, value=-step_size)


def make_optimizer(
    vector: Tensor,
    config: A2CConfig,
    critic_mask: Tensor,
    state: OptimizerState | None = None,
) -> VectorOptimizer:
    """RMSprop (alpha 0.99, as SB3's A2C; TensorFlow's with ``rms_prop_tf_like``) or Adam
    (``adam_betas``, eps 1e-5) over the policy's one parameter vector, stepping the numbers
    ``critic_mask`` marks (ActorCritic.critic_only_mask) at ``critic_lr_scale`` times the
    learning rate; over ``state`` (an A3C worker's view of the shared state) if given."""
    lr = config.lr_schedule(1.0)
    optimizer: VectorOptimizer
    if config.use_rms_prop and config.rms_prop_tf_like:
        optimizer = RMSpropTFLike(vector, lr, alpha=0.99, eps=config.rms_prop_eps, state=state)
    elif config.use_rms_prop:
        optimizer = RMSprop(vector, lr, alpha=0.99, eps=config.rms_prop_eps, state=state)
    else:
        optimizer = Adam(vector, lr, betas=config.adam_betas, eps=1e-5, state=state)
    if critic_mask.shape != vector.shape:
        raise ValueError(f"critic mask of {critic_mask.numel()} numbers for {vector.numel()}")
    if config.critic_lr_scale != 1.0:
        optimizer.lr_scale = torch.where(critic_mask, config.critic_lr_scale, 1.0).to(vector)
    return optimizer


def optimizer_step(optimizer: VectorOptimizer, learning_rate: float) -> None:
    """One step along the gradients already in place, at ``learning_rate``."""
    optimizer.lr = learning_rate
    optimizer.step()
