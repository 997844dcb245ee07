"""Model files written by acrl 0.1 (tests/data) load, predict and train on as they did then."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from acrl import A2C

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "acrl_0_1_expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_acrl_0_1_model_predicts_and_trains_as_before(name):
    expected = EXPECTED[name]
    model = A2C.load(DATA / f"{name}.acrl", device="cpu")
    obs = torch.tensor(expected["obs"], dtype=torch.float32)
    with torch.no_grad():
        params, values = model.policy(obs)
    torch.testing.assert_close(params[0], torch.tensor(expected["head"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(values, torch.tensor(expected["values"]), rtol=1e-5, atol=1e-6)
    # One more update from the same random state: it used 0.1's per-layer optimizer state, so
    # a wrongly converted state (or parameter order) would move the parameters elsewhere.
    torch.manual_seed(123)
    model.learn(8, reset_num_timesteps=False)
    after = model.params.vector.detach()
    assert float(after.sum()) == pytest.approx(expected["param_sum_after"], rel=1e-4, abs=1e-4)
    assert float(after.abs().sum()) == pytest.approx(expected["param_abs_after"], rel=1e-5)
    assert np.isfinite(model.predict(np.asarray(expected["obs"][0], dtype=np.float32))[0]).all()


EXPECTED_0_2 = json.loads((DATA / "acrl_0_2_expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED_0_2))
def test_acrl_0_2_model_predicts_and_trains_as_before(name):
    """Files written before the package was split into layers (tests/data/acrl_0_2_*): the
    same parameters in the same order, the same numbers, the same next update."""
    from acrl.algorithms.registry import load_model

    expected = EXPECTED_0_2[name]
    model = load_model(DATA / f"{name}.acrl", device="cpu")
    assert model.algo == expected["algo"] and model.num_timesteps == expected["num_timesteps"]
    assert model.config.backend == "auto"  # the setting did not exist: the default
    obs = np.asarray(expected["obs"], dtype=np.float32)
    with torch.no_grad():
        params, values = model.policy(torch.from_numpy(obs))
    torch.testing.assert_close(params[0], torch.tensor(expected["head"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(values, torch.tensor(expected["values"]), rtol=1e-5, atol=1e-6)
    if "log_std" in expected:
        torch.testing.assert_close(
            params[1], torch.tensor(expected["log_std"]), rtol=1e-5, atol=1e-6
        )
    actions = model.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(actions, expected["deterministic"], rtol=1e-5, atol=1e-6)
    if model.algo == "a3c":
        assert model.runtime == "processes" and model.n_workers == 2  # saved as "backend"
        return
    torch.manual_seed(123)
    model.learn(model.n_envs * model.config.n_steps, reset_num_timesteps=False)
    after = model.params.vector.detach()
    assert float(after.sum()) == pytest.approx(expected["param_sum_after"], rel=1e-4, abs=1e-4)
    assert float(after.abs().sum()) == pytest.approx(expected["param_abs_after"], rel=1e-5)
