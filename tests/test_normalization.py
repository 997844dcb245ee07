"""Observation, reward and value-target normalization: statistics, persistence, evaluation,
A3C sharing."""

import numpy as np
import pytest
import torch

from acrl import A2C, A3C, evaluate_policy, make_vec_env
from acrl.learner.losses import rollout_targets
from acrl.learner.rollout import RolloutCollector
from acrl.learner.storage import Rollout
from acrl.model.normalization import Normalization, RunningMeanStd, value_scale
from tests.test_returns import brute_force_gae, random_rollout


def test_running_statistics_converge_to_the_stream_mean_and_variance():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[3.0, -2.0], scale=[0.5, 4.0], size=(n, 2)) for n in (1, 7, 64, 300)]
    rms = RunningMeanStd((2,))
    for batch in batches:
        rms.update(torch.from_numpy(batch))
    data = np.concatenate(batches)
    # Exactly the stream merged with the prior (count 1e-4, mean 0, var 1), in one go.
    c0, n, m, v = 1e-4, len(data), data.mean(0), data.var(0)
    total = c0 + n
    np.testing.assert_allclose(rms.mean.numpy(), n * m / total, rtol=1e-10)
    np.testing.assert_allclose(
        rms.var.numpy(), (c0 + n * v + m**2 * c0 * n / total) / total, rtol=1e-10
    )
    np.testing.assert_allclose(rms.var.numpy(), v, rtol=1e-4)  # i.e. the stream's variance
    assert rms.count.item() == pytest.approx(total)


def test_normalize_clip_and_scale():
    norm = Normalization(2, normalize_obs=True, normalize_reward=True, clip=5.0)
    norm.obs_rms.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]], dtype=torch.float64))
    out = norm.normalize_obs(torch.tensor([[1.0, 20.0], [1.0, 1e6]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [0.0, 5.0]]), atol=1e-3, rtol=0)
    norm.ret_rms.update(torch.tensor([2.0, -2.0], dtype=torch.float64))
    torch.testing.assert_close(
        norm.scale_rewards(torch.tensor([4.0, 100.0])), torch.tensor([2.0, 5.0]), atol=1e-3, rtol=0
    )


def stats_of(model):
    return {
        k: v.clone() for k, v in model.policy.state_dict().items() if k.startswith("normalization")
    }


def normalized_model(**kwargs):
    return A2C(
        "MlpPolicy",
        "Pendulum-v1",
        n_envs=4,
        n_steps=8,
        seed=0,
        device="cpu",
        normalize_obs=True,
        normalize_reward=True,
        **kwargs,
    )


def test_training_updates_statistics_and_scales_rewards():
    model = normalized_model()
    model.learn(320)
    stats = stats_of(model)
    assert stats["normalization.obs_rms.count"].item() == pytest.approx(320 + 1e-4)
    assert stats["normalization.ret_rms.count"].item() == pytest.approx(320 + 1e-4)
    assert (stats["normalization.obs_rms.var"] != 1.0).all()
    # Training episodes are reported in raw rewards (Pendulum: about -1000 to -1500 at first).
    model.learn(800, reset_num_timesteps=False)
    assert min(r for r, _ in model.recent_episodes) < -500


def test_rollout_rewards_are_divided_by_the_return_std():
    model = normalized_model()
    env = make_vec_env("Pendulum-v1", 2, seed=0)
    collector = RolloutCollector(env, model.policy, 8, torch.device("cpu"), seed=0, gamma=0.9)
    raw = []
    original_step = env.step

    def recording_step(actions):
        out = original_step(actions)
        raw.append(out[1].copy())
        return out

    env.step = recording_step
    rollout = collector.collect()
    std = torch.sqrt(model.policy.normalization.ret_rms.var + 1e-8).float()
    expected = (torch.tensor(np.stack(raw), dtype=torch.float32) / std).clamp(-10, 10)
    torch.testing.assert_close(rollout.rewards, expected)


def test_saved_and_loaded_normalized_model_predicts_identically(tmp_path):
    model = normalized_model()
    model.learn(640)
    loaded = A2C.load(model.save(tmp_path / "norm"))
    for key, value in stats_of(model).items():
        assert torch.equal(value, stats_of(loaded)[key])
    obs = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    assert np.array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    # predict applies the statistics: the same network on raw observations acts differently.
    policy = model.policy
    normalization, policy.normalization = policy.normalization, None
    try:
        with torch.no_grad():
            expected = policy(normalization.normalize_obs(torch.from_numpy(obs)))[0][0]
            unnormalized = policy(torch.from_numpy(obs))[0][0]
    finally:
        policy.normalization = normalization
    assert not torch.allclose(expected, unnormalized)
    predicted = model.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(predicted, expected.clamp(-2, 2).numpy(), rtol=1e-6)


