"""acrl export: the deterministic policy in ONNX (run by onnxruntime) and TorchScript acts as
predict(..., deterministic=True) does."""

import numpy as np
import onnxruntime
import pytest
import torch

import tests.action_envs  # noqa: F401  (registers the MultiDiscrete and MultiBinary envs)
import tests.image_envs  # noqa: F401  (registers the pixel envs)
from acrl import A2C
from acrl.algorithms.registry import load_model
from acrl.run.export import export_policy
from tests.test_cli import acrl, assert_user_error

SMALL_CNN = {"features_extractor_kwargs": {"features_dim": 16}}
CASES = {
    "discrete": ("MlpPolicy", "CartPole-v1", {}),
    "continuous, normalized": ("MlpPolicy", "Pendulum-v1", {"normalize_obs": True}),
    "gSDE": ("MlpPolicy", "Pendulum-v1", {"use_sde": True}),
    "action scaling": ("MlpPolicy", "Pendulum-v1", {"policy_kwargs": {"action_scaling": True}}),
    "multidiscrete": ("MlpPolicy", "acrl-tests/MultiDiscreteTarget-v0", {}),
    "multibinary": ("MlpPolicy", "acrl-tests/MultiBinaryPattern-v0", {}),
    "image": ("CnnPolicy", "acrl-tests/PixelSide-v0", {"policy_kwargs": SMALL_CNN}),
    "bool image": ("CnnPolicy", "acrl-tests/PixelSideBool-v0", {"policy_kwargs": SMALL_CNN}),
    "lstm": ("MlpLstmPolicy", "CartPole-v1", {}),
    "gru, normalized": (
        "MlpPolicy",
        "Pendulum-v1",
        {"normalize_obs": True, "policy_kwargs": {"recurrent": "gru"}},
    ),
}


def trained(case):
    policy, env_id, kwargs = CASES[case]
    model = A2C(policy, env_id, n_envs=2, n_steps=5, seed=0, **kwargs)
    model.learn(200)  # moved weights and, where asked, normalization statistics
    return model


def observations(model, n=64):
    return np.stack([model.observation_space.sample() for _ in range(n)])


def assert_same_actions(ours, expected):
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)  # kernels' rounding
    else:
        assert np.array_equal(ours, expected)


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_and_torchscript_act_as_predict(case, tmp_path):
    model = trained(case)
    model.observation_space.seed(1)
    session = onnxruntime.InferenceSession(str(export_policy(model, tmp_path / "p.onnx", "onnx")))
    scripted = torch.jit.load(str(export_policy(model, tmp_path / "p.pt", "torchscript")))
    assert model.policy.training and model.params.check_views()  # the model is untouched
    obs = observations(model)
    feeds = {"obs": obs}
    state = None
    for _ in range(3):  # a recurrent policy: three steps, the state carried by the caller
        expected, expected_state = model.predict(obs, state=state, deterministic=True)
        if model.policy.recurrent:
            feeds["state"] = (
                np.zeros((len(obs), model.policy.state_size), np.float32)
                if state is None
                else state
            )
        outputs = session.run(None, feeds)
        assert_same_actions(outputs[0], expected)
        with torch.no_grad():
            args = [torch.as_tensor(v) for v in feeds.values()]
            result = scripted(*args)
        scripted_actions = result[0] if model.policy.recurrent else result
        assert_same_actions(scripted_actions.numpy(), expected)
        if not model.policy.recurrent:
            break
        np.testing.assert_allclose(outputs[1], expected_state, rtol=1e-5, atol=1e-6)
        state = expected_state
        obs = observations(model)
        feeds["obs"] = obs


def test_cli_exports_a_run_and_refuses_what_it_cannot(tmp_path):
    run_dir = tmp_path / "run"
    result = acrl(
        "train", "CartPole-v1", "--timesteps", "500", "--run-dir", run_dir, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    result = acrl("export", run_dir)
    assert result.returncode == 0, result.stderr
    assert "(obs) -> (action), deterministic" in result.stdout
    model = load_model(run_dir)
    obs = observations(model, 16).astype(np.float32)
    session = onnxruntime.InferenceSession(str(run_dir / "policy.onnx"))
    assert np.array_equal(
        session.run(None, {"obs": obs})[0], model.predict(obs, deterministic=True)[0]
    )
    assert_user_error(acrl("export", run_dir, "--format", "tflite"), "--format must be one of")
    dict_model = A2C("MultiInputPolicy", "tests.image_envs:acrl-tests/PixelDict-v0", n_envs=1)
    dict_model.save(tmp_path / "dict.acrl")
    assert_user_error(
        acrl("export", tmp_path / "dict.acrl"),
        "acrl export takes Box observations",
    )
    assert not (tmp_path / "policy.onnx").exists()
