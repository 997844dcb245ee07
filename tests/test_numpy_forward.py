"""The NumPy forward pass acts as the torch module does, from the same random draws."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from acrl.config import A2CConfig, PolicyConfig
from acrl.learner.backends.numpy_forward import NumpyForward, numpy_gaps
from acrl.learner.optim import make_optimizer
from acrl.model.flat_params import FlatParameters
from acrl.model.normalization import Normalization
from acrl.model.policy import ActorCritic

OBS = spaces.Box(-5.0, 5.0, shape=(3, 2), dtype=np.float32)  # flattened to 6
DISCRETE = spaces.Discrete(4)
BOX = spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)

CONFIGS = {
    "twin tanh": dict(net_arch=[64, 64]),
    "twin relu": dict(net_arch=[32, 16], activation="relu"),
    "shared": dict(net_arch=[64, 64], shared_trunk=True),
    "separate": dict(net_arch={"pi": [32], "vf": [64, 64]}),
    "no hidden layer": dict(net_arch=[]),
}


def make_policy(kwargs, action_space, normalize=False, seed=0):
    torch.manual_seed(seed)
    normalization = Normalization(6, True, False) if normalize else None
    policy = ActorCritic(OBS, action_space, PolicyConfig.from_kwargs(kwargs), normalization)
    FlatParameters(policy)
    if normalize:  # statistics far from the prior, so that a missed normalization shows
        policy.normalization.obs_rms.update(torch.randn(500, 6, dtype=torch.float64) * 3 + 1)
    return policy


@pytest.mark.parametrize("action_space", [DISCRETE, BOX], ids=["categorical", "gaussian"])
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_numpy_acting_matches_torch(name, normalize, action_space):
    policy = make_policy(CONFIGS[name], action_space, normalize)
    fast = NumpyForward(policy)
    obs = np.random.default_rng(1).normal(size=(16, 3, 2)).astype(np.float32) * 2
    with torch.inference_mode():
        torch.manual_seed(7)
        actions_t = policy.act(torch.from_numpy(obs))
        values_t = policy(torch.from_numpy(obs))[1]  # both heads at once, as the loss sees them
        value_t = policy.value(torch.from_numpy(obs))
    torch.manual_seed(7)  # the same draws from torch's generator
    actions, values = fast.act(obs), fast.value(obs)
    np.testing.assert_allclose(values, values_t.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, value_t.numpy(), rtol=1e-5, atol=1e-5)
    if action_space is DISCRETE:
        assert actions.dtype == np.int64 and np.array_equal(actions, actions_t.numpy())
    else:
        np.testing.assert_allclose(actions, actions_t.numpy(), rtol=1e-5, atol=1e-5)
    assert actions.shape == tuple(actions_t.shape) and values.dtype == np.float32


MIXED = spaces.Dict(
    {
        "pos": spaces.Box(-5.0, 5.0, (2,), np.float32),
        "door": spaces.Discrete(3, start=1),
        "keys": spaces.MultiDiscrete([2, 4]),
        "lights": spaces.MultiBinary(2),
    }
)


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
def test_numpy_acting_matches_torch_on_one_hot_features(normalize):
    """Box values (normalized), bits and one-hot indices, as the CombinedEncoder makes them."""
    torch.manual_seed(0)
    normalization = Normalization(2, True, False) if normalize else None
    policy = ActorCritic(MIXED, DISCRETE, PolicyConfig(), normalization)
    FlatParameters(policy)
    if normalize:
        policy.normalization.obs_rms.update(torch.randn(500, 2, dtype=torch.float64) * 3 + 1)
    observations = {key: np.stack([MIXED[key].sample() for _ in range(16)]) for key in MIXED}
    rows, _ = policy.encoder.layout.to_batch(observations)
    fast = NumpyForward(policy)
    with torch.inference_mode():
        features = policy.encode(torch.from_numpy(rows)).numpy()
        torch.manual_seed(7)
        actions_t = policy.act(torch.from_numpy(rows))
        values_t = policy.value(torch.from_numpy(rows))
    np.testing.assert_allclose(fast.prepare(rows), features, rtol=1e-6, atol=1e-6)
    torch.manual_seed(7)
    assert np.array_equal(fast.act(rows), actions_t.numpy())
    np.testing.assert_allclose(fast.value(rows), values_t.numpy(), rtol=1e-5, atol=1e-5)


def test_categorical_samples_follow_the_policy():
    policy = make_policy(CONFIGS["twin tanh"], DISCRETE)
    with torch.no_grad():
        policy.actor_head.bias.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    fast = NumpyForward(policy)
    obs = np.zeros((20_000, 3, 2), np.float32)
    actions = fast.act(obs)
    with torch.no_grad():
        logits = policy(torch.from_numpy(obs[:1]))[0][0][0]
    expected = torch.softmax(logits, -1).numpy()
    counts = np.bincount(actions, minlength=4) / len(actions)
    np.testing.assert_allclose(counts, expected, atol=0.012)


def test_numpy_views_follow_the_optimizer_and_moved_memory():
    policy = make_policy(CONFIGS["twin tanh"], DISCRETE)
    params = FlatParameters(policy)  # moves the parameters again: the views must follow
    fast = NumpyForward(policy)
    obs = np.random.default_rng(2).normal(size=(8, 3, 2)).astype(np.float32)
    optimizer = make_optimizer(
        params.vector, A2CConfig(learning_rate=0.1), policy.critic_only_mask()
    )
    before = fast.value(obs).copy()
    params.grad.normal_()
    optimizer.step()
    policy.share_memory()  # moves every tensor to shared memory
    after = fast.value(obs)
    with torch.no_grad():
        expected = policy.value(torch.from_numpy(obs)).numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs", [dict(layer_norm=True), dict(activation="gelu")], ids=["layer norm", "gelu"]
)
def test_what_numpy_does_not_cover_is_named_and_refused(kwargs):
    policy = make_policy(kwargs, DISCRETE)
    gaps = numpy_gaps(policy)
    assert len(gaps) == 1 and ("layer_norm" in gaps[0] or "gelu" in gaps[0])
    with pytest.raises(ValueError, match="NumPy cannot compute this policy"):
        NumpyForward(policy)
