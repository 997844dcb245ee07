"""A trained policy for deployment: the deterministic policy as one graph, observation in,
action out, in ONNX (run by onnxruntime, no acrl or torch needed) or TorchScript.

The graph holds what ``predict(obs, deterministic=True)`` does to an observation batch:
observation normalization with the model's statistics, image scaling, the encoder, the
memory core, the trunk and the head, then the action as the env takes it (a Discrete or
MultiDiscrete ``start`` added, Box actions clipped to the bounds). A recurrent policy's
state is an explicit input ``state`` and output ``next_state`` (zeros at an episode's first
step: zero a row where its episode starts). Observations: Box spaces (vectors, images) in the
env's shape with a batch axis in front; Dict, Tuple and Discrete ones are not exported yet.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from acrl.errors import UserError
from acrl.model.distributions import Categorical, DiagGaussian, MultiCategorical, unit_to_bounds
from acrl.model.policy import ActorCritic
from acrl.run.model_path import FORMATS


class DeterministicPolicy(nn.Module):
    """``policy`` as ``obs -> action`` (feed-forward) or ``(obs, state) -> (action,
    next_state)`` (recurrent), deterministic, with the env's action form."""

    shift: Tensor  # buffers: a Discrete or MultiDiscrete start, a Box's bounds
    low: Tensor
    high: Tensor

    def __init__(self, policy: ActorCritic, observation_space: spaces.Space) -> None:
        super().__init__()
        if not isinstance(observation_space, spaces.Box):
            raise UserError(
                f"acrl export takes Box observations (vectors, images), not "
                f"{type(observation_space).__name__}: predict() serves this model"
            )
        self.policy: ActorCritic = policy.eval()
        self.recurrent = bool(policy.recurrent)
        self.row_dtype = torch.uint8 if policy.encoder.layout.images else torch.float32
        dist = policy.distribution
        self.kind = type(dist).__name__
        if isinstance(dist, Categorical):
            self.register_buffer("shift", torch.tensor(int(dist.start or 0)))
        elif isinstance(dist, MultiCategorical):
            self.register_buffer("shift", torch.tensor(dist.start, dtype=torch.int64))
            self.action_dtype = torch.from_numpy(np.zeros(0, dtype=dist.dtype)).dtype
        elif isinstance(dist, DiagGaussian):
            self.register_buffer("low", torch.as_tensor(np.asarray(dist.low), dtype=torch.float32))
            self.register_buffer(
                "high", torch.as_tensor(np.asarray(dist.high), dtype=torch.float32)
            )
            self.scaled = dist.scaled
        self.action_shape = tuple(getattr(dist, "shape", ()) or ())

    def forward(self, obs: Tensor, state: Tensor | None = None) -> Any:
        rows = obs.reshape(obs.shape[0], -1).to(self.row_dtype)
        actions, next_state = self.policy.step(rows, state, deterministic=True)
        actions = self._to_env(actions)
        return (actions, next_state) if self.recurrent else actions

    def _to_env(self, actions: Tensor) -> Tensor:
        if self.kind == "Categorical":
            return actions + self.shift
        if self.kind == "DiagGaussian" and self.scaled:  # [-1, 1] onto the bounds
            return unit_to_bounds(actions.clamp(-1.0, 1.0), self.low, self.high)
        if self.kind == "DiagGaussian":
            return torch.minimum(torch.maximum(actions, self.low), self.high)
        if self.kind == "MultiCategorical":
            shifted = actions + self.shift
            return shifted.reshape(actions.shape[0], *self.action_shape).to(self.action_dtype)
        return actions.reshape(actions.shape[0], *self.action_shape).to(torch.int8)  # Bernoulli


def example_inputs(model: Any, batch: int = 2) -> tuple[Tensor, ...]:
    """Inputs that trace the graph: observations sampled from the space, and zero states."""
    space = copy.deepcopy(model.observation_space)  # the model's space keeps its RNG state
    space.seed(0)
    obs = np.stack([space.sample() for _ in range(batch)])
    inputs: tuple[Tensor, ...] = (torch.as_tensor(obs),)
    if model.policy.recurrent:
        inputs += (model.policy.initial_state(batch).cpu(),)
    return inputs


def export_policy(model: Any, out: Path, fmt: str) -> Path:
    """Write ``model``'s deterministic policy to ``out`` as ``fmt`` (onnx or torchscript)."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    # a copy: the model itself stays on its device, in training mode, its views intact
    module = DeterministicPolicy(copy.deepcopy(model.policy).cpu(), model.observation_space)
    inputs = example_inputs(model)
    names = ["obs", "state"][: len(inputs)]
    outputs = ["action", "next_state"][: len(inputs)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python code
        if fmt == "torchscript":
            traced = torch.jit.trace(module, inputs)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            data = buffer.getvalue()
        else:
            data = _onnx_bytes(module, inputs, names, outputs)
    from acrl.run.atomic import write_atomic

    write_atomic(out, data)
    return out


def _onnx_bytes(
    module: nn.Module, inputs: tuple[Tensor, ...], names: list[str], outputs: list[str]
) -> bytes:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'acrl[export]'") from None
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in [*names, *outputs]}
    torch.onnx.export(
        module,
        inputs,
        buffer,  # type: ignore[arg-type]  # the tracing exporter writes file objects too
        input_names=names,
        output_names=outputs,
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,  # the tracing exporter: no onnxscript needed
    )
    return buffer.getvalue()
