"""One parameter vector: same gradients, same clipping, same optimizer steps as per-layer; the
built-in CNNs' convolution weights channels-last in it, computing what the plain layout does."""

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

import tests.image_envs  # noqa: F401  (registers the envs)
from acrl import A2C
from acrl.config.policy import PolicyConfig
from acrl.model.extractors import SmallCNN
from acrl.model.flat_params import FlatParameters, clip_grad_norm
from acrl.model.policy import ActorCritic
from acrl.run.model_file import read_model, write_model
from tests.user_extractors import TinyCNN

OBS = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
SIDE = "acrl-tests/PixelSide-v0"  # 12x12x3 images (tests.image_envs)


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


# ---- convolutions channels-last -------------------------------------------------------------
MINATAR = spaces.Box(0, 1, (10, 10, 4), dtype=bool)  # stored (H, W, C)
FRAMES = spaces.Box(0, 255, (4, 36, 36), dtype=np.uint8)  # stacked frames, stored (C, H, W)
CNN_CASES = [(MINATAR, "SmallCNN"), (FRAMES, "NatureCNN")]


def cnn_policy(space, cnn, share=True):
    torch.manual_seed(0)
    config = PolicyConfig.from_kwargs(
        {"features_extractor_class": cnn, "share_features_extractor": share}
    )
    return ActorCritic(space, spaces.Discrete(3), config)


def pixel_rows(space, n, seed=0):
    high = 2 if space.dtype == bool else 256
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (n, int(np.prod(space.shape))), generator=generator).to(
        torch.uint8
    )


def cnn_loss(policy, rows):
    actions = torch.arange(rows.shape[0]) % 3
    log_prob, entropy, values = policy.evaluate_actions(rows, actions)
    return log_prob.sum() + 0.01 * entropy.sum() + (values - 1.0).pow(2).mean()


@pytest.mark.parametrize("space, cnn", CNN_CASES, ids=["SmallCNN", "NatureCNN"])
def test_conv_weights_are_channels_last_views_with_their_values(space, cnn):
    policy = cnn_policy(space, cnn, share=False)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    flat = FlatParameters(policy)
    convs = [n for n, p in policy.named_parameters() if p.dim() == 4]
    assert len(convs) == {"SmallCNN": 2, "NatureCNN": 6}[cnn]  # actor's and critic's CNNs
    for name, p in policy.named_parameters():
        assert torch.equal(p, before[name]), name  # the same numbers, only their order moved
        if name in convs:
            assert p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            assert p.grad.stride() == p.stride()
        else:
            assert p.is_contiguous()
    cnn_loss(policy, pixel_rows(space, 5)).backward()  # AccumulateGrad adds in place
    assert flat.check_views() and float(flat.grad.abs().sum()) > 0
    for name in convs:
        p = policy.get_parameter(name)
        assert p.grad.is_contiguous(memory_format=torch.channels_last)
    # logical order: every parameter's values as torch.cat of their reshapes (what files hold)
    logical = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    assert not torch.equal(logical, flat.vector.detach())
    assert torch.equal(flat.logical(flat.vector.detach()), logical)
    assert torch.equal(flat.from_logical(logical), flat.vector.detach())


