"""The vector optimizers: bitwise torch.optim's steps, torch's state_dict layout, no dynamo."""

import copy
import subprocess
import sys

import pytest
import torch

from acrl.learner.optim import Adam, RMSprop, RMSpropTFLike, optimizer_step

CASES = {
    "rmsprop": (RMSprop, torch.optim.RMSprop, {"alpha": 0.99, "eps": 1e-5}),
    "rmsprop alpha 0.9": (RMSprop, torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-3}),
    "rmsprop eps 1e-8": (RMSprop, torch.optim.RMSprop, {"alpha": 0.99, "eps": 1e-8}),
    "rmsprop eps 1e-12": (RMSprop, torch.optim.RMSprop, {"alpha": 0.99, "eps": 1e-12}),
    "adam": (Adam, torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-5}),
    "adam without momentum": (Adam, torch.optim.Adam, {"betas": (0.0, 0.99), "eps": 1e-5}),
    "adam eps 1e-8": (Adam, torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8}),
    "adam beta2 0.99999": (Adam, torch.optim.Adam, {"betas": (0.9, 0.99999), "eps": 1e-5}),
}
RATES = [7e-4, 5e-4, 1e-2, 3e-3, 0.0, 2e-4, 1e-3, 1e-3]


def gradients(n, size=257, seed=0):
    """Gradients of every magnitude: normal ones, tiny ones (denormal squares), and entries
    that are always zero (a weight behind a dead unit: its mean square stays 0)."""
    generator = torch.Generator().manual_seed(seed)
    grads = [torch.randn(size, generator=generator) * 10 ** (i % 3 - 1) for i in range(n)]
    for grad in grads:
        grad[:20] = 0.0
        grad[20:40] *= 1e-21
        grad[40:60] *= 1e-15
    return grads


@pytest.mark.parametrize("case", CASES)
def test_steps_are_bitwise_torch_optims(case):
    ours_class, torch_class, settings = CASES[case]
    start = torch.randn(257, generator=torch.Generator().manual_seed(1))
    ours_vector = start.clone().requires_grad_()
    theirs_vector = start.clone().requires_grad_()
    ours = ours_class(ours_vector, RATES[0], **settings)
    theirs = torch_class([theirs_vector], lr=RATES[0], foreach=False, **settings)
    for lr, grad in zip(RATES, gradients(len(RATES)), strict=True):
        ours_vector.grad, theirs_vector.grad = grad.clone(), grad.clone()
        optimizer_step(ours, lr)
        theirs.param_groups[0]["lr"] = lr
        theirs.step()
        assert torch.equal(ours_vector, theirs_vector)
    (torch_state,) = theirs.state.values()
    assert ours.state.keys() == torch_state.keys()
    assert all(torch.equal(ours.state[k], v) for k, v in torch_state.items())


