"""The command line as users call it, through subprocesses."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import wait_for_metrics_rows


def acrl(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "acrl", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    result = acrl(
        "train",
        "CartPole-v1",
        "--timesteps",
        3000,
        "--seed",
        1,
        "--n-envs",
        4,
        "--set",
        "learning_rate=1e-3",
        "--run-dir",
        run_dir,
        "--log-interval",
        10,
    )
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_train_writes_run_directory(trained_run):
    run_dir, result = trained_run
    assert (run_dir / "model.acrl").is_file()
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env_id"] == "CartPole-v1" and config["seed"] == 1 and config["n_envs"] == 4
    assert config["hyperparams"]["learning_rate"] == 1e-3
    assert config["preset"] == "CartPole-v1"
    header, *rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert header.split(",") == [
        "timesteps",
        "updates",
        "wall_time",
        "steps_per_second",
        "episodes",
        "ep_return_mean",
        "ep_length_mean",
        "policy_loss",
        "value_loss",
        "entropy",
        "grad_norm",
        "explained_variance",
        "learning_rate",
    ]
    assert len(rows) >= 3
    assert "steps/s" in result.stdout and "model saved" in result.stdout


def test_eval_prints_mean_and_json(trained_run):
    run_dir, _ = trained_run
    result = acrl("eval", run_dir / "model.acrl", "--episodes", 3)
    assert result.returncode == 0, result.stderr
    assert "±" in result.stdout and "3 deterministic episodes" in result.stdout
    result = acrl("eval", run_dir, "--episodes", 4, "--json", "--stochastic")
    data = json.loads(result.stdout)
    assert data["episodes"] == 4 and 0 < data["mean"] <= 500 and data["std"] >= 0


def test_presets_lists_every_preset():
    result = acrl("presets")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"CartPole-v1", "LunarLander-v3", "LunarLanderContinuous", "Pendulum-v1"} <= set(names)
    assert "continuous=True" in result.stdout


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["train", "NoSuchEnv-v0"], ["unknown environment id 'NoSuchEnv-v0'"]),
        (["train", "CartPole-v1", "--preset", "nope"], ["unknown preset 'nope'"]),
        (["train", "CartPole-v1", "--set", "no_such_key=1"], ["unknown setting 'no_such_key'"]),
        (["train", "CartPole-v1", "--set", "gamma=2"], ["gamma must be in (0, 1]"]),
        (["train", "CartPole-v1", "--set", "n_steps=abc"], ["n_steps must be an integer"]),
        (["train", "CartPole-v1", "--set", "gamma"], ["--set expects key=value"]),
        (["train", "CartPole-v1", "--timesteps", "-5"], ["--timesteps must be >= 1"]),
        (["train", "CartPole-v1", "--timesteps", "many"], ["invalid int value"]),
        (["train", "CartPole-v1", "--algo", "ppo"], ["unknown algorithm 'ppo'"]),
        (["train", "CartPole-v1", "--bogus"], ["unrecognized arguments"]),
        (["train", "FrozenLake-v1"], ["unsupported observation space Discrete(16)"]),
        (["train", "Pendulum-v1", "--set", "env_kwargs.no_such_arg=1"], ["bad env_kwargs"]),
        (["train", "CartPole-v1", "--set", "policy_kwargs=5"], ["policy_kwargs must be a mapping"]),
        (["train", "CartPole-v1", "--device", "cuda:7"], ["device"]),
        (["train", "CartPole-v1", "--workers", "2"], ["--workers is an A3C setting"]),
        (["eval", "README.md", "--seed", "-3"], ["--seed must be >= 0"]),
        (["eval", "no/such/model.acrl"], ["no model file at"]),
        (["eval", "pyproject.toml"], ["is not an acrl model file"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_user_mistakes_are_one_line_with_status_2(args, fragments):
    assert_user_error(acrl(*args, cwd=Path(__file__).parent.parent), *fragments)


def test_existing_run_dir_is_left_untouched(trained_run):
    run_dir, _ = trained_run
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    result = acrl("train", "CartPole-v1", "--timesteps", 100, "--run-dir", run_dir)
    assert_user_error(result, "already exists", "--overwrite")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_bad_input_creates_no_run_dir(tmp_path):
    result = acrl("train", "NoSuchEnv-v0", "--run-dir", tmp_path / "new")
    assert result.returncode == 2 and not (tmp_path / "new").exists()


def test_preset_name_as_env_and_overwrite(tmp_path):
    run_dir = tmp_path / "ll"
    (run_dir).mkdir()
    (run_dir / "model.acrl").write_text("old")
    result = acrl(
        "train",
        "LunarLanderContinuous",
        "--timesteps",
        64,
        "--run-dir",
        run_dir,
        "--overwrite",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env_id"] == "LunarLander-v3" and config["env_kwargs"] == {"continuous": True}
    assert acrl("eval", run_dir, "--episodes", 1, "--json").returncode == 0


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_a_safe_point_saves_and_exits(tmp_path, signum, status):
    run_dir = tmp_path / "interrupted"
    args = [
        "train",
        "CartPole-v1",
        "--timesteps",
        "50000000",
        "--no-progress",
        "--log-interval",
        "5",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "acrl", *args, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_metrics_rows(run_dir)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in stderr and str(run_dir / "model.acrl") in stderr
    assert "Traceback" not in stderr
    result = acrl("eval", run_dir, "--episodes", 1, "--json")
    assert result.returncode == 0, result.stderr


def test_a_second_sigint_stops_at_once():
    from acrl.cli.stop import StopSignals

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with StopSignals() as stop:
        assert stop(None) is True
        signal.raise_signal(signal.SIGINT)
        assert stop(None) is False and stop.exit_status == 130
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
