"""Several seeds in one command: sub-runs, summary.json and the aggregate plots."""

import json

import pytest

from tests.pngs import png_size
from tests.test_cli import acrl, assert_user_error


def test_seeds_in_parallel_write_runs_summary_and_plots(tmp_path):
    parent = tmp_path / "multi"
    result = acrl(
        "train", "CartPole-v1", "--seeds", "0,1", "--jobs", 2, "--timesteps", 4000,
        "--n-envs", 4, "--log-interval", 5, "--target", 30, "--run-dir", parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((parent / "summary.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [0, 1]
    assert summary["target"] == 30.0
    for s in summary["seeds"]:
        assert (parent / s["run_dir"] / "model.acrl").is_file()
        assert f"seed: {s['seed']}" in (parent / s["run_dir"] / "config.yaml").read_text()
        assert s["timesteps"] >= 4000
        assert s["steps_to_target"] is None or 0 < s["steps_to_target"] <= s["timesteps"]
    last = summary["seeds"][-1]  # its figure is what `acrl eval` says of its run
    eval_seed = 10_000 + last["seed"]
    check = acrl("eval", parent / last["run_dir"], "--episodes", 10, "--seed", eval_seed, "--json")
    assert json.loads(check.stdout)["mean"] == pytest.approx(last["eval_mean_return"])
    returns = [s["eval_mean_return"] for s in summary["seeds"]]
    assert summary["eval_mean_return"]["median"] == pytest.approx(sum(returns) / 2)
    assert summary["eval_mean_return"]["min"] == min(returns)
    assert png_size(parent / "learning_curve.png") == (900, 550)
    assert png_size(parent / "learning_curve-diagnostics.png") == (1600, 800)
    assert "across seeds" in result.stdout
    replot = acrl(
        "plot", parent, "--out", tmp_path / "again.png"
    )  # the parent stands for its seeds
    assert replot.returncode == 0, replot.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seeds", "0,0"], "distinct non-negative integers"),
        (["--seeds", "0,x"], "comma-separated integers"),
        (["--seeds", "0,1", "--seed", "1"], "either --seed or --seeds"),
        (["--jobs", "2"], "add --seeds"),
        (["--seeds", "0,1", "--jobs", "0"], "--jobs must be >= 1"),
        (["--seeds", "0,1", "--set", "gamma=2"], "gamma"),
        (["--video-every", "0"], "--video-every must be >= 1"),
    ],
)
def test_seed_mistakes_are_one_line_with_status_2(tmp_path, args, fragment):
    result = acrl("train", "CartPole-v1", "--run-dir", tmp_path / "r", *args)
    assert_user_error(result, fragment)
    assert not (tmp_path / "r").exists()
