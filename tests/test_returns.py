"""Returns and GAE against a brute-force per-episode reference and hand-computed values."""

import itertools

import pytest
import torch

from acrl.model.returns import compute_gae, compute_nstep_returns


def brute_force_gae(rewards, values, next_values, terminated, done, gamma, lam):
    """A_t = sum_l (gamma*lam)^l delta_{t+l}, summed to the episode's end or the rollout's."""
    T, N = rewards.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[k, i] else gamma * next_values[k, i]
                delta = rewards[k, i] + bootstrap - values[k, i]
                total += weight * delta
                if done[k, i]:
                    break
                weight *= gamma * lam
            adv[t, i] = total
    return adv


def brute_force_returns(rewards, next_values, terminated, done, gamma):
    """R_t = sum of discounted rewards to the episode or rollout end, plus the bootstrap."""
    T, N = rewards.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                total += discount * rewards[k, i]
                discount *= gamma
                if done[k, i] or k == T - 1:
                    if not terminated[k, i]:
                        total += discount * next_values[k, i]
                    break
            out[t, i] = total
    return out


def random_rollout(T=12, N=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, N, generator=g, dtype=torch.float64)
    values = torch.randn(T, N, generator=g, dtype=torch.float64)
    next_values = torch.randn(T, N, generator=g, dtype=torch.float64)
    u = torch.rand(T, N, generator=g)
    terminated = u < 0.15
    truncated = (u >= 0.15) & (u < 0.3)
    # Make sure both kinds of ending occur mid-rollout and at its last step.
    terminated[3, 0], truncated[3, 0] = True, False
    truncated[5, 1], terminated[5, 1] = True, False
    terminated[T - 1, 2], truncated[T - 1, 3] = True, True
    terminated[4, 4] = truncated[4, 4] = True  # both at once: termination wins
    done = terminated | truncated
    # As the collector stores them: within an episode, the next value is the next step's value;
    # after a truncation it is the value of the final observation (random here).
    within = ~done[:-1]
    next_values[:-1][within] = values[1:][within]
    return rewards, values, next_values, terminated.double(), done.double()


@pytest.mark.parametrize("arrays", ["torch", "numpy"])
@pytest.mark.parametrize(
    "gamma,lam", list(itertools.product([0.9, 0.99, 1.0], [0.0, 0.5, 0.95, 1.0]))
)
def test_gae_matches_brute_force(gamma, lam, arrays):
    rewards, values, next_values, terminated, done = random_rollout()
    inputs = [rewards, values, next_values, terminated, done]
    if arrays == "numpy":  # the collector's host buffers on the CPU
        inputs = [x.numpy() for x in inputs]
    adv, returns = compute_gae(*inputs, gamma, lam)
    assert isinstance(adv, type(inputs[0])) and isinstance(returns, type(inputs[0]))
    adv, returns = torch.as_tensor(adv), torch.as_tensor(returns)
    expected = brute_force_gae(
        rewards, values, next_values, terminated.bool(), done.bool(), gamma, lam
    )
    torch.testing.assert_close(adv, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(returns, expected + values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.9, 0.99, 1.0])
def test_nstep_returns_match_brute_force_and_gae_lambda_one(gamma):
    rewards, values, next_values, terminated, done = random_rollout(seed=1)
    returns = compute_nstep_returns(rewards, next_values, terminated, done, gamma)
    expected = brute_force_returns(rewards, next_values, terminated.bool(), done.bool(), gamma)
    torch.testing.assert_close(returns, expected, rtol=1e-12, atol=1e-12)
    _, gae_returns = compute_gae(rewards, values, next_values, terminated, done, gamma, 1.0)
    torch.testing.assert_close(gae_returns, expected, rtol=1e-12, atol=1e-12)


def test_hand_computed_values():
    # One env, 4 steps: an episode terminates at t=1, the next is truncated at t=2
    # (final observation worth 10), then one step runs into the rollout's end (bootstrap 4).
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    values = torch.tensor([[0.5], [1.0], [2.0], [3.0]])
    next_values = torch.tensor([[1.0], [99.0], [10.0], [4.0]])
    terminated = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    done = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    gamma = 0.5
    returns = compute_nstep_returns(rewards, next_values, terminated, done, gamma)
    # t=3: 4 + 0.5*4 = 6; t=2: 3 + 0.5*10 = 8 (bootstrap from the final obs);
    # t=1: 2 (terminal, no bootstrap); t=0: 1 + 0.5*2 = 2.
    torch.testing.assert_close(returns, torch.tensor([[2.0], [2.0], [8.0], [6.0]]))
    adv, targets = compute_gae(rewards, values, next_values, terminated, done, gamma, 0.0)
    # lambda = 0: one-step TD errors.
    torch.testing.assert_close(adv, torch.tensor([[1.0], [1.0], [6.0], [3.0]]))
    torch.testing.assert_close(targets, torch.tensor([[1.5], [2.0], [8.0], [6.0]]))
    adv, _ = compute_gae(rewards, values, next_values, terminated, done, gamma, 0.5)
    # t=0: delta_0 + 0.25 * delta_1 = 1 + 0.25; nothing crosses an episode end.
    torch.testing.assert_close(adv, torch.tensor([[1.25], [1.0], [6.0], [3.0]]))


def test_functions_are_pure():
    rewards, values, next_values, terminated, done = random_rollout(seed=2)
    copies = [x.clone() for x in (rewards, values, next_values, terminated, done)]
    compute_gae(rewards, values, next_values, terminated, done, 0.99, 0.95)
    compute_gae(*(x.numpy() for x in (rewards, values, next_values, terminated, done)), 0.9, 0.9)
    compute_nstep_returns(rewards, next_values, terminated, done, 0.99)
    for a, b in zip(copies, (rewards, values, next_values, terminated, done), strict=True):
        assert torch.equal(a, b)
