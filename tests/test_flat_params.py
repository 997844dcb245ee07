"""One parameter vector: same gradients, same clipping, same optimizer steps as per-layer."""

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from acrl.model.flat_params import FlatParameters, clip_grad_norm
from acrl.model.policy import ActorCritic

OBS = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)


def loss(model, seed):
    torch.manual_seed(seed)
    params, values = model(torch.randn(16, 4))
    return params[0].pow(2).sum() + (values - 3.0).pow(2).mean() * 50.0


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
@pytest.mark.parametrize("optimizer_class", [torch.optim.RMSprop, torch.optim.Adam])
def test_flat_training_equals_per_layer_training(action_space, optimizer_class):
    torch.manual_seed(0)
    reference = ActorCritic(OBS, action_space)
    flat_model = copy.deepcopy(reference)
    flat = FlatParameters(flat_model)
    ref_opt = optimizer_class(reference.parameters(), lr=1e-2, eps=1e-5, foreach=True)
    flat_opt = optimizer_class([flat.vector], lr=1e-2, eps=1e-5, foreach=False)
    for step in range(5):
        ref_opt.zero_grad(set_to_none=True)
        loss(reference, step).backward()
        ref_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        ref_opt.step()
        flat.zero_grad()
        loss(flat_model, step).backward()
        norm = clip_grad_norm(flat.grad, 0.5)
        flat_opt.step()
        assert flat.check_views()
        torch.testing.assert_close(norm, ref_norm)
        assert float(norm) > 0.5  # the clipping was active
    for ours, theirs in zip(flat_model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)  # summation order


def test_parameters_and_gradients_are_views_of_the_vectors():
    model = ActorCritic(OBS, spaces.Discrete(2))
    before = [p.detach().clone() for p in model.parameters()]
    flat = FlatParameters(model)
    assert flat.vector.numel() == sum(p.numel() for p in before)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    loss(model, 0).backward()
    assert flat.check_views()
    assert float(flat.grad.abs().sum()) > 0
    with torch.no_grad():
        flat.vector.zero_()
    assert all(float(p.detach().abs().sum()) == 0 for p in model.parameters())
    flat.zero_grad()
    assert all(float(p.grad.abs().sum()) == 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)  # what breaks the views, and what the check reports
    assert not flat.check_views()


def test_clip_leaves_small_gradients_alone():
    grad = torch.tensor([0.3, 0.4])
    norm = clip_grad_norm(grad, 1.0)
    assert float(norm) == pytest.approx(0.5)
    assert torch.equal(grad, torch.tensor([0.3, 0.4]))
    big = torch.tensor([3.0, 4.0])
    clip_grad_norm(big, 1.0)
    torch.testing.assert_close(big, torch.tensor([0.6, 0.8]), rtol=1e-5, atol=1e-6)