@pytest.mark.parametrize("scale", [2.0, 0.25])
@pytest.mark.parametrize("case", ["rmsprop", "adam", "adam without momentum"])
def test_a_scaled_share_steps_as_torchs_optimizer_with_a_group_of_its_own(case, scale):
    """``lr_scale`` (critic_lr_scale on the critic's numbers, scattered through the vector)
    is torch's optimizer with those numbers in a parameter group at ``scale`` times the rate:
    the others' steps bitwise, the scaled ones' equal to rounding."""
    ours_class, torch_class, settings = CASES[case]
    start = torch.randn(257, generator=torch.Generator().manual_seed(1))
    scaled = torch.rand(257, generator=torch.Generator().manual_seed(2)) < 0.4
    ours_vector = start.clone().requires_grad_()
    ours = ours_class(ours_vector, RATES[0], **settings)
    ours.lr_scale = torch.where(scaled, scale, 1.0)
    plain = start[~scaled].clone().requires_grad_()
    critic = start[scaled].clone().requires_grad_()
    theirs = torch_class(
        [{"params": [plain]}, {"params": [critic]}], lr=RATES[0], foreach=False, **settings
    )
    for lr, grad in zip(RATES, gradients(len(RATES)), strict=True):
        ours_vector.grad = grad.clone()
        plain.grad, critic.grad = grad[~scaled].clone(), grad[scaled].clone()
        optimizer_step(ours, lr)
        theirs.param_groups[0]["lr"], theirs.param_groups[1]["lr"] = lr, lr * scale
        theirs.step()
        assert torch.equal(ours_vector[~scaled], plain)
        moved, theirs_moved = ours_vector[scaled] - start[scaled], critic - start[scaled]
        torch.testing.assert_close(moved, theirs_moved, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_a_torch_optimizers_state_dict_loads_and_resumes_identically(case):
    """Files written while acrl used torch.optim hold its state_dict: loaded, the next steps
    are the ones torch would have taken."""
    ours_class, torch_class, settings = CASES[case]
    theirs_vector = torch.zeros(257, requires_grad=True)
    theirs = torch_class([theirs_vector], lr=1e-3, foreach=False, **settings)
    grads = gradients(6, seed=3)
    for grad in grads[:3]:
        theirs_vector.grad = grad.clone()
        theirs.step()
    ours_vector = theirs_vector.detach().clone().requires_grad_()
    ours = ours_class(ours_vector, 0.5, **settings)
    ours.load_state_dict(theirs.state_dict())
    assert ours.lr == 1e-3
    for grad in grads[3:]:
        ours_vector.grad, theirs_vector.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
    assert torch.equal(ours_vector, theirs_vector)
    # and torch.optim reads ours (an older acrl resuming a newer file): the same next step
    torch_again = torch_class([theirs_vector], lr=0.5, foreach=False, **settings)
    torch_again.load_state_dict(copy.deepcopy(ours.state_dict()))  # a file's copy, not ours
    grad = gradients(1, seed=9)[0]
    ours_vector.grad, theirs_vector.grad = grad.clone(), grad.clone()
    ours.step()
    torch_again.step()
    assert torch.equal(ours_vector, theirs_vector)
    ours_vector.grad = None
    before = ours_vector.detach().clone()
    ours.step()  # no gradient: nothing moves, the step count stays
    assert torch.equal(ours_vector, before) and float(ours.state["step"]) == 7.0


def test_a_state_torch_never_made_leaves_the_state_fresh_and_other_states_are_refused():
    vector = torch.zeros(4, requires_grad=True)
    tf_like = RMSpropTFLike(vector, 0.1, eps=1e-5)
    torch_before_first_step = torch.optim.RMSprop([torch.zeros(4, requires_grad=True)], lr=0.2)
    tf_like.load_state_dict(torch_before_first_step.state_dict())
    assert tf_like.lr == 0.2 and tf_like.state["square_avg"].eq(1.0).all()
    adam = torch.optim.Adam([torch.zeros(4, requires_grad=True)], lr=0.2)
    adam.param_groups[0]["params"][0].grad = torch.ones(4)
    adam.step()
    with pytest.raises(ValueError, match=r"RMSpropTFLike keeps \['square_avg', 'step'\]"):
        tf_like.load_state_dict(adam.state_dict())
    with pytest.raises(RuntimeError):  # another vector's length
        RMSprop(torch.zeros(3), 0.1).load_state_dict(RMSprop(vector, 0.1).state_dict())
    with pytest.raises(ValueError, match="bad Adam settings"):
        Adam(vector, 0.1, betas=(1.0, 0.99))


def test_training_never_imports_torch_dynamo(tmp_path):
    """torch.optim.Optimizer imports torch._dynamo on first use (1.3 s of every process's
    start-up here): training, saving and loading do without it."""
    code = (
        "import sys\n"
        "from acrl import A2C\n"
        "model = A2C('MlpPolicy', 'CartPole-v1', n_envs=2, seed=0, use_rms_prop=False)\n"
        "model.learn(100)\n"
        "A2C.load(model.save(sys.argv[1]), env='CartPole-v1').learn(20)\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
