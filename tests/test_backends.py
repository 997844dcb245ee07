"""The compute backends: NumPy computes what torch computes, and one function picks them."""

import dataclasses
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from acrl import A2C
from acrl.config import PolicyConfig
from acrl.learner.backends import NUMPY_MAX_BATCH, choose_compute, make_backend
from acrl.learner.backends.numpy_cnn import NumpyCNN
from acrl.learner.backends.numpy_gradient import NumpyBackend
from acrl.learner.backends.torch_backend import TorchBackend
from acrl.learner.losses import a2c_loss, evaluate_rollout, explained_variance, rollout_targets
from acrl.learner.update import compute_gradients
from acrl.model.flat_params import FlatParameters, clip_grad_norm
from acrl.model.normalization import value_scale
from acrl.model.policy import ActorCritic

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
    ("Pendulum-v1", {"use_sde": True, "policy_kwargs": {"log_std_init": -1.0}}),
    ("Pendulum-v1", {"normalize_value_targets": True, "gae_lambda": 0.95}),
    # observations other than a Box: one-hot indices, bits and Box values (normalized)
    ("Taxi-v4", {"gae_lambda": 0.95}),
    ("Blackjack-v1", {}),  # a Tuple of Discretes
    ("tests.observation_envs:acrl-tests/NestedTuple-v0", {"normalize_obs": True}),
    # MultiDiscrete and MultiBinary heads
    ("tests.action_envs:acrl-tests/MultiDiscreteTarget-v0", {}),
    ("tests.action_envs:acrl-tests/MultiBinaryPattern-v0", {"normalize_advantage": True}),
    (
        "Pendulum-v1",
        {
            "use_sde": True,
            "sde_sample_freq": 2,
            "policy_kwargs": {"net_arch": {"pi": [16], "vf": [8]}},
        },
    ),
    # images: SmallCNN on MinAtar's bool frames (channels last), on channels-first and on
    # stacked frames, with a trunk after it; NatureCNN's three strided convolutions; a Dict
    # of an image and a (normalized) vector; a Dict of every kind of part (a grey image,
    # stacked channels-first frames, Box, bits, an index), pixels unscaled
    ("MinAtar/Breakout-v1", {"policy": "CnnPolicy", "policy_kwargs": {"image_channels": "last"}}),
    (
        "tests.image_envs:acrl-tests/PixelSideCHW-v0",
        {"policy": "CnnPolicy", "policy_kwargs": {"net_arch": [16]}, "normalize_advantage": True},
    ),
    (
        "tests.image_envs:acrl-tests/PixelSide-v0",
        {"policy": "CnnPolicy", "frame_stack": 2, "policy_kwargs": {"net_arch": [8, 8]}},
    ),
    ("nature", {"policy": "CnnPolicy", "policy_kwargs": {"shared_trunk": True}}),
    (
        "tests.image_envs:acrl-tests/PixelMixed-v0",
        {
            "policy": "MultiInputPolicy",
            "normalize_obs": True,
            "policy_kwargs": {
                "normalize_images": False,
                "features_extractor_kwargs": {"features_dim": 16},
            },
        },
    ),
    (
        "tests.image_envs:acrl-tests/PixelDict-v0",
        {
            "policy": "MultiInputPolicy",
            "normalize_obs": True,
            "policy_kwargs": {"net_arch": {"pi": [8], "vf": [4]}},
        },
    ),
]


def nature_envs(n):
    """Noise frames of Atari's stacked shape, smaller: NatureCNN's smallest (36x36) and up."""
    from gymnasium.vector import SyncVectorEnv

    from tests.image_envs import NoiseImageEnv

    return SyncVectorEnv([lambda: NoiseImageEnv((4, 40, 44)) for _ in range(n)])


