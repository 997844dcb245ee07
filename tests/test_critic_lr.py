"""critic_lr_scale: which numbers are the critic's own, and that they step at that multiple of
the learning rate (A2C on either backend, A3C's workers, saved and loaded with the model)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from acrl import A2C, A3C
from acrl.config.hyperparams import A2CConfig
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic

VECTOR = spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)
MINATAR = spaces.Box(0, 1, (10, 10, 4), dtype=bool)
ARRANGEMENTS = {
    "twin trunks": (VECTOR, spaces.Discrete(3), {}),
    "separate trunks": (VECTOR, spaces.Box(-1, 1, (2,)), {"net_arch": {"pi": [8], "vf": [6, 4]}}),
    "shared trunk": (VECTOR, spaces.Discrete(3), {"shared_trunk": True}),
    "gSDE": (VECTOR, spaces.Box(-1, 1, (2,)), {"use_sde": True}),
    "shared CNN": (MINATAR, spaces.Discrete(3), {"features_extractor_class": "SmallCNN"}),
    "critic's own CNN": (
        MINATAR,
        spaces.Discrete(3),
        {"features_extractor_class": "SmallCNN", "share_features_extractor": False},
    ),
    "lstm": (VECTOR, spaces.Discrete(3), {"recurrent": "lstm"}),
    "shared lstm": (VECTOR, spaces.Discrete(3), {"recurrent": "lstm", "shared_recurrent": True}),
    "linear critic input": (
        VECTOR,
        spaces.Discrete(3),
        {"recurrent": "gru", "critic_recurrent": False},
    ),
    "lstm, critic's own encoder": (
        spaces.Dict({"obs": VECTOR, "id": spaces.Discrete(4)}),
        spaces.Discrete(3),
        {"recurrent": "lstm", "share_features_extractor": False, "net_arch": [16]},
    ),
}


def reads(params, output):
    """Which numbers of the flat vector ``output`` depends on (its gradient is not zero)."""
    params.zero_grad()
    output.backward(retain_graph=True)
    return params.grad != 0


@pytest.mark.parametrize("name", ARRANGEMENTS)
def test_the_critics_own_numbers_are_those_only_the_value_reads(name):
    """The mask against autograd: over a batch of random observations (and hidden states),
    a number is the critic's own exactly when the value depends on it and no output of the
    actor does."""
    obs_space, action_space, kwargs = ARRANGEMENTS[name]
    torch.manual_seed(0)
    policy_kwargs = {k: v for k, v in kwargs.items() if k != "use_sde"}
    config = A2CConfig(policy_kwargs=policy_kwargs, use_sde=kwargs.get("use_sde", False))
    policy = ActorCritic(obs_space, action_space, config.policy_config)
    params = FlatParameters(policy)
    batch = batch_space(obs_space, 64)
    batch.seed(0)
    rows = torch.from_numpy(policy.encoder.layout.flatten(batch.sample(), 64))
    state = torch.randn(64, policy.state_size) if policy.recurrent else None
    action_params, value = policy(rows, state)
    actor = reads(params, sum(p.sum() for p in action_params))
    critic = reads(params, value.sum())
    read = actor | critic  # all but the weights of ReLU units dead on the whole batch
    assert float(read.float().mean()) > 0.8
    mask = policy.critic_only_mask()
    assert mask.shape == read.shape and bool(mask.any())
    assert torch.equal(mask[read], (critic & ~actor)[read])


def one_update(backend, scale):
    """The flat vector's move in A2C's first update on CartPole, from seed 0."""
    model = A2C(
        "MlpPolicy",
        "CartPole-v1",
        n_envs=4,
        n_steps=5,
        seed=0,
        backend=backend,
        critic_lr_scale=scale,
    )
    start = model.params.vector.detach().clone()
    model.learn(20)
    assert model.num_updates == 1
    return model.params.vector.detach() - start, model.policy.critic_only_mask()


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a2c_steps_the_critics_numbers_at_the_scale_and_the_actors_as_before(backend):
    plain, mask = one_update(backend, 1.0)
    for scale in (2.0, 1e-9):
        moved, _ = one_update(backend, scale)
        assert torch.equal(moved[~mask], plain[~mask])  # bitwise: the same rollout and step
        torch.testing.assert_close(moved[mask], scale * plain[mask], rtol=0, atol=1e-6)
    assert float(plain[mask].abs().max()) > 1e-3  # so a critic left still would fail


def test_a3c_workers_step_the_critics_numbers_at_the_scale_and_the_model_keeps_it(tmp_path):
    model = A3C(
        "MlpPolicy", "CartPole-v1", n_workers=2, n_envs=2, n_steps=5, seed=0, critic_lr_scale=1e-9
    )
    start = model.params.vector.detach().clone()
    mask = model.policy.critic_only_mask()
    model.learn(1_000)
    moved = (model.params.vector.detach() - start).abs()
    assert model.num_updates >= 50
    assert float(moved[mask].max()) < 1e-8 < float(moved[~mask].max())  # 1e-3 at scale 1
    loaded = A3C.load(model.save(tmp_path / "a3c"))
    assert loaded.config.critic_lr_scale == 1e-9 and loaded.optimizer.lr_scale is not None
    a2c = A2C("MlpPolicy", "CartPole-v1", n_envs=2, critic_lr_scale=0.5)
    assert A2C.load(a2c.save(tmp_path / "a2c")).config.critic_lr_scale == 0.5
