"""What an env id, an env or a setting can make acrl do, and who gets the blame.

A model file that names an env "module:Env-v0" never makes acrl import the module: only the
user's own act does (``--env-module``, an import in their code). An env that fails to start,
raises in ``step`` or returns a NaN from ``reset`` is named in one line; settings whose values
cannot train (a non-finite ``log_std_init``, a huge learning rate, a seed out of range) are
refused before anything runs.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from acrl import A2C, evaluate_policy
from acrl.cli import main
from acrl.errors import NonFiniteError, UserError
from acrl.run.model_file import read_model, write_model
from tests.test_cli import acrl_argv, assert_user_error

MODULE = "markerpkg"
MARKER = "IMPORTED"
# Imported, this module leaves a marker file and registers Env-v0 (CartPole under a new name).
MODULE_SOURCE = f"""\
import pathlib

import gymnasium as gym

pathlib.Path({MARKER!r}).write_text("imported")
if "Env-v0" not in gym.registry:
    gym.register("Env-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                 max_episode_steps=50)
"""


def rewrite_meta(source: Path, target: Path, **changes) -> Path:
    """A copy of the model file ``source`` whose JSON metadata has ``changes``."""
    tensors, meta = read_model(source)
    return write_model(target, tensors, {**meta, **changes})


@pytest.fixture(scope="module")
def cartpole_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "cartpole.acrl"
    A2C("MlpPolicy", "CartPole-v1", n_envs=1, seed=0, policy_kwargs={"net_arch": [8]}).save(path)
    return path


@pytest.fixture
def module_dir(tmp_path, cartpole_model) -> Path:
    """A working directory with markerpkg.py and a model file that names markerpkg:Env-v0."""
    (tmp_path / f"{MODULE}.py").write_text(MODULE_SOURCE)
    rewrite_meta(cartpole_model, tmp_path / "model.acrl", env_id=f"{MODULE}:Env-v0")
    return tmp_path


def run_acrl(cwd: Path, *args) -> subprocess.CompletedProcess:
    """``python -m acrl ARGS`` in ``cwd``, which is then first on sys.path."""
    return subprocess.run(acrl_argv(*args), capture_output=True, text=True, cwd=cwd, timeout=120)


def run_main(argv, monkeypatch, capsys, cwd: Path) -> tuple[int, list[str]]:
    """``acrl ARGV`` in this process; its exit status and stderr lines."""
    monkeypatch.chdir(cwd)
    status = main(argv)
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "model.acrl", "--episodes", "1"],
        ["video", "model.acrl"],
        ["plot", "model.acrl", "--policy-slice"],
    ],
    ids=["eval", "video", "plot"],
)
def test_a_model_file_never_imports_the_module_its_env_id_names(module_dir, args):
    result = run_acrl(module_dir, *args)
    assert_user_error(
        result, "model.acrl names env 'markerpkg:Env-v0'", "pass --env-module markerpkg"
    )
    assert not (module_dir / MARKER).exists()
    assert sorted(p.name for p in module_dir.iterdir()) == ["markerpkg.py", "model.acrl"]


def test_env_module_flag_imports_the_users_module(module_dir):
    result = run_acrl(module_dir, "eval", "model.acrl", "--episodes", "1", "--env-module", MODULE)
    assert result.returncode == 0, result.stderr
    assert "markerpkg:Env-v0: mean return" in result.stdout
    assert (module_dir / MARKER).exists()


def test_resume_imports_the_module_only_with_the_flag(module_dir, monkeypatch, capsys):
    argv = ["train", "CartPole-v1", "--timesteps", "64", "--n-envs", "2", "--run-dir", "run"]
    status, _ = run_main([*argv, "--no-progress"], monkeypatch, capsys, module_dir)
    assert status == 0
    run_dir = module_dir / "run"
    for path in [run_dir / "model.acrl", *run_dir.glob("checkpoints/*.acrl")]:
        rewrite_meta(path, path, env_id=f"{MODULE}:Env-v0")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**config, "env_id": f"{MODULE}:Env-v0"}))
    resume = ["train", "--resume", "run", "--timesteps", "128", "--no-progress"]
    result = run_acrl(module_dir, *resume)
    assert_user_error(result, "run/model.acrl names env 'markerpkg:Env-v0'", "--env-module")
    assert not (module_dir / MARKER).exists()
    result = run_acrl(module_dir, *resume, "--env-module", MODULE)
    assert result.returncode == 0, result.stderr
    assert (module_dir / MARKER).exists()


def test_env_module_flag_that_cannot_import_is_one_line(tmp_path, cartpole_model):
    result = run_acrl(tmp_path, "eval", cartpole_model, "--env-module", "no_such_module_here")
    assert_user_error(result, "--env-module no_such_module_here: cannot import it")


def test_the_api_never_imports_the_module_a_model_file_names(module_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.chdir(module_dir)
    model = A2C.load(module_dir / "model.acrl")  # loading to predict needs no env
    assert model.env_id == "markerpkg:Env-v0"
    with pytest.raises(UserError, match="needs module 'markerpkg' imported"):
        model.make_env()
    with pytest.raises(UserError, match="needs module 'markerpkg' imported"):
        evaluate_policy(model, model.env_id, n_eval_episodes=1)
    with pytest.raises(UserError, match="needs module 'markerpkg' imported"):
        A2C.load(module_dir / "model.acrl", env=model.env_id)
    with pytest.raises(UserError, match="needs module 'markerpkg' imported"):
        model.learn(100)
    assert MODULE not in sys.modules
    assert not (module_dir / MARKER).exists()


@pytest.mark.parametrize(
    "env_kwargs, fragment",
    [
        ({"wrappers": ["os.system"]}, "env_kwargs.wrappers, an argument of gymnasium.make_vec"),
        ({"vector_kwargs": {"worker": "os.system"}}, "env_kwargs.vector_kwargs"),
    ],
)
def test_env_kwargs_from_a_file_cannot_name_code(tmp_path, cartpole_model, env_kwargs, fragment):
    path = rewrite_meta(cartpole_model, tmp_path / "model.acrl", env_kwargs=env_kwargs)
    with pytest.raises(UserError, match=fragment):
        A2C.load(path).make_env()


def test_an_unregistered_env_in_a_model_file_is_named(tmp_path, cartpole_model):
    path = rewrite_meta(cartpole_model, tmp_path / "model.acrl", env_id="NoSuchEnv-v0")
    with pytest.raises(UserError, match="names env 'NoSuchEnv-v0', which is not registered"):
        A2C.load(path).make_env()


def test_a_nan_from_reset_is_the_envs_fault():
    model = A2C("MlpPolicy", "acrl-tests/NanReset-v0", n_envs=2, seed=0)
    expected = r"NanReset-v0 returned a non-finite observation \(nan\) from reset\(\) in env 0"
    with pytest.raises(NonFiniteError, match=expected + ": the environment's fault"):
        model.learn(100)
    assert model.num_updates == 0


def test_a_diverged_policy_is_the_learners_fault_without_warnings():
    model = A2C("MlpPolicy", "Pendulum-v1", n_envs=2, seed=0)
    with torch.no_grad():
        model.params.vector[0] = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError, match="the policy took a non-finite action"):
            model.learn(100)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 21.0])
def test_log_std_init_must_be_finite_and_in_range(value):
    with pytest.raises(ValueError, match=r"policy_kwargs.log_std_init must be in \[-20, 20\]"):
        A2C("MlpPolicy", "Pendulum-v1", n_envs=1, policy_kwargs={"log_std_init": value})


def test_an_env_raising_in_step_under_a2c_is_one_line(tmp_path, monkeypatch, capsys):
    argv = ["train", "acrl-tests/Broken-v0", "--set", "env_kwargs.fail_after=20"]
    argv += ["--n-envs", "2", "--timesteps", "1000", "--run-dir", "run", "--no-progress"]
    status, lines = run_main(argv, monkeypatch, capsys, tmp_path)
    assert status == 1 and len(lines) == 1, lines
    assert "acrl-tests/Broken-v0 raised in step(): RuntimeError: the simulator exploded" in lines[0]
    assert "no model is saved" in lines[0]


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_an_env_that_fails_to_start_is_named(tmp_path, monkeypatch, capsys, algo):
    argv = ["train", "acrl-tests/FailingInit-v0", "--algo", algo, "--run-dir", "run"]
    status, lines = run_main(argv, monkeypatch, capsys, tmp_path)
    assert status == 2 and len(lines) == 1, lines
    expected = "env 'acrl-tests/FailingInit-v0' failed to start: ValueError: no licence"
    assert expected in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_huge_learning_rate_is_refused_without_warnings(tmp_path, monkeypatch, capsys):
    argv = ["train", "Pendulum-v1", "--set", "learning_rate=1e38", "--run-dir", "run"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, lines = run_main(argv, monkeypatch, capsys, tmp_path)
    assert status == 2 and lines == [
        "acrl: error: learning_rate must be a number in (0, 1], got 1e+38"
    ]
    assert not (tmp_path / "run").exists()