def trained_rollout(env_id, policy="MlpPolicy", **kwargs):
    """A model a few updates into training and a fresh rollout of it, one transition masked."""
    if env_id == "nature":
        model = A2C(policy, nature_envs(4), n_steps=6, seed=3, device="cpu", **kwargs)
    else:
        model = A2C(policy, env_id, n_envs=4, n_steps=6, seed=3, device="cpu", **kwargs)
    model.learn(480)
    rollout = model._engine.collector.collect()
    rollout.valid[2, 1] = 0.0  # as after an episode's end in NEXT_STEP autoreset mode
    return model, rollout


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS, ids=lambda c: str(c))
def test_numpy_gradient_and_loss_terms_equal_torch_autograd(env_id, kwargs):
    model, rollout = trained_rollout(env_id, backend="numpy", **kwargs)
    config = dataclasses.replace(model.config, ent_coef=0.01)
    fast = model._engine.backend  # a CNN's: the update reuses the passes acting made
    assert isinstance(fast, NumpyBackend)
    model.params.grad.fill_(7.0)  # overwritten, not accumulated into
    terms = fast.gradients(rollout, config)  # sets the rollout's values
    numpy_grad = model.params.grad.clone()

    # the reference: torch's forward pass and autograd on the same rollout
    model.params.zero_grad()
    log_prob, entropy, values, _ = evaluate_rollout(model.policy, rollout)
    with torch.no_grad():
        last_values = model.policy.value(rollout.next_obs)
    torch.testing.assert_close(rollout.values.reshape(-1), values.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rollout.next_values[-1], last_values, rtol=1e-5, atol=1e-5)
    scale = value_scale(model.policy.normalization)
    assert (scale != 1.0) == config.normalize_value_targets
    targets = rollout_targets(
        rollout, config.gamma, config.gae_lambda, config.normalize_advantage, scale
    )
    reference = a2c_loss(log_prob, entropy, values, targets, config.ent_coef, config.vf_coef)
    reference.loss.backward()
    expected = model.params.grad

    scale = expected.abs().max().item()
    assert scale > 0.01
    torch.testing.assert_close(numpy_grad, expected, rtol=1e-4, atol=1e-5 * scale)
    for name in ("loss", "policy_loss", "value_loss", "entropy"):
        torch.testing.assert_close(
            getattr(terms, name), getattr(reference, name).detach(), rtol=1e-5, atol=1e-6
        )
    torch.testing.assert_close(
        terms.explained_variance,
        explained_variance(values.detach(), targets.returns, targets.mask),
        rtol=1e-4,
        atol=1e-5,
    )


IMAGE_CONFIGS = [c for c in CONFIGS if c[1].get("policy") in ("CnnPolicy", "MultiInputPolicy")]


def counted_cnn_passes(monkeypatch):
    """A list that grows by one at every NumpyCNN forward pass."""
    calls = []
    forward = NumpyCNN.forward

    def counted(self, pixels, keep=False):
        calls.append(len(pixels))
        return forward(self, pixels, keep)

    monkeypatch.setattr(NumpyCNN, "forward", counted)
    return calls


