"""The policy's memory: recurrent cores (LSTM or GRU) over a flat hidden state per env.

A state is one row of floats per env, ``(N, state_size)``: every layer's h (and c, for an
LSTM) side by side, the actor core's first, then the critic's where it has its own. Flat rows
are what a rollout stores, a collector carries, a checkpoint could hold and ``predict``
hands back, whatever the cell. A row is zeroed where an episode starts.

``Memory`` holds the cores in the three arrangements of sb3-contrib's recurrent policies:
- separate (the default): the actor and the critic each have a core;
- shared (``shared_recurrent``): the critic reads the actor's core, detached (as
  sb3-contrib's ``shared_lstm``: only the actor's loss trains the core);
- a feed-forward critic (``critic_recurrent=False``, sb3-contrib's ``enable_critic_lstm``):
  the critic reads the encoder's features through a linear layer of the core's width.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from acrl.config.policy import PolicyConfig

CUDNN_COPY = "RNN module weights are not part of single contiguous chunk of memory"


class RecurrentCore(nn.Module):
    """An LSTM or GRU of ``layers`` layers of ``hidden`` units, over flat state rows."""

    def __init__(self, kind: str, in_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        cell = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = cell(in_dim, hidden, num_layers=layers)
        self.kind, self.hidden, self.layers = kind, hidden, layers
        self.state_size = layers * hidden * (2 if kind == "lstm" else 1)
        self._names = [  # each layer's parameters, as nn.LSTM and nn.GRU name them
            [f"{w}_l{layer}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            for layer in range(layers)
        ]

    def _unflat(self, state: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """(N, S) rows as the cell's (layers, N, hidden) state (h, c for an LSTM)."""
        n = state.shape[0]
        parts = state.reshape(n, -1, self.layers, self.hidden).permute(1, 2, 0, 3)
        if self.kind == "lstm":
            return parts[0].contiguous(), parts[1].contiguous()
        return parts[0].contiguous()

    def _flat(self, state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        parts = torch.stack(state) if isinstance(state, tuple) else state.unsqueeze(0)
        return parts.permute(2, 0, 1, 3).reshape(parts.shape[2], self.state_size)

    def forward(
        self, x: Tensor, state: Tensor, starts: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Outputs (T, N, hidden) and the final state (N, S) of the sequence ``x`` (T, N, in)
        from ``state``; a row of the state is zeroed before step t where ``starts[t]`` (T, N)
        is 1 (None: no episode starts in the sequence, ``state`` already zeroed where one
        did). The cell runs over each stretch of steps without a start in one call; a single
        step (acting) runs torch's cell kernels, layer by layer (the same maths in a third of
        nn.LSTM's time at acting's sizes)."""
        if x.shape[0] == 1:
            if starts is not None:
                state = state * (1.0 - starts[0]).unsqueeze(1)
            out, state = self.step(x[0], state)
            return out[None], state
        if starts is None:
            starts = x.new_zeros(x.shape[:2])
        cuts = [0, *(int(t) for t in torch.nonzero(starts[1:].any(dim=1)).flatten() + 1)]
        outputs = []
        for a, b in zip(cuts, [*cuts[1:], x.shape[0]], strict=True):
            state = state * (1.0 - starts[a]).unsqueeze(1)
            with warnings.catch_warnings():
                # on CUDA, cuDNN copies the weights (views of the policy's flat parameter
                # vector) into a chunk of its own at each call and warns that it does: a copy
                # of the core's weights, small next to a sequence's work, made on purpose
                warnings.filterwarnings("ignore", CUDNN_COPY, UserWarning)
                out, cell_state = self.rnn(x[a:b], self._unflat(state))
            outputs.append(out)
            state = self._flat(cell_state)
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0], state

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step: the output (N, hidden) and the next state (N, S) for inputs ``x`` (N, in)."""
        n = state.shape[0]
        parts = state.reshape(n, -1, self.layers, self.hidden)
        hs, cs = [], []
        for layer in range(self.layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(self.rnn, name) for name in self._names[layer])
            if self.kind == "lstm":
                state_in = (parts[:, 0, layer], parts[:, 1, layer])
                h, c = torch.lstm_cell(x, state_in, w_ih, w_hh, b_ih, b_hh)
                cs.append(c)
            else:
                h = torch.gru_cell(x, parts[:, 0, layer], w_ih, w_hh, b_ih, b_hh)
            hs.append(h)
            x = h
        return x, torch.stack(hs + cs, dim=1).reshape(n, self.state_size)

    def orthogonal_(self) -> None:
        """Orthogonal weights (gain 1) and zero biases, as CleanRL initializes its PPO-LSTM
        (torch's default, uniform in +-1/sqrt(hidden), where ``ortho_init`` is off)."""
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if name.startswith("weight"):
                    nn.init.orthogonal_(param, gain=1.0)
                else:
                    param.zero_()


class Memory(nn.Module):
    """The actor's recurrent core and the critic's (its own, the actor's, or a linear layer)."""

    def __init__(self, config: PolicyConfig, features: int, critic_features: int) -> None:
        super().__init__()
        kind, hidden, layers = config.recurrent, config.hidden_size, config.n_recurrent_layers
        self.actor = RecurrentCore(kind, features, hidden, layers)
        self.critic: RecurrentCore | nn.Linear | None = None  # None: the actor's core
        if not config.shared_recurrent:
            self.critic = (
                RecurrentCore(kind, critic_features, hidden, layers)
                if config.critic_recurrent
                else nn.Linear(critic_features, hidden)
            )
        self.hidden = hidden
        self._split = self.actor.state_size
        critic_state = self.critic.state_size if isinstance(self.critic, RecurrentCore) else 0
        self.state_size = self._split + critic_state

    def forward(
        self,
        features: Tensor,
        critic_features: Tensor | None,
        state: Tensor,
        starts: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The actor's and the critic's inputs to their trunks, (T, N, hidden) each, and the
        final state, for the sequences of features (T, N, F) from ``state`` (N, S), zeroed
        where ``starts`` (T, N) says (None: nowhere). ``critic_features``: the critic
        encoder's, where it has its own (else the features are the critic's too)."""
        critic_in = features if critic_features is None else critic_features
        actor_out, actor_state = self.actor(features, state[:, : self._split], starts)
        if self.critic is None:  # the shared core: the value loss does not train it
            return actor_out, actor_out.detach(), actor_state
        if isinstance(self.critic, nn.Linear):
            return actor_out, self.critic(critic_in), actor_state
        critic_out, critic_state = self.critic(critic_in, state[:, self._split :], starts)
        return actor_out, critic_out, torch.cat([actor_state, critic_state], dim=1)

    def orthogonal_(self, gain: float) -> None:
        self.actor.orthogonal_()
        if isinstance(self.critic, RecurrentCore):
            self.critic.orthogonal_()
        elif isinstance(self.critic, nn.Linear):
            nn.init.orthogonal_(self.critic.weight, gain=gain)
            nn.init.zeros_(self.critic.bias)


def recurrent_parameters(config: PolicyConfig, features: int) -> int:
    """How many parameters ``config``'s memory has over ``features`` inputs (0 without)."""
    if config.recurrent == "none":
        return 0
    gates = 4 if config.recurrent == "lstm" else 3
    h, layers = config.hidden_size, config.n_recurrent_layers
    core = gates * (h * (features + h) + 2 * h) + (layers - 1) * gates * (2 * h * h + 2 * h)
    if config.shared_recurrent:
        return core
    return 2 * core if config.critic_recurrent else core + features * h + h
