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