@pytest.mark.parametrize(("env_id", "kwargs"), IMAGE_CONFIGS, ids=lambda c: str(c))
def test_the_update_reuses_the_acting_cnn_passes_and_computes_what_a_fresh_pass_does(
    env_id, kwargs, monkeypatch
):
    model, rollout = trained_rollout(env_id, backend="numpy", **kwargs)  # acting recorded
    backend = model._engine.backend
    n_cnns = len(backend.forward.cnns)
    calls = counted_cnn_passes(monkeypatch)
    backend.gradients(rollout, model.config)
    assert calls == [4] * n_cnns  # the last observations' values only: the rollout's reused
    reused = model.params.grad.clone()
    backend.gradients(rollout, model.config)  # the record is used up: a fresh pass
    assert calls == [4] * n_cnns + [24] * n_cnns + [4] * n_cnns
    # the same products over batches of 4 rows or 24: BLAS may round them differently
    scale = reused.abs().max().item()
    torch.testing.assert_close(model.params.grad, reused, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("change", ["weights", "observations"])
def test_acting_passes_are_not_reused_for_other_weights_or_observations(change, monkeypatch):
    kwargs = {"policy_kwargs": {"image_channels": "last"}}
    model, rollout = trained_rollout("MinAtar/Breakout-v1", "CnnPolicy", backend="numpy", **kwargs)
    if change == "weights":
        with torch.no_grad():
            model.params.vector[-1] += 1e-3  # one parameter, one bit would do
    else:
        rollout.obs[5, 3] = 1 - rollout.obs[5, 3]  # the last step's last env
    calls = counted_cnn_passes(monkeypatch)
    model._engine.backend.gradients(rollout, model.config)
    assert calls == [24, 4]  # the rollout's pass made afresh
    fresh = model.params.grad.clone()
    NumpyBackend(model.policy, model.params).gradients(rollout, model.config)
    assert torch.equal(model.params.grad, fresh)


def test_both_backends_give_the_same_update_and_statistics():
    model, rollout = trained_rollout("CartPole-v1")
    torch_backend = TorchBackend(model.policy, model.params)
    numpy_backend = NumpyBackend(model.policy, model.params)
    config = model.config
    with_torch = compute_gradients(torch_backend, model.params, rollout, config, 1e-3)
    expected = model.params.grad.clone()
    with_numpy = compute_gradients(numpy_backend, model.params, rollout, config, 1e-3)
    torch.testing.assert_close(model.params.grad, expected, rtol=1e-4, atol=1e-6)
    for a, b in zip(with_torch.as_floats(), with_numpy.as_floats(), strict=True):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


@pytest.mark.parametrize(
    "env_id",
    [
        "CartPole-v1",
        "Pendulum-v1",
        "Taxi-v4",
        "tests.action_envs:acrl-tests/MultiDiscreteTarget-v0",
        "tests.action_envs:acrl-tests/MultiBinaryPattern-v0",
        "MinAtar/Breakout-v1",
    ],
)
def test_both_backends_collect_the_same_rollout_from_the_same_seed(env_id):
    def rollouts(backend):
        model = A2C("auto", env_id, n_envs=3, n_steps=7, seed=5, backend=backend)
        model.learn(21 * 4)
        collector = model._engine.collector
        return [{k: v.clone() for k, v in vars(collector.collect()).items()} for _ in range(3)]

    for ours, theirs in zip(rollouts("numpy"), rollouts("torch"), strict=True):
        for name in ours:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-4)


def test_auto_picks_numpy_for_small_cpu_mlps_and_says_why():
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, device="cpu")
    assert model.compute.backend == "numpy" and model.compute.threads == 1
    assert "auto" in model.compute.reason
    assert model.compute.describe().startswith("numpy backend, 1 torch thread (auto: ")
    assert not model.compute.keep_memory  # an MLP's blocks are small
    model.learn(40)
    assert isinstance(model._engine.backend, NumpyBackend)


@pytest.mark.parametrize(
    ("kwargs", "gap"),
    [
        ({"policy_kwargs": {"layer_norm": True}}, "layer_norm"),
        ({"policy_kwargs": {"activation_fn": "silu"}}, "the silu activation"),
    ],
)
def test_numpy_refuses_what_it_does_not_cover_and_auto_falls_back_saying_why(kwargs, gap):
    with pytest.raises(ValueError, match=f"backend 'numpy' does not cover this model: {gap}"):
        A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, backend="numpy", **kwargs)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, **kwargs)
    assert model.compute.backend == "torch" and gap in model.compute.reason
    model.learn(40)
    assert isinstance(model._engine.backend, TorchBackend)


def test_large_batches_go_to_torch_with_its_own_threads_unless_asked():
    at_the_limit = A2C("MlpPolicy", "CartPole-v1", n_envs=NUMPY_MAX_BATCH // 4, n_steps=4)
    assert at_the_limit.compute.backend == "numpy" and at_the_limit.compute.threads == 1
    n_envs = NUMPY_MAX_BATCH // 4 + 1
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, n_steps=4, seed=0)
    assert model.compute.backend == "torch" and model.compute.threads is None
    assert f"{n_envs * 4:,} transitions per update" in model.compute.reason
    forced = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, n_steps=4, backend="numpy", threads=2)
    assert (forced.compute.backend, forced.compute.threads) == ("numpy", 2)
    assert forced.compute.reason == "asked for"


def test_threads_are_set_while_learning_and_restored_after(monkeypatch):
    seen = []
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, threads=2)
    model.learn(40, callback=lambda m: seen.append(torch.get_num_threads()))
    assert set(seen) == {2} and torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 1"):
        A2C("MlpPolicy", "CartPole-v1", threads=0)


