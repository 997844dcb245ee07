"""The acting passes' CNN activations, kept for the update of the same rollout.

A2C's update runs the policy forward over the rollout's observations with the weights that
acted on them (every engine steps its optimizer after the gradient, and A3C's workers copy
the shared weights before collecting, not during). For a CNN policy that forward is mostly
the CNN's, and acting has computed it already, step by step: the NumPy backend keeps those
activations and the gradient reads them instead of convolving the rollout again (MinAtar
Breakout, 16 envs x 5 steps: the update's CNN forward is ~0.5 ms of ~4 ms an update).

They are used only when the inputs are provably the same: the weights are bit for bit those
at the start of acting, and the observations those the rollout holds, step by step;
otherwise the gradient computes its forward as before. (The products ran over N rows at a
time rather than T x N, so BLAS may round their last bits otherwise.)
"""

from __future__ import annotations

import numpy as np

from acrl.learner.backends.numpy_cnn import NumpyCNN
from acrl.learner.backends.numpy_forward import Array, Pass
from acrl.model.flat_params import FlatParameters


class ActedPasses:
    """Records the CNN passes of one rollout's acting steps; hands them to its update."""

    def __init__(self, params: FlatParameters) -> None:
        self.params = params
        self._snapshot = np.empty_like(self.weights)
        self._steps: list[tuple[Array, list[Pass]]] = []
        self.recording = False

    @property
    def weights(self) -> Array:
        """The policy's parameters as they are now (a NumPy view of their one vector)."""
        return self.params.vector.detach().numpy()  # type: ignore[no-any-return]

    def start(self) -> None:
        """A rollout's acting begins: forget the last one, note the weights it acts with."""
        self._steps = []
        np.copyto(self._snapshot, self.weights)
        self.recording = True

    def stop(self) -> None:
        """The rollout's acting ends: acting outside one is not recorded."""
        self.recording = False

    def record(self, obs: Array, passes: list[Pass]) -> None:
        """One acting step's observations (copied) and each CNN's pass over them."""
        self._steps.append((obs.copy(), passes))

    def take(self, obs: Array, cnns: list[NumpyCNN]) -> list[Pass] | None:
        """Each of ``cnns``' pass over the rollout's observations ``obs`` (T, N, ...), joined
        over the steps, if the steps recorded are exactly these with the weights as they are
        now; else None. Either way the record is used up."""
        steps, self._steps = self._steps, []
        if len(steps) != obs.shape[0] or not np.array_equal(self._snapshot, self.weights):
            return None
        if not all(np.array_equal(seen, now) for (seen, _), now in zip(steps, obs, strict=True)):
            return None
        return [cnn.join([passes[c] for _, passes in steps]) for c, cnn in enumerate(cnns)]
