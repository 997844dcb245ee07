"""Rollout collection: both autoreset modes, no transition mixing episodes, truncation bootstrap."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from acrl.learner.losses import rollout_targets
from acrl.learner.rollout import RolloutCollector
from acrl.learner.storage import Rollout
from acrl.model.policy import ActorCritic
from tests.envs import CounterEnv

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]
LENGTHS = (3, 4, 1)


def counter_vec(mode, terminate=True):
    def make(length):
        if terminate:
            return lambda: CounterEnv(length, terminate=True)
        return lambda: gym.wrappers.TimeLimit(CounterEnv(length, terminate=False), length)

    return SyncVectorEnv([make(n) for n in LENGTHS], autoreset_mode=mode)


def value_of(policy, obs):
    with torch.no_grad():
        return policy.value(torch.tensor([obs], dtype=torch.float32))[0].item()


def with_values(policy, ro):
    """The rollout with the critic's values set, as the update's forward pass sets them."""
    T, N = ro.rewards.shape
    with torch.no_grad():
        values = policy.value(ro.obs.reshape(T * N, -1)).reshape(T, N)
        ro.set_values(values, policy.value(ro.next_obs))
    return ro


def collect(mode, terminate, n_rollouts=4, n_steps=5):
    torch.manual_seed(0)
    env = counter_vec(mode, terminate)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, n_steps, torch.device("cpu"), seed=0)
    rollouts = []
    for _ in range(n_rollouts):
        ro = with_values(policy, collector.collect())
        rollouts.append({k: v.clone() for k, v in vars(ro).items()})
    return policy, collector, rollouts


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("terminate", [True, False], ids=["terminated", "truncated"])
def test_valid_transitions_are_each_real_step_exactly_once(mode, terminate):
    _, _, rollouts = collect(mode, terminate)
    for i, length in enumerate(LENGTHS):
        seen = []
        for ro in rollouts:
            for t in range(ro["obs"].shape[0]):
                if ro["valid"][t, i]:
                    episode, step = ro["obs"][t, i].tolist()
                    seen.append((int(episode), int(step)))
                    # The reward belongs to the transition that starts from this observation.
                    assert ro["rewards"][t, i].item() == 1 + step + 10 * episode
                    assert bool(ro["done"][t, i]) == (step == length - 1)
                    assert bool(ro["terminated"][t, i]) == (terminate and step == length - 1)
        expected = [(e, s) for e in range(len(seen)) for s in range(length)][: len(seen)]
        assert seen == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("terminate", [True, False], ids=["terminated", "truncated"])
def test_next_values_are_values_of_the_true_next_observation(mode, terminate):
    policy, _, rollouts = collect(mode, terminate)
    for ro in rollouts:
        T, N = ro["valid"].shape
        for t in range(T):
            for i in range(N):
                if not ro["valid"][t, i] or ro["terminated"][t, i]:
                    continue
                episode, step = ro["obs"][t, i].tolist()
                # Within an episode and after a truncation alike, the next observation
                # is [episode, step + 1]: for a truncation, that is the final observation.
                expected = value_of(policy, [episode, step + 1])
                assert ro["next_values"][t, i].item() == pytest.approx(expected, abs=1e-5)


def test_next_step_mode_marks_reset_steps_invalid_across_rollouts():
    _, _, rollouts = collect(AutoresetMode.NEXT_STEP, terminate=True)
    previous_done = torch.zeros(len(LENGTHS))
    for ro in rollouts:
        for t in range(ro["valid"].shape[0]):
            assert torch.equal(ro["valid"][t], 1.0 - previous_done)
            previous_done = ro["done"][t]


def test_same_step_mode_has_no_invalid_steps():
    _, _, rollouts = collect(AutoresetMode.SAME_STEP, terminate=True)
    assert all(bool(ro["valid"].all()) for ro in rollouts)


@pytest.mark.parametrize("mode", MODES)
def test_episode_statistics(mode):
    _, collector, _ = collect(mode, terminate=True, n_rollouts=6)
    episodes = collector.episodes.drain()
    assert collector.episodes.total_episodes == len(episodes) > 0
    for _ret, length in episodes:
        assert length in LENGTHS
    # Env 0 (length 3): episode e returns sum_{s<3} (1 + s + 10 e).
    lengths3 = [r for r, n in episodes if n == 3]
    assert lengths3[:2] == [6.0, 36.0]


@pytest.mark.parametrize("mode", MODES)
def test_truncation_bootstraps_from_the_final_observation(mode):
    gamma = 0.9
    policy, _, rollouts = collect(mode, terminate=False, n_rollouts=3)
    checked = 0
    for ro in rollouts:
        targets = rollout_targets(Rollout(**ro), gamma, 1.0, normalize_advantage=False)
        returns = targets.returns.reshape(ro["rewards"].shape)
        T, N = returns.shape
        for t in range(T):
            for i in range(N):
                if ro["valid"][t, i] and ro["done"][t, i]:
                    episode, step = ro["obs"][t, i].tolist()
                    final = value_of(policy, [episode, step + 1])
                    expected = ro["rewards"][t, i].item() + gamma * final
                    assert returns[t, i].item() == pytest.approx(expected, abs=1e-4)
                    assert final != 0.0
                    checked += 1
    assert checked >= 5


def test_terminal_steps_do_not_bootstrap():
    policy, _, rollouts = collect(AutoresetMode.NEXT_STEP, terminate=True, n_rollouts=3)

    for ro in rollouts:
        targets = rollout_targets(Rollout(**ro), 0.9, 1.0, normalize_advantage=False)
        returns = targets.returns.reshape(ro["rewards"].shape)
        mask = ro["terminated"].bool() & ro["valid"].bool()
        assert mask.any()
        torch.testing.assert_close(returns[mask], ro["rewards"][mask])


@pytest.mark.parametrize("mode", MODES)
def test_terminated_and_truncated_on_the_same_step(mode):
    """An episode that terminates exactly at its time limit (CartPole falling at step 500)."""

    def make():
        return gym.wrappers.TimeLimit(CounterEnv(3, terminate=True), 3)

    env = SyncVectorEnv([make, make], autoreset_mode=mode)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, 7, torch.device("cpu"), seed=0)
    ro = with_values(policy, collector.collect())
    both = ro.terminated.bool() & ro.done.bool()
    assert both.any()
    targets = rollout_targets(ro, 0.9, 1.0, normalize_advantage=False)
    returns = targets.returns.reshape(ro.rewards.shape)
    torch.testing.assert_close(returns[both], ro.rewards[both])


def test_native_cartpole_vector_env_uses_next_step_and_lengths_add_up():
    from acrl.envs import autoreset_mode, make_vec_env

    env = make_vec_env("CartPole-v1", 4, seed=0)
    assert autoreset_mode(env) is AutoresetMode.NEXT_STEP
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, 16, torch.device("cpu"), seed=0)
    valid = 0
    for _ in range(20):
        valid += int(collector.collect().valid.sum())
    episodes = collector.episodes.drain()
    in_progress = int(collector.episodes.lengths.sum())
    assert sum(n for _, n in episodes) + in_progress == valid
    assert all(r == n for r, n in episodes)  # reward 1 per real step, 0 on reset steps
    assert np.all(collector.episodes.returns == collector.episodes.lengths)
