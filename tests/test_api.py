"""The Python API as users call it: construction, validation, predict, save/load, seeding."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from acrl import A2C, StopOnReturn, evaluate_policy, make_vec_env
from acrl.errors import UserError
from acrl.learner.optim import Adam
from acrl.run.bookkeeping import default_log_interval


def small_model(**kwargs):
    defaults = dict(n_envs=4, seed=0, device="cpu")
    defaults.update(kwargs)
    return A2C("MlpPolicy", "CartPole-v1", **defaults)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"learning_rate": "lin_abc"}, "learning_rate"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"gae_lambda": 1.01}, "gae_lambda"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"ent_coef": -0.1}, "ent_coef"),
        ({"vf_coef": float("nan")}, "vf_coef"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"rms_prop_eps": -1.0}, "rms_prop_eps"),
        ({"use_rms_prop": "yes"}, "use_rms_prop"),
        ({"use_rms_prop": False, "adam_betas": (1.0, 0.99)}, "adam_betas"),
        ({"use_rms_prop": False, "adam_betas": (0.9,)}, "adam_betas"),
        ({"use_rms_prop": False, "adam_betas": "0.9"}, "adam_betas"),
        ({"adam_betas": (0.0, 0.99)}, "use_rms_prop to false"),
        ({"n_envs": 0}, "n_envs"),
        ({"seed": -3}, "seed"),
        ({"policy_kwargs": {"net_arch": [0]}}, "net_arch"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        small_model(**kwargs)


def test_unknown_env_and_policy():
    with pytest.raises(UserError, match="unknown environment id 'NoSuchEnv-v0'"):
        A2C("MlpPolicy", "NoSuchEnv-v0")
    with pytest.raises(ValueError, match="policy must be one of auto, MlpPolicy, CnnPolicy"):
        A2C("LstmPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match="CnnPolicy is for image observations"):
        A2C("CnnPolicy", "CartPole-v1")


def test_env_argument_forms():
    from_id = small_model()
    assert from_id.env.num_envs == 4 and from_id.env_id == "CartPole-v1"
    vec = make_vec_env("CartPole-v1", 3, seed=1)
    assert A2C("MlpPolicy", vec).n_envs == 3
    single = A2C("MlpPolicy", gym.make("CartPole-v1"))
    assert single.n_envs == 1 and single.env_id == "CartPole-v1"
    single.learn(200)
    lunar = A2C("MlpPolicy", "LunarLander-v3", n_envs=2, env_kwargs={"continuous": True})
    assert isinstance(lunar.action_space, gym.spaces.Box)


def test_learn_returns_model_counts_steps_and_writes_metrics(tmp_path):
    model = small_model(log_dir=tmp_path)
    assert model.learn(400, log_interval=5) is model
    assert model.num_timesteps == 400 and model.num_updates == 20
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith(
        "timesteps,updates,wall_time,steps_per_second,episodes,ep_return_mean"
    )
    assert len(lines) == 1 + 4
    model.learn(100, reset_num_timesteps=False)
    assert model.num_timesteps == 500


def test_learning_without_a_progress_bar_starts_no_thread():
    """A disabled tqdm still starts its monitor thread; without a bar there is none (a fresh
    interpreter: another test's bar would have started one here)."""
    code = (
        "import threading\n"
        "from acrl import A2C\n"
        "A2C('MlpPolicy', 'CartPole-v1', n_envs=2, seed=0).learn(200, progress_bar=False)\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "tqdm" not in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"log_interval": 0}, "log_interval"), ({"checkpoint_every": -5}, "checkpoint_every")],
)
def test_bad_learn_settings_are_refused_before_any_log_is_written(tmp_path, kwargs, name):
    model = small_model(log_dir=tmp_path / "logs")
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
        model.learn(400, **kwargs)
    assert not (tmp_path / "logs").exists() and model.num_timesteps == 0


def test_a_new_run_never_writes_into_another_runs_logs(tmp_path):
    first = small_model(log_dir=tmp_path)
    first.learn(200, log_interval=5)
    first.save(tmp_path / "model.acrl")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for again in (lambda: small_model(log_dir=tmp_path).learn(200), lambda: first.learn(200)):
        with pytest.raises(UserError, match="already holds a run's logs"):
            again()
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert first.num_timesteps == 200  # the refused learn() changed nothing
    # Continuing that run appends to its logs, in this process or after loading it.
    first.learn(200, log_interval=5, reset_num_timesteps=False)
    loaded = A2C.load(tmp_path / "model.acrl", log_dir=tmp_path, env="CartPole-v1")
    loaded.learn(200, log_interval=5, reset_num_timesteps=False)
    steps = [
        int(line.split(",")[0]) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert steps == [100, 200, 300, 400, 300, 400]


def test_learning_rate_schedule_reaches_optimizer():
    model = small_model(learning_rate="lin_0.001")
    rates = []
    model.learn(400, callback=lambda m: rates.append(m.optimizer.lr))
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-3 * 20 / 400)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    model = small_model(learning_rate=lambda progress: 5e-4 * progress)
    model.learn(100)


def test_callback_can_stop_training():
    model = small_model()
    model.learn(10_000, callback=lambda m: m.num_updates < 3)
    assert model.num_updates == 3


def test_adam_option(tmp_path):
    model = small_model(use_rms_prop=False)
    assert isinstance(model.optimizer, Adam)
    assert model.optimizer.betas == (0.9, 0.999)
    model.learn(100)
    no_momentum = small_model(use_rms_prop=False, adam_betas=[0, 0.99])
    assert no_momentum.config.adam_betas == (0.0, 0.99)
    assert no_momentum.optimizer.betas == (0.0, 0.99)
    no_momentum.learn(100)
    loaded = A2C.load(no_momentum.save(tmp_path / "adam"))
    assert loaded.config.adam_betas == (0.0, 0.99)
    assert loaded.optimizer.betas == (0.0, 0.99)


def test_adam_without_momentum_steps_by_lr_times_the_gradient_sign():
    """betas (0, b2): the first step is lr * g / (|g| + eps), whatever b2 (bias correction);
    plain RMSprop's first step is lr * g / (sqrt(1 - alpha) |g| + eps), ~10x at alpha 0.99."""
    grad = torch.tensor([0.5, -2.0, 1e-3])

    def first_step(**kwargs):
        model = small_model(learning_rate=0.01, **kwargs)
        start = model.params.vector.detach().clone()
        model.params.zero_grad()
        model.params.grad[:3] = grad
        model.optimizer.step()
        return (model.params.vector.detach() - start)[:3]

    for betas in ((0.0, 0.99), (0.0, 0.999)):
        step = first_step(use_rms_prop=False, adam_betas=betas)
        assert torch.allclose(step, -0.01 * grad / (grad.abs() + 1e-5), rtol=1e-5, atol=0)
    step = first_step(use_rms_prop=True)
    assert torch.allclose(step, -0.01 * grad / (0.1 * grad.abs() + 1e-5), rtol=1e-4, atol=0)


def test_predict_single_and_batch():
    model = small_model()
    obs = np.zeros(4, dtype=np.float32)
    action, state = model.predict(obs, deterministic=True)
    assert state is None and np.ndim(action) == 0 and action in (0, 1)
    actions, _ = model.predict(np.zeros((5, 4), dtype=np.float32), deterministic=True)
    assert actions.shape == (5,)
    with pytest.raises(ValueError, match="observation shape"):
        model.predict(np.zeros(3))


def test_predict_clips_gaussian_actions():
    model = A2C("MlpPolicy", "Pendulum-v1", n_envs=2, seed=0, policy_kwargs={"log_std_init": 3.0})
    actions, _ = model.predict(np.zeros((256, 3), dtype=np.float32))
    assert actions.shape == (256, 1)
    assert actions.min() >= -2.0 and actions.max() <= 2.0
    assert (np.abs(actions) == 2.0).any()


def test_save_load_predicts_identically_and_continues(tmp_path):
    model = small_model()
    model.learn(2_000)
    path = model.save(tmp_path / "cartpole")
    assert path.name == "cartpole.acrl"
    loaded = A2C.load(tmp_path / "cartpole")
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    torch.manual_seed(1)
    expected = model.predict(obs)[0]
    torch.manual_seed(1)
    assert np.array_equal(loaded.predict(obs)[0], expected)
    assert np.array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    for a, b in zip(model.policy.parameters(), loaded.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    state_a, state_b = model.optimizer.state_dict(), loaded.optimizer.state_dict()
    for key in state_a["state"]:
        for name, value in state_a["state"][key].items():
            assert torch.equal(value, state_b["state"][key][name])
    assert loaded.num_timesteps == 2_000 and loaded.env_id == "CartPole-v1"
    loaded.learn(200, reset_num_timesteps=False)
    assert loaded.num_timesteps == 2_200


def test_load_with_mismatched_env_is_refused(tmp_path):
    path = small_model().save(tmp_path / "m.acrl")
    with pytest.raises(UserError, match="observation space"):
        A2C.load(path, env="Pendulum-v1")


def returns_and_weights(seed, env=None):
    model = A2C("MlpPolicy", env or "CartPole-v1", n_envs=4, seed=seed, device="cpu")
    model.learn(3_000)
    returns = [r for r, _ in model.recent_episodes]
    weights = torch.cat([p.detach().flatten() for p in model.policy.parameters()])
    return returns, weights


def test_same_seed_same_returns_and_weights():
    r1, w1 = returns_and_weights(3)
    r2, w2 = returns_and_weights(3)
    r3, w3 = returns_and_weights(4)
    assert len(r1) > 10 and r1 == r2 and torch.equal(w1, w2)
    assert r1 != r3 and not torch.equal(w1, w3)


def test_same_seed_same_returns_with_sync_vector_env():
    r1, w1 = returns_and_weights(5, env=make_vec_env("Pendulum-v1", 2))
    r2, w2 = returns_and_weights(5, env=make_vec_env("Pendulum-v1", 2))
    assert len(r1) > 0 and r1 == r2 and torch.equal(w1, w2)


@pytest.mark.parametrize("n_envs", [1, 3, 8])
def test_evaluate_policy_counts_exact_episodes(n_envs):
    model = small_model()
    returns, lengths = evaluate_policy(
        model,
        make_vec_env("CartPole-v1", n_envs, seed=0),
        n_eval_episodes=7,
        return_episode_rewards=True,
    )
    assert len(returns) == len(lengths) == 7
    assert returns == [float(n) for n in lengths]  # CartPole pays 1 per step


def test_evaluate_policy_single_env_and_env_id():
    model = small_model()
    mean, std = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=3)
    assert 0 < mean <= 500 and std >= 0
    mean2, _ = evaluate_policy(model, "CartPole-v1", n_eval_episodes=2, seed=0)
    assert mean2 > 0


def test_make_vec_env_modes_and_kwargs():
    native = make_vec_env("CartPole-v1", 4)
    assert type(native).__name__ == "CartPoleVectorEnv"
    sync = make_vec_env("CartPole-v1", 2, vectorization="sync")
    assert isinstance(sync, gym.vector.SyncVectorEnv)
    lunar = make_vec_env("LunarLander-v3", 2, env_kwargs={"continuous": True, "gravity": -9.0})
    assert isinstance(lunar.single_action_space, gym.spaces.Box)
    with pytest.raises(UserError, match="vectorization"):
        make_vec_env("CartPole-v1", 2, vectorization="threads")
    with pytest.raises(UserError, match="bad env_kwargs"):
        make_vec_env("Pendulum-v1", 1, env_kwargs={"no_such_arg": 1})


def test_make_vec_env_async():
    env = make_vec_env("CartPole-v1", 2, vectorization="async", seed=0)
    try:
        assert isinstance(env, gym.vector.AsyncVectorEnv)
        model = A2C("MlpPolicy", env, seed=0)
        model.learn(100)
    finally:
        env.close()


def test_stop_on_return_callback():
    from types import SimpleNamespace

    stop = StopOnReturn(475, window=3)
    model = SimpleNamespace(recent_episodes=[(500.0, 500), (400.0, 400)], num_timesteps=10)
    assert stop(model) is True and stop.solved_at is None
    model.recent_episodes.append((500.0, 500))
    assert stop(model) is True  # mean 466.7 over the last 3
    model.recent_episodes += [(500.0, 500), (500.0, 500)]
    model.num_timesteps = 20
    assert stop(model) is False and stop.solved_at == 20
    with pytest.raises(ValueError, match="window"):
        StopOnReturn(475, window=0)


def test_the_default_log_interval_gives_a_useful_number_of_rows_at_any_length(tmp_path):
    """About 200 metrics rows a run: a short run gets a row per update, not one in all."""
    short = small_model(n_steps=5, log_dir=tmp_path / "short")
    short.learn(1_000)  # 50 updates of 20 steps
    assert [row["timesteps"] for row in short.metrics.rows] == list(range(20, 1_001, 20))
    assert default_log_interval(400_000, 256) == 8  # CartPole's preset: 195 rows
    assert default_log_interval(10_000_000, 80) == 625  # the Atari preset: 200 rows
    assert default_log_interval(100, 256) == 1
    model = small_model(n_steps=5)
    model.learn(40_000)  # 2,000 updates: a row every 10
    assert len(model.metrics.rows) == 200
