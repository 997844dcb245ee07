"""Gymnasium's MuJoCo envs (the mujoco extra): their presets (one per locomotion env, the
family preset for every other MuJoCo id), a missing package named in one line, and MuJoCo's
warnings about Gymnasium's own model files kept off the user's terminal and working
directory."""

import warnings

import pytest

import acrl.envs.families as families
from acrl import A2C
from acrl.config.runs import resolve_run_config
from acrl.errors import UserError
from tests.test_cli import acrl


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_every_mujoco_id_gets_a_preset(algo):
    assert families.family_of("HalfCheetah-v5") == "mujoco"
    assert families.family_of("CartPole-v1") is None
    for env_id in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Swimmer-v5"):
        run = resolve_run_config(env_id, algo)
        assert run.preset == env_id and run.n_timesteps == 1_000_000
        hyper = run.hyperparams  # returns scaled one way or the other (A2C's Walker2d: targets)
        assert hyper.normalize_obs and hyper.normalize_reward != hyper.normalize_value_targets
        a2c = resolve_run_config(env_id).hyperparams  # A3C: A2C's settings over the workers
        assert (hyper.gamma, hyper.gae_lambda, hyper.ent_coef) == (
            a2c.gamma,
            a2c.gae_lambda,
            a2c.ent_coef,
        )
    for env_id in ("InvertedPendulum-v5", "Reacher-v4", "Humanoid-v4"):
        run = resolve_run_config(env_id, algo)
        assert run.preset == "mujoco" and run.env_id == env_id and not run.env_kwargs
    # Ant's and Humanoid's contact forces stay out of their observations (what Tianshou's
    # v3 agents saw); Humanoid's actions are scaled onto its bounds of +/-0.4 (Tianshou's)
    no_forces = {"include_cfrc_ext_in_observation": False}
    assert resolve_run_config("Ant-v5", algo).env_kwargs == no_forces
    humanoid = resolve_run_config("Humanoid-v5", algo)
    assert humanoid.preset == "Humanoid-v5" and humanoid.env_kwargs == no_forces
    policy = humanoid.hyperparams.policy_config
    assert policy.action_scaling and policy.log_std_init == -0.5
    ant = resolve_run_config("Ant-v5", algo).hyperparams
    assert not ant.policy_config.action_scaling
    assert ant.learning_rate == "lin_7e-4"  # its rate decays to 0 at 1M steps, as HalfCheetah's
    # HalfCheetah starts its std at 0.22 (log -1.5) and lets its rate decay to 0 at 1M steps
    cheetah = resolve_run_config("HalfCheetah-v5", algo).hyperparams
    assert cheetah.policy_config.log_std_init == -1.5 and cheetah.learning_rate == "lin_7e-4"
    # Hopper starts its std at 1 (log 0): with less noise its seeds settle on standing still
    hopper = resolve_run_config("Hopper-v5", algo).hyperparams
    assert hopper.policy_config.log_std_init == 0.0 and hopper.ent_coef == 0.01
    assert hopper.learning_rate == 7e-4
    # HalfCheetah's and Hopper's critics step at 4x the rate, Swimmer's at 8x; the family's
    # at the rate
    assert cheetah.critic_lr_scale == 4.0 and hopper.critic_lr_scale == 4.0
    assert resolve_run_config("Swimmer-v5", algo).hyperparams.critic_lr_scale == 8.0
    assert resolve_run_config("Walker2d-v5", algo).hyperparams.critic_lr_scale == 1.0
    # A3C's Walker2d scales rewards (A2C's value targets hurt it) and takes HalfCheetah's start
    walker = resolve_run_config("Walker2d-v5", algo).hyperparams
    if algo == "a3c":
        assert walker.normalize_reward and walker.learning_rate == "lin_7e-4"
        assert walker.policy_config.log_std_init == -1.5
    else:
        assert walker.normalize_value_targets and walker.policy_config.log_std_init == -0.5


def test_a_missing_mujoco_is_one_line_naming_the_extra(monkeypatch):
    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(families.importlib, "import_module", missing)
    with pytest.raises(UserError, match=r"needs the mujoco package: pip install 'acrl\[mujoco\]'"):
        families.ensure_registered("Hopper-v5")


def test_mujoco_warnings_become_python_warnings_except_gymnasiums_own():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        families.mujoco_warning("compiler attribute 'settotalmass' is deprecated and will go")
        families.mujoco_warning("Nan, Inf or huge value in QACC at DOF 0")
    assert [str(w.message) for w in caught] == ["MuJoCo: Nan, Inf or huge value in QACC at DOF 0"]
    assert caught[0].category is RuntimeWarning


def test_cli_trains_a_mujoco_env_quietly(tmp_path):
    """MuJoCo 4 warns about Gymnasium's HalfCheetah model file every time an env loads it
    and logs it to MUJOCO_LOG.TXT in the working directory: neither happens."""
    run_dir = tmp_path / "run"
    result = acrl(
        "train", "HalfCheetah-v5", "--timesteps", "800", "--run-dir", str(run_dir),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "preset: HalfCheetah-v5" in result.stdout + result.stderr
    assert "settotalmass" not in result.stdout + result.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert (run_dir / "model.acrl").is_file()


def test_the_ant_preset_trains_and_evaluates_without_contact_forces(tmp_path):
    """The preset's env_kwargs travel with the model: `acrl eval` makes the same 27-number
    Ant-v5, and a --set puts the contact forces back (105 numbers)."""
    runs = {}
    forces = ["--set", "env_kwargs.include_cfrc_ext_in_observation=true"]
    for name, extra in (("preset", []), ("forces", forces)):
        run_dir = runs[name] = tmp_path / name
        result = acrl("train", "Ant-v5", "--timesteps", "160", "--run-dir", str(run_dir), *extra)
        assert result.returncode == 0, result.stderr
    for name, size in (("preset", 27), ("forces", 105)):
        model = A2C.load(runs[name] / "model.acrl")
        assert model.observation_space.shape == (size,)
        result = acrl("eval", runs[name], "--episodes", 1, "--json")
        assert result.returncode == 0, result.stderr
