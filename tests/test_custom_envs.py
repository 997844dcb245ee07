"""A custom env from the command line, as a user brings one: a package of theirs in the current
directory (importable the way ``python -m`` makes it, with no PYTHONPATH), named as
"module:EnvId" or imported through the ``env_packages`` setting. ``acrl eval``, ``acrl video``
and ``--resume`` import it only when the user passes ``--env-module``: never because a run's
files name it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acrl.cli import main
from tests.test_cli import acrl_argv

MARKER = "imported"  # what importing userpkg.envs leaves in the current directory
ENVS_SOURCE = f"""\
import pathlib

import gymnasium as gym
import numpy as np
from gymnasium import spaces

pathlib.Path({MARKER!r}).write_text("userpkg.envs")


class UserEnv(gym.Env):
    \"\"\"Ten steps; the reward is the action, so the best return is 10.\"\"\"

    metadata = {{"render_modes": ["rgb_array"], "render_fps": 10}}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {{}}

    def step(self, action):
        self.t += 1
        return np.full(2, self.t / 10, np.float32), float(action), self.t >= 10, False, {{}}

    def render(self):
        return np.zeros((16, 16, 3), np.uint8)


if "UserEnv-v0" not in gym.registry:
    gym.register("UserEnv-v0", entry_point="userpkg.envs:UserEnv")
"""
TRAIN = ["--timesteps", "200", "--n-envs", "2", "--no-progress", "--checkpoint-every", "100"]


def run_acrl(cwd: Path, *args) -> subprocess.CompletedProcess:
    """``python -m acrl ARGS`` in ``cwd``, with no PYTHONPATH: ``cwd`` is importable only
    because ``python -m`` puts it first on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        acrl_argv(*args), capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A user's directory holding their package userpkg (userpkg/envs.py registers
    UserEnv-v0) and two runs of it: one named userpkg.envs:UserEnv-v0, one through
    env_packages."""
    root = tmp_path_factory.mktemp("project")
    (root / "userpkg").mkdir()
    (root / "userpkg" / "__init__.py").write_text("")
    (root / "userpkg" / "envs.py").write_text(ENVS_SOURCE)
    result = run_acrl(root, "train", "userpkg.envs:UserEnv-v0", *TRAIN, "--run-dir", "by-id")
    assert result.returncode == 0, result.stderr
    packages = ["--set", "env_packages=[userpkg.envs]"]
    result = run_acrl(root, "train", "UserEnv-v0", *packages, *TRAIN, "--run-dir", "by-packages")
    assert result.returncode == 0, result.stderr
    (root / MARKER).unlink()
    return root


def refused(project: Path, monkeypatch, capsys, *args) -> str:
    """The one line of ``acrl ARGS`` run in this process in ``project``, which must refuse
    with exit status 2 and without importing userpkg."""
    monkeypatch.chdir(project)
    status = main([str(a) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert "userpkg.envs" not in sys.modules and not (project / MARKER).exists()
    return lines[0]


def test_module_env_id_trains_and_is_named_by_eval(project, monkeypatch, capsys):
    config = yaml.safe_load((project / "by-id" / "config.yaml").read_text())
    assert config["env_id"] == "userpkg.envs:UserEnv-v0"
    line = refused(project, monkeypatch, capsys, "eval", "by-id", "--episodes", "2")
    assert "names env 'userpkg.envs:UserEnv-v0'" in line and "--env-module userpkg.envs" in line
    result = run_acrl(project, "eval", "by-id", "--episodes", "2", "--env-module", "userpkg.envs")
    assert result.returncode == 0, result.stderr
    assert "userpkg.envs:UserEnv-v0: mean return" in result.stdout
    (project / MARKER).unlink()


def test_env_packages_are_recorded_and_named_but_never_imported_by_a_file(
    project, monkeypatch, capsys
):
    run = project / "by-packages"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["env_id"] == "UserEnv-v0" and config["env_packages"] == ["userpkg.envs"]
    for args in (
        ["eval", run, "--episodes", "2"],
        ["video", run, "--out", project / "videos"],
        ["train", "--resume", run, "--timesteps", "300", "--no-progress"],
    ):
        line = refused(project, monkeypatch, capsys, *args)
        assert "'UserEnv-v0'" in line and "env_packages userpkg.envs" in line, line
        assert "pass --env-module userpkg.envs" in line, line
    assert not (project / "videos").exists()


def test_env_module_rebuilds_an_env_packages_run(project, tmp_path):
    run, flag = project / "by-packages", ["--env-module", "userpkg.envs"]
    result = run_acrl(project, "video", run, "--out", tmp_path / "v", *flag)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v" / "episode.mp4").is_file()
    result = run_acrl(
        project, "train", "--resume", run, "--timesteps", "300", "--no-progress", *flag
    )
    assert result.returncode == 0, result.stderr
    assert "resuming A2C on UserEnv-v0" in result.stdout
    (project / MARKER).unlink()


def test_env_packages_from_a_config_file(project, tmp_path):
    config = tmp_path / "user.yml"
    config.write_text("env_id: UserEnv-v0\nenv_packages: userpkg.envs\nn_timesteps: 100\n")
    result = run_acrl(project, "train", "--config", config, "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["env_packages"] == ["userpkg.envs"]
    (project / MARKER).unlink()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["UserEnv-v0", "--set", "env_packages=[nopkg]"], "env_packages nopkg: cannot import it"),
        (["UserEnv-v0", "--set", "env_packages=[1]"], "env_packages must be a list of module"),
    ],
)
def test_env_packages_mistakes_are_one_line(project, monkeypatch, capsys, args, fragment):
    before = sorted(p.name for p in project.iterdir())
    assert fragment in refused(project, monkeypatch, capsys, "train", *args, *TRAIN)
    assert sorted(p.name for p in project.iterdir()) == before


def test_a3c_workers_import_the_env_packages_and_apply_the_wrappers(project, tmp_path):
    """Each worker process imports the run's env_packages (the user's own setting) and wraps
    its envs as the main process does."""
    settings = ["--set", "env_packages=[userpkg.envs]", "--set", "frame_stack=3"]
    args = ["--algo", "a3c", "--workers", "2", "--timesteps", "200", "--no-progress"]
    run = tmp_path / "a3c"
    result = run_acrl(project, "train", "UserEnv-v0", *settings, *args, "--run-dir", run)
    assert result.returncode == 0, result.stderr
    flag = ["--env-module", "userpkg.envs", "--json"]
    result = run_acrl(project, "eval", run, "--episodes", "2", *flag)
    assert result.returncode == 0, result.stderr
    (project / MARKER).unlink()


def test_a3c_workers_import_the_env_module_the_user_named(project, tmp_path):
    """--env-module is imported by the main process and by every A3C worker process."""
    args = ["--algo", "a3c", "--workers", "2", "--timesteps", "200", "--no-progress"]
    run = tmp_path / "a3c-module"
    flag = ["--env-module", "userpkg.envs"]
    result = run_acrl(project, "train", "UserEnv-v0", *flag, *args, "--run-dir", run)
    assert result.returncode == 0, result.stderr
    (project / MARKER).unlink()


def test_the_acrl_console_script_finds_a_package_in_the_current_directory(project, tmp_path):
    """As ``python -m acrl`` does (the console script does not put the current directory on
    the path; acrl looks there last for a module the user names)."""
    script = Path(sys.executable).parent / "acrl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [str(script), "train", "userpkg.envs:UserEnv-v0", *TRAIN, "--run-dir", tmp_path / "r"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    (project / MARKER).unlink()
