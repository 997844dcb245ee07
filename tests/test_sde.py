"""Generalized state-dependent exploration (gSDE): its distribution, its noise during
collection, and a gSDE model through the public API (A2C, A3C, save and load)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv

from acrl import A2C, A3C
from acrl.config import A2CConfig, PolicyConfig
from acrl.learner.backends.numpy_forward import NumpyForward
from acrl.learner.rollout import RolloutCollector
from acrl.model.policy import ActorCritic

SDE = PolicyConfig(net_arch=(16, 16), log_std_init=-1.0, use_sde=True)


def pendulum_vec(n=3):
    return SyncVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(n)])


def sde_policy(env):
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, SDE)
    with torch.no_grad():
        policy.log_std.copy_(torch.linspace(-2.0, 0.5, 16).reshape(16, 1))
    return policy


def actor_features(policy, obs):
    with torch.no_grad():
        return policy.trunk(policy.encode(torch.as_tensor(obs)))[0]


def test_log_prob_and_entropy_are_those_of_the_marginal_gaussian():
    env = pendulum_vec()
    policy = sde_policy(env)
    obs = torch.randn(6, 3)
    actions = torch.randn(6, 1)
    features = actor_features(policy, obs)
    std = torch.sqrt(features.pow(2) @ policy.log_std.detach().exp().pow(2) + 1e-6)
    (mean, _), _ = policy(obs)
    ref = torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
    log_prob, entropy, _ = policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(log_prob, ref.log_prob(actions))
    torch.testing.assert_close(entropy, ref.entropy())
    assert policy.log_std.shape == (16, 1)


def test_gradients_reach_log_std_but_not_the_features_through_the_std():
    env = pendulum_vec()
    policy = sde_policy(env)
    obs = torch.randn(6, 3)
    (_, log_std), _ = policy(obs)
    log_std.sum().backward()
    assert policy.log_std.grad.abs().sum() > 0
    assert all(p.grad is None for p in policy.trunk.parameters())


def test_exploration_noise_has_the_marginal_std():
    env = pendulum_vec()
    policy = sde_policy(env)
    obs = torch.randn(1, 3).expand(40_000, 3)
    exploration = policy.exploration_noise(40_000)
    features = actor_features(policy, obs)
    noise = torch.bmm(features.unsqueeze(1), exploration).squeeze(1)
    (_, log_std), _ = policy(obs[:1])
    torch.testing.assert_close(noise.std(0), log_std.exp()[0], rtol=0.02, atol=0)


def test_numpy_and_torch_act_alike_with_exploration_matrices():
    env = pendulum_vec()
    policy = sde_policy(env)
    obs = torch.randn(5, 3)
    exploration = policy.exploration_noise(5)
    fast = NumpyForward(policy)
    actions, values = fast.act(obs.numpy(), exploration), fast.value(obs.numpy())
    with torch.no_grad():
        ref_actions = policy.act(obs, exploration=exploration)
        ref_values = policy.value(obs)
    np.testing.assert_allclose(actions, ref_actions.numpy(), atol=1e-6)
    np.testing.assert_allclose(values, ref_values.numpy(), atol=1e-6)


@pytest.mark.parametrize("freq, draws_at", [(-1, [0]), (3, [0, 3, 6]), (1, list(range(7)))])
def test_collector_holds_each_matrix_for_sde_sample_freq_steps(freq, draws_at):
    env = pendulum_vec()
    policy = sde_policy(env)
    drawn = []
    draw = policy.exploration_noise

    def recording(n):
        drawn.append(draw(n))
        return drawn[-1]

    policy.exploration_noise = recording
    collector = RolloutCollector(env, policy, 7, torch.device("cpu"), seed=0, sde_sample_freq=freq)
    for _ in range(2):
        start = len(drawn)
        ro = collector.collect()
        assert len(drawn) - start == len(draws_at)
        with torch.no_grad():
            (mean, _), _ = policy(ro.obs.reshape(-1, 3))
        noise = ro.actions.reshape(-1, 1) - mean
        features = actor_features(policy, ro.obs.reshape(-1, 3)).reshape(7, 3, 16)
        for t in range(7):
            matrix = drawn[start + max(k for k, s in enumerate(draws_at) if s <= t)]
            expected = torch.bmm(features[t].unsqueeze(1), matrix).reshape(3)
            torch.testing.assert_close(noise.reshape(7, 3)[t], expected, atol=1e-5, rtol=0)
    assert not torch.equal(drawn[0], drawn[len(draws_at)])  # a new rollout, new noise


def test_sde_settings_are_checked():
    with pytest.raises(ValueError, match="sde_sample_freq must be -1"):
        A2CConfig(sde_sample_freq=0)
    with pytest.raises(ValueError, match="use_sde must be true or false"):
        A2CConfig(use_sde=1)
    with pytest.raises(ValueError, match="use_sde needs a continuous"):
        A2C("MlpPolicy", "CartPole-v1", use_sde=True)
    with pytest.raises(ValueError, match="unknown policy_kwargs"):
        A2C("MlpPolicy", "Pendulum-v1", policy_kwargs={"use_sde": True})


def test_a2c_with_sde_trains_saves_and_loads(tmp_path):
    model = A2C(
        "MlpPolicy", "Pendulum-v1", n_envs=4, n_steps=8, use_sde=True, sde_sample_freq=4, seed=0
    )
    before = model.policy.log_std.detach().clone()
    model.learn(2_000)
    assert not torch.equal(model.policy.log_std.detach(), before)
    model.save(tmp_path / "sde.acrl")
    loaded = A2C.load(tmp_path / "sde.acrl")
    assert loaded.config.use_sde and loaded.policy.log_std.shape == (64, 1)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_a3c_workers_explore_with_sde():
    model = A3C(
        "MlpPolicy", "Pendulum-v1", n_workers=2, n_steps=8, use_sde=True, sde_sample_freq=4, seed=0
    )
    before = model.policy.log_std.detach().clone()
    model.learn(1_600)
    assert model.num_timesteps >= 1_600
    assert not torch.equal(model.policy.log_std.detach(), before)
