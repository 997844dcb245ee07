"""Distributions against torch.distributions; the ActorCritic's shapes, options and errors."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from acrl.config import PolicyConfig
from acrl.model.distributions import Categorical, DiagGaussian, make_distribution
from acrl.model.networks import MLP, orthogonal_init
from acrl.model.policy import ActorCritic
from acrl.model.trunks import SharedTrunk, TwinTrunks

OBS = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)


def test_categorical_matches_torch():
    torch.manual_seed(0)
    logits = torch.randn(7, 4)
    actions = torch.randint(0, 4, (7,))
    ref = torch.distributions.Categorical(logits=logits)
    dist = Categorical(4)
    torch.testing.assert_close(dist.log_prob((logits,), actions), ref.log_prob(actions))
    torch.testing.assert_close(dist.entropy((logits,)), ref.entropy())
    log_prob, entropy = dist.log_prob_and_entropy((logits,), actions)
    torch.testing.assert_close(log_prob, ref.log_prob(actions))
    torch.testing.assert_close(entropy, ref.entropy())
    assert torch.equal(dist.mode((logits,)), logits.argmax(-1))


def test_categorical_samples_follow_the_probabilities():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]])).expand(20000, 3)
    counts = torch.bincount(Categorical(3).sample((logits,)), minlength=3).float() / 20000
    torch.testing.assert_close(counts, torch.tensor([0.1, 0.6, 0.3]), atol=0.015, rtol=0)


def test_gaussian_matches_torch():
    torch.manual_seed(0)
    mean = torch.randn(5, 2)
    log_std = torch.tensor([-0.5, 0.3])
    actions = torch.randn(5, 2)
    ref = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    dist = DiagGaussian(2, np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    torch.testing.assert_close(dist.log_prob((mean, log_std), actions), ref.log_prob(actions))
    torch.testing.assert_close(dist.entropy((mean, log_std)), ref.entropy())
    assert torch.equal(dist.mode((mean, log_std)), mean)
    samples = dist.sample((mean[:1].expand(50000, 2), log_std))
    torch.testing.assert_close(samples.std(0), log_std.exp(), atol=0.02, rtol=0)


def test_gaussian_clips_only_on_the_way_to_the_env():
    dist = make_distribution(spaces.Box(-2.0, 1.0, shape=(2,), dtype=np.float32))
    out = dist.to_env(np.array([[5.0, -5.0]], dtype=np.float32))
    assert out.tolist() == [[1.0, -2.0]]


@pytest.mark.parametrize(
    "space,match",
    [
        (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), "unsupported action space"),
        (spaces.Box(-1, 1, shape=(2, 2)), "1-D"),
    ],
)
def test_unsupported_action_spaces_are_named(space, match):
    with pytest.raises(ValueError, match=match):
        ActorCritic(OBS, space)


def test_unsupported_observation_space_is_named():
    with pytest.raises(ValueError, match="unsupported observation space Text"):
        ActorCritic(spaces.Text(4), spaces.Discrete(2))


def test_separate_networks_by_default_with_orthogonal_init():
    policy = ActorCritic(OBS, spaces.Discrete(2))
    assert isinstance(policy.trunk, TwinTrunks)
    assert [tuple(w.shape) for w in policy.trunk.weights] == [(2, 64, 3), (2, 64, 64)]
    for copy in range(2):  # the actor's and the critic's
        w = policy.trunk.weights[1][copy]
        # Orthogonal with gain sqrt(2): W W^T = 2 I for a square layer.
        torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(64), atol=1e-4, rtol=0)
    assert not torch.equal(policy.trunk.weights[1][0], policy.trunk.weights[1][1])
    head = policy.actor_head.weight
    assert head.norm(dim=1).max().item() == pytest.approx(0.01, abs=1e-6)
    assert torch.count_nonzero(policy.critic_head.bias) == 0


def test_shared_trunk_layer_norm_and_activation():
    config = PolicyConfig.from_kwargs(
        {"net_arch": [32], "shared_trunk": True, "layer_norm": True, "activation_fn": "nn.ReLU"}
    )
    policy = ActorCritic(OBS, spaces.Discrete(3), config)
    assert isinstance(policy.trunk, SharedTrunk)
    trunk = policy.trunk.mlp
    assert [m.out_features for m in trunk.linears] == [32]
    assert trunk.norms is not None and len(trunk.norms) == 1
    assert isinstance(trunk.activation, nn.ReLU)
    x = torch.randn(4, 3)
    expected = torch.relu(trunk.norms[0](trunk.linears[0](x)))
    torch.testing.assert_close(trunk(x), expected)
    params, values = policy(torch.zeros(4, 3))
    assert params[0].shape == (4, 3) and values.shape == (4,)


def test_dict_net_arch_and_gaussian_head():
    config = PolicyConfig.from_kwargs(
        {"net_arch": {"pi": [16], "vf": [8, 8]}, "log_std_init": -1.5}
    )
    policy = ActorCritic(OBS, spaces.Box(-1, 1, shape=(2,), dtype=np.float32), config)
    assert policy.log_std is not None
    assert policy.log_std.tolist() == [-1.5, -1.5]
    log_prob, entropy, values = policy.evaluate_actions(torch.zeros(5, 3), torch.zeros(5, 2))
    assert log_prob.shape == entropy.shape == values.shape == (5,)
    assert entropy[0].item() == pytest.approx(2 * (0.5 + 0.5 * math.log(2 * math.pi) - 1.5))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"net_arch": [64, -1]}, "positive integers"),
        ({"net_arch": {"pi": [8]}}, "'pi' and 'vf'"),
        ({"activation": "swish2"}, "activation must be one of"),
        ({"shared_trunk": True, "net_arch": {"pi": [8], "vf": [8]}}, "shared_trunk"),
        ({"dropout": 0.1}, "unknown policy_kwargs"),
        ({"log_std_init": [1]}, "log_std_init must be a number"),
        ({"layer_norm": "yes"}, "layer_norm must be true or false"),
    ],
)
def test_bad_policy_kwargs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig.from_kwargs(kwargs)


def test_policy_kwargs_must_be_a_mapping():
    with pytest.raises(ValueError, match="policy_kwargs must be a mapping"):
        PolicyConfig.from_kwargs(5)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("ortho", [False, True])
def test_twin_trunks_are_two_mlps_computed_as_one(layer_norm, ortho):
    torch.manual_seed(7)
    twin = TwinTrunks(5, [16, 8], nn.Tanh, layer_norm)
    if ortho:
        twin.orthogonal_(2**0.5)
    torch.manual_seed(7)  # the same draws, in the same order, as two MLPs
    actor, critic = MLP(5, [16, 8], nn.Tanh, layer_norm), MLP(5, [16, 8], nn.Tanh, layer_norm)
    if ortho:
        orthogonal_init(actor, 2**0.5)
        orthogonal_init(critic, 2**0.5)
    for i, (weight, bias) in enumerate(zip(twin.weights, twin.biases, strict=True)):
        for copy, mlp in enumerate((actor, critic)):
            assert torch.equal(weight[copy], mlp.linears[i].weight)
            assert torch.equal(bias[copy, 0], mlp.linears[i].bias)
    if layer_norm:  # make the affine part matter
        with torch.no_grad():
            for i, norm in enumerate(actor.norms):
                twin.norm_weights[i][0].uniform_(0.5, 1.5)
                norm.weight.copy_(twin.norm_weights[i][0, 0])
    x = torch.randn(7, 5)
    actor_features, critic_features = twin(x)
    torch.testing.assert_close(actor_features, actor(x))
    torch.testing.assert_close(critic_features, critic(x))
    torch.testing.assert_close(twin.critic(x), critic(x))
