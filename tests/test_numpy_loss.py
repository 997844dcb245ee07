"""The hand-written NumPy loss and gradient against torch's loss and autograd."""

import math

import numpy as np
import pytest
import torch

from acrl import A2C
from acrl.a2c import compute_gradients
from acrl.flat_params import clip_grad_norm
from acrl.losses import explained_variance, rollout_loss, rollout_targets
from acrl.numpy_loss import MAX_BATCH, NumpyLoss

CONFIGS = [
    ("CartPole-v1", {}),
    ("CartPole-v1", {"policy_kwargs": {"activation_fn": "relu"}}),
    ("CartPole-v1", {"policy_kwargs": {"shared_trunk": True, "net_arch": [32, 16]}}),
    ("CartPole-v1", {"policy_kwargs": {"net_arch": {"pi": [32], "vf": [16, 8]}}}),
    ("CartPole-v1", {"policy_kwargs": {"net_arch": []}}),
    ("CartPole-v1", {"policy_kwargs": {"ortho_init": False}, "normalize_obs": True}),
    ("CartPole-v1", {"normalize_advantage": True, "gae_lambda": 0.9}),
    ("Acrobot-v1", {"gae_lambda": 0.95}),
    ("Pendulum-v1", {}),
    ("Pendulum-v1", {"policy_kwargs": {"log_std_init": -1.0, "activation_fn": "relu"}}),
    ("MountainCarContinuous-v0", {"normalize_advantage": True, "normalize_obs": True}),
]


def trained_rollout(env_id, **kwargs):
    """A model a few updates into training and a fresh rollout of it, one transition masked."""
    model = A2C("MlpPolicy", env_id, n_envs=4, n_steps=6, seed=3, device="cpu", **kwargs)
    model.learn(480)
    rollout = model._collector.collect()
    rollout.valid[2, 1] = 0.0  # as after an episode's end in NEXT_STEP autoreset mode
    return model, rollout


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS, ids=lambda c: str(c))
def test_gradient_and_loss_terms_equal_torch_autograd(env_id, kwargs):
    model, rollout = trained_rollout(env_id, **kwargs)
    config = model.config
    targets = rollout_targets(rollout, config.gamma, config.gae_lambda, config.normalize_advantage)
    model.params.zero_grad()
    reference = rollout_loss(model.policy, rollout, targets, ent_coef=0.01, vf_coef=0.5)
    reference.loss.backward()
    expected = model.params.grad.clone()

    fast = NumpyLoss.for_policy(model.policy)
    assert fast is not None
    model.params.grad.fill_(7.0)  # overwritten, not accumulated into
    terms = fast.rollout_gradients(rollout, targets, ent_coef=0.01, vf_coef=0.5)

    scale = expected.abs().max().item()
    assert scale > 0.01
    torch.testing.assert_close(model.params.grad, expected, rtol=1e-4, atol=1e-5 * scale)
    for name in ("loss", "policy_loss", "value_loss", "entropy"):
        torch.testing.assert_close(
            getattr(terms, name), getattr(reference, name).detach(), rtol=1e-5, atol=1e-6
        )
    values = rollout.values.reshape(-1)
    torch.testing.assert_close(
        terms.explained_variance,
        explained_variance(values, targets.returns, targets.mask),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy_kwargs": {"layer_norm": True}},
        {"policy_kwargs": {"activation_fn": "silu"}},
    ],
)
def test_policies_it_does_not_cover_keep_the_torch_loss(kwargs):
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, device="cpu", **kwargs)
    assert NumpyLoss.for_policy(model.policy) is None
    assert model._numpy_loss is None
    model.learn(200)  # and train through torch


def test_gsde_keeps_the_torch_loss():
    model = A2C("MlpPolicy", "Pendulum-v1", n_envs=2, seed=0, device="cpu", use_sde=True)
    assert NumpyLoss.for_policy(model.policy) is None


def test_the_default_cpu_model_uses_it():
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, device="cpu")
    assert model._numpy_loss is not None


def test_compute_gradients_gives_the_same_update_either_way():
    model, rollout = trained_rollout("CartPole-v1")
    fast = NumpyLoss.for_policy(model.policy)
    with_torch = compute_gradients(model.policy, model.params, rollout, model.config, 1e-3)
    expected = model.params.grad.clone()
    with_numpy = compute_gradients(
        model.policy, model.params, rollout, model.config, 1e-3, numpy_loss=fast
    )
    torch.testing.assert_close(model.params.grad, expected, rtol=1e-4, atol=1e-6)
    for a, b in zip(with_torch.as_floats(), with_numpy.as_floats(), strict=True):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def test_rollouts_over_max_batch_keep_the_torch_loss(monkeypatch):
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=MAX_BATCH // 4 + 1, n_steps=4, seed=0)
    rollout = model.learn(model.n_envs * 4)._collector.collect()

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy loss was used for a large batch")

    monkeypatch.setattr(NumpyLoss, "rollout_gradients", refuse)
    compute_gradients(
        model.policy, model.params, rollout, model.config, 1e-3, 1, None, model._numpy_loss
    )


def test_clip_grad_norm_in_numpy_matches_torch():
    grad = torch.linspace(-3.0, 5.0, 101)
    param = torch.zeros(101, requires_grad=True)
    param.grad = grad.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_([param], 0.5)
    torch.testing.assert_close(clip_grad_norm(grad, 0.5), expected_norm)
    torch.testing.assert_close(grad, param.grad)
    small = torch.full((4,), 0.1)
    assert clip_grad_norm(small, 10.0).item() == pytest.approx(0.2)
    assert torch.equal(small, torch.full((4,), 0.1))  # under the limit: untouched
    assert not torch.isfinite(clip_grad_norm(torch.tensor([1.0, np.nan]), 0.5))