def test_a_parameter_the_numpy_gradient_does_not_know_is_refused():
    env = A2C("MlpPolicy", "CartPole-v1", n_envs=1).env
    policy = ActorCritic(env.single_observation_space, env.single_action_space, PolicyConfig())
    policy.temperature = nn.Parameter(torch.ones(1))  # a part NumPy's backward never writes
    params = FlatParameters(policy)
    assert choose_compute("numpy", policy, 40).backend == "numpy"  # covered, by its parts
    with pytest.raises(RuntimeError, match=r"does not write \['temperature'\]"):
        make_backend("numpy", policy, params)


def test_a_gradient_left_unwritten_is_caught_at_construction(monkeypatch):
    backward = NumpyBackend._trunk_backward

    def forgets_the_first_layer(self, acts, d_actor, d_critic):
        grads, d_features = backward(self, acts, d_actor, d_critic)
        return [np.full_like(grads[0], np.nan), *grads[1:]], d_features  # as if never written

    monkeypatch.setattr(NumpyBackend, "_trunk_backward", forgets_the_first_layer)
    with pytest.raises(RuntimeError, match="left trunk.weights.0 unwritten"):
        A2C("MlpPolicy", "CartPole-v1", n_envs=2, backend="numpy").learn(10)


def test_the_choice_is_saved_with_the_model(tmp_path):
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, backend="torch")
    path = model.save(tmp_path / "m.acrl")
    loaded = A2C.load(path)
    assert loaded.config.backend == "torch" and loaded.compute.backend == "torch"
    from acrl.run.model_file import read_model

    assert read_model(path)[1]["compute"] == {
        "backend": "torch",
        "threads": 1,
        "reason": "asked for",
        "keep_memory": False,
    }


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


FAULTS_OF_PIXEL_BATCHES = """
import resource, sys
import torch
from acrl.learner.backends import allocator
if sys.argv[1] == "keep":
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory()  # idempotent
else:  # every block over 128 KiB mapped afresh and handed back: what the defaults often do
    mallopt = allocator._mallopt()
    assert mallopt(allocator.M_MMAP_THRESHOLD, 2**17) and mallopt(allocator.M_TRIM_THRESHOLD, 2**17)
batches = [torch.zeros((16, 4, 84, 84), dtype=torch.uint8)] * 5
batches.append(torch.zeros((80, 4, 84, 84), dtype=torch.uint8))  # an update's 80 frames
def rounds(n):
    for _ in range(n):
        for frames in batches:  # as a CNN's acting steps and update see them
            frames.to(torch.float32) * (1 / 255)
rounds(5)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_kept_freed_memory_is_not_faulted_in_again_for_every_batch():
    def faults(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", FAULTS_OF_PIXEL_BATCHES, mode],
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC"))},
        )
        return int(done.stdout)

    handed_back = faults("hand-back")
    if handed_back < 10_000:  # e.g. transparent huge pages for every mapping: few, large faults
        pytest.skip(f"memory handed back faults in again only {handed_back} times here")
    # Kept: none on an idle machine (67,875 against 0 here); a loaded one may fault a few
    # shared-library pages in again (1,764 once in CI), nothing like every batch's memory.
    assert faults("keep") < handed_back / 10


def test_keeping_freed_memory_is_glibc_s_alone(monkeypatch):
    from acrl.learner.backends import allocator

    class Musl:  # mallopt (a no-op there) but not glibc's own functions
        mallopt = staticmethod(lambda option, value: 0)

    def without_glibc(platform_name: str, library: object) -> bool:
        forget(allocator)
        monkeypatch.setattr(sys, "platform", platform_name)
        monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: library)
        try:
            return allocator.available() or allocator.keep_freed_memory()
        finally:
            monkeypatch.undo()
            forget(allocator)

    assert without_glibc("darwin", None) is False
    assert without_glibc("linux", Musl()) is False


@pytest.mark.parametrize(
    ("name", "value"),
    [("MALLOC_TRIM_THRESHOLD_", "0"), ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4096")],
)
def test_a_user_s_own_malloc_settings_are_left_alone(monkeypatch, name, value):
    from acrl.learner.backends import allocator

    forget(allocator)
    monkeypatch.setenv(name, value)
    try:
        assert not allocator.available() and not allocator.keep_freed_memory()
    finally:
        forget(allocator)


def forget(allocator) -> None:
    """The allocator module's answers forgotten: the next call asks again (the thresholds
    themselves stay as this process set them)."""
    allocator.available.cache_clear()
    allocator.keep_freed_memory.cache_clear()