def test_evaluation_leaves_statistics_alone():
    model = normalized_model()
    model.learn(320)
    before = stats_of(model)
    evaluate_policy(model, make_vec_env("Pendulum-v1", 2, seed=3), n_eval_episodes=2)
    model.predict(np.zeros((5, 3), dtype=np.float32))
    for key, value in stats_of(model).items():
        assert torch.equal(value, before[key])


def test_a3c_workers_share_the_statistics():
    model = A3C(
        "MlpPolicy",
        "Pendulum-v1",
        n_workers=2,
        n_envs=2,
        n_steps=8,
        seed=0,
        normalize_obs=True,
        normalize_reward=True,
        normalize_value_targets=True,
    )
    model.learn(2_000)
    stats = stats_of(model)
    # Every worker's observations and returns reached the shared statistics. Returns count
    # valid steps only, not the reset step after an episode's end (next-step autoreset): at
    # most one in 201 of an env's steps, Pendulum's episodes being 200 steps long.
    obs_seen = stats["normalization.obs_rms.count"].item()
    returns_seen = stats["normalization.ret_rms.count"].item()
    assert obs_seen >= model.num_timesteps >= 2_000
    assert obs_seen - obs_seen / 201 <= returns_seen <= obs_seen
    # value targets too: those of every valid step, as the returns
    assert stats["normalization.value_rms.count"].item() == pytest.approx(returns_seen)


def test_ranks_merge_the_union_of_their_batches():
    """With a reduce (acrl.engines.torchrun sums over ranks), each rank's update merges the union
    of every rank's batch: the same statistics as one process that saw all of it."""
    gen = torch.Generator().manual_seed(0)
    mine = torch.randn(40, 3, generator=gen, dtype=torch.float64) * 2 + 1
    theirs = torch.randn(24, 3, generator=gen, dtype=torch.float64) - 3

    def sums(batch):
        return torch.cat([torch.tensor([float(batch.shape[0])]), batch.sum(0), (batch**2).sum(0)])

    ranked = RunningMeanStd((3,))
    ranked.reduce = lambda local: local + sums(theirs)
    alone = RunningMeanStd((3,))
    for _ in range(3):
        ranked.update(mine)
        alone.update(torch.cat([mine, theirs]))
    assert torch.allclose(ranked.mean, alone.mean, atol=1e-12)
    assert torch.allclose(ranked.var, alone.var, atol=1e-12)
    assert float(ranked.count) == pytest.approx(float(alone.count)) == 3 * 64 + 1e-4
    empty = RunningMeanStd((3,))
    empty.reduce = lambda local: local  # no rank saw anything: nothing changes
    empty.update(torch.zeros(0, 3))
    assert float(empty.count) == pytest.approx(1e-4)


def test_value_targets_are_brute_force_returns_in_the_critics_unit():
    """With value-target normalization the critic's values are in units of s: GAE runs on
    values * s, and the critic's targets are the returns / s."""
    rewards, values, next_values, terminated, done = random_rollout(seed=3)
    empty = torch.zeros(0)
    ones = torch.ones_like(rewards)
    rollout = Rollout(
        empty, empty, empty, rewards, values, next_values, terminated, done, ones,
        empty, empty, empty, empty,
    )  # fmt: skip
    s = 2.5
    targets = rollout_targets(rollout, 0.9, 0.95, normalize_advantage=False, value_scale=s)
    expected = brute_force_gae(rewards, values * s, next_values * s, terminated, done, 0.9, 0.95)
    torch.testing.assert_close(targets.advantages, expected.reshape(-1))
    torch.testing.assert_close(targets.returns, ((expected + values * s) / s).reshape(-1))
    assert targets.value_scale == s
    plain = rollout_targets(rollout, 0.9, 0.95, normalize_advantage=False)
    unscaled = brute_force_gae(rewards, values, next_values, terminated, done, 0.9, 0.95)
    torch.testing.assert_close(plain.returns, (unscaled + values).reshape(-1))


def test_value_target_statistics_are_the_returns_of_every_valid_step(tmp_path):
    model = A2C(
        "MlpPolicy", "Pendulum-v1", n_envs=2, n_steps=8, seed=0, gae_lambda=0.95,
        normalize_value_targets=True,
    )  # fmt: skip
    normalization = model.policy.normalization
    assert normalization.obs_rms is None and normalization.ret_rms is None
    assert value_scale(normalization) == pytest.approx(1.0)  # the prior: var 1
    model.learn(320)  # 160 steps an env: no episode ends (200 steps), every step valid
    assert normalization.value_rms.count.item() == pytest.approx(320 + 1e-4)
    # Pendulum's returns over ~20 steps of -1 to -16 rewards: a std of several units
    assert value_scale(normalization) > 3.0
    assert normalization.value_rms.mean.item() < -10.0
    loaded = A2C.load(model.save(tmp_path / "scaled"))
    assert loaded.config.normalize_value_targets
    for key, value in stats_of(model).items():
        assert torch.equal(value, stats_of(loaded)[key])