@pytest.mark.parametrize("space, cnn", CNN_CASES, ids=["SmallCNN", "NatureCNN"])
def test_the_vector_round_trips_through_the_state_dict_and_a_model_file(space, cnn, tmp_path):
    policy = cnn_policy(space, cnn)
    flat = FlatParameters(policy)
    with torch.no_grad():
        flat.vector.copy_(torch.randn(flat.vector.shape))
    state = policy.state_dict()
    assert any(v.is_contiguous(memory_format=torch.channels_last) for v in state.values())
    write_model(tmp_path / "policy.acrl", state, {})  # raw bytes in logical order
    tensors, _ = read_model(tmp_path / "policy.acrl")
    assert all(torch.equal(tensors[k], v) for k, v in state.items())
    other = cnn_policy(space, cnn)
    other_flat = FlatParameters(other)
    assert not torch.equal(other_flat.vector, flat.vector)
    other.load_state_dict(tensors)
    assert torch.equal(other_flat.vector, flat.vector) and other_flat.check_views()
    for a, b in zip(other.parameters(), policy.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("space, cnn", CNN_CASES, ids=["SmallCNN", "NatureCNN"])
def test_channels_last_computes_what_the_contiguous_layout_computes(space, cnn):
    """The policy as acrl trains it (channels-last weights and images) against an unflattened
    copy fed contiguous images: the same outputs and gradients up to summation order."""
    policy = cnn_policy(space, cnn)
    reference = copy.deepcopy(policy)
    for pixels in reference.encoder.pixels:
        pixels.memory_format = torch.contiguous_format
    flat = FlatParameters(policy)
    rows = pixel_rows(space, 16, seed=1)
    images = policy.encoder.pixels[0](rows[:, policy.encoder.image_columns[0][0] :])
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert reference.encoder.pixels[0](rows).is_contiguous()
    for a, b in zip(policy(rows), reference(rows), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    cnn_loss(policy, rows).backward()
    cnn_loss(reference, rows).backward()
    assert flat.check_views()
    for (name, a), b in zip(policy.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5, msg=name)


def test_a_user_extractors_convolutions_keep_their_layout():
    """Channels-last weights make channels-last outputs, which a user's ``view`` may refuse."""
    config = PolicyConfig.from_kwargs(
        {"features_extractor_class": TinyCNN, "features_extractor_kwargs": {"features_dim": 8}}
    )
    policy = ActorCritic(spaces.Box(0, 255, (3, 12, 12), np.uint8), spaces.Discrete(2), config)
    flat = FlatParameters(policy)
    assert all(p.is_contiguous() for p in policy.parameters())
    assert torch.equal(flat.logical(flat.vector.detach()), flat.vector.detach())


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_a_cnn_models_file_holds_the_optimizer_state_in_logical_order(backend, tmp_path):
    """Files keep every parameter's numbers (weights and the optimizer's moments) in logical
    order, whatever the layout in memory; a loaded model has the saved one's vector and
    optimizer state exactly, and trains on."""
    kwargs = {"features_extractor_kwargs": {"features_dim": 16}}
    model = A2C("CnnPolicy", SIDE, n_envs=2, seed=0, backend=backend, policy_kwargs=kwargs)
    model.learn(50)
    state = model.optimizer.state
    tensors, _ = read_model(model.save(tmp_path / "model"))
    saved = tensors["optimizer.0.square_avg"]
    assert not torch.equal(saved, state["square_avg"])  # the two orders differ
    assert torch.equal(saved, model.params.logical(state["square_avg"]))
    loaded = A2C.load(tmp_path / "model.acrl")
    loaded_state = loaded.optimizer.state
    assert torch.equal(loaded_state["square_avg"], state["square_avg"])
    assert torch.equal(loaded.params.vector, model.params.vector) and loaded.params.check_views()
    loaded.set_env(SIDE)
    loaded.learn(50)
    assert loaded.params.check_views() and torch.isfinite(loaded.params.vector).all()


def test_a_users_subclass_of_a_builtin_cnn_keeps_its_layout():
    """Only acrl's own classes go channels-last: a subclass has a forward of the user's, which
    may ``view`` outputs that channels-last weights would make channels-last."""

    class Mine(SmallCNN):
        pass

    module = nn.Sequential(Mine(4, 10, 10), SmallCNN(4, 10, 10))
    FlatParameters(module)
    theirs, ours = module[0].cnn[0].weight, module[1].cnn[0].weight
    assert theirs.is_contiguous() and not ours.is_contiguous()
    assert ours.is_contiguous(memory_format=torch.channels_last)
