"""Images end to end: learning from pixels alone and with a vector, a user's features
extractor, persistence, the CLI, A3C, and images beside other parts in rows of bytes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces
from gymnasium.vector import SyncVectorEnv

import tests.image_envs  # noqa: F401  (registers the envs)
from acrl import A2C, A3C, evaluate_policy, make_vec_env
from acrl.algorithms.registry import load_model
from acrl.config.policy import PolicyConfig
from acrl.config.runs import resolve_run_config
from acrl.errors import NonFiniteError, UserError
from acrl.learner.rollout import RolloutCollector
from acrl.model.encoders import UserEncoder, make_encoder, split_rows
from acrl.model.observations import observation_layout
from acrl.run.model_file import read_model, write_model
from tests.test_cli import acrl, assert_user_error
from tests.test_images import DICT, SIDE, SMALL, box
from tests.user_extractors import TinyCNN

ROOT = Path(__file__).resolve().parents[1]  # where `tests.image_envs` imports from


# ---- learning ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env_id", "backend"),
    [
        (SIDE, "auto"),  # numpy: a small CNN
        (SIDE, "torch"),
        ("acrl-tests/PixelSideCHW-v0", "auto"),
        ("acrl-tests/PixelSideBool-v0", "auto"),
    ],
)
def test_a_cnn_policy_learns_where_the_answer_is_only_in_the_pixels(env_id, backend):
    """Random actions score 5 of 10; a policy that does not see where the block is cannot
    beat that. About 2 s each here."""
    model = A2C(
        "CnnPolicy",
        make_vec_env(env_id, 8, seed=0),
        n_steps=5,
        gamma=0.5,
        learning_rate=2e-3,
        seed=0,
        device="cpu",
        policy_kwargs=SMALL,
        backend=backend,
    )
    assert model.compute.backend == ("torch" if backend == "torch" else "numpy")
    model.learn(3_000)
    mean, _ = evaluate_policy(model, make_vec_env(env_id, 8, seed=1), 40)
    assert mean >= 9.5


def test_multi_input_policy_learns_a_task_that_needs_the_image_and_the_vector():
    """The answer is the block's side, swapped by the flip bit: either key alone scores 5."""
    model = A2C(
        "MultiInputPolicy",
        make_vec_env(DICT, 8, seed=0),
        n_steps=5,
        gamma=0.5,
        learning_rate=2e-3,
        ent_coef=0.05,
        seed=0,
        device="cpu",
        policy_kwargs=SMALL,
    )
    model.learn(10_000)
    mean, _ = evaluate_policy(model, make_vec_env(DICT, 8, seed=1), 40)
    assert mean >= 9.5


# ---- a user's features extractor -----------------------------------------------------------
def test_a_user_extractor_sees_sb3s_channels_first_scaled_images(tmp_path):
    kwargs = {"features_extractor_class": TinyCNN, "features_extractor_kwargs": {"features_dim": 8}}
    model = A2C("CnnPolicy", SIDE, n_envs=2, seed=0, policy_kwargs=kwargs)
    encoder = model.policy.encoder
    assert isinstance(encoder, UserEncoder) and encoder.extractor.cnn[0].in_channels == 3
    image = torch.full((1, 12 * 12 * 3), 255, dtype=torch.uint8)
    assert torch.equal(encoder.preprocess(image), torch.ones(1, 3, 12, 12))
    assert model.policy.config.features_extractor_class == "tests.user_extractors:TinyCNN"
    model.learn(200)
    images = np.random.default_rng(1).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    loaded = A2C.load(model.save(tmp_path / "user"))
    same = (
        loaded.predict(images, deterministic=True)[0],
        model.predict(images, deterministic=True)[0],
    )
    assert np.array_equal(*same)


def test_a_user_extractor_of_the_wrong_size_is_one_line():
    kwargs = {"features_extractor_class": "tests.user_extractors:WrongSize"}
    with pytest.raises(UserError, match=r"returned \(1, 3\) for one observation, not \(1, 8\)"):
        A2C("CnnPolicy", SIDE, n_envs=1, policy_kwargs=kwargs)


# ---- persistence, the CLI and A3C ----------------------------------------------------------
@pytest.fixture(scope="module", params=[SIDE, DICT])
def saved(request, tmp_path_factory):
    model = A2C("auto", make_vec_env(request.param, 2, seed=0), seed=0, policy_kwargs=SMALL)
    model.learn(200)
    return model, model.save(tmp_path_factory.mktemp("models") / "model")


def test_save_load_predicts_identically(saved):
    model, path = saved
    loaded = load_model(path)
    env = make_vec_env(model.env_id, 16, seed=3)
    obs, _ = env.reset(seed=3)
    same = loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    assert np.array_equal(*same)
    assert loaded.policy.config == model.policy.config


def test_cli_trains_an_image_env_with_a_user_extractor_imported_only_when_named(tmp_path):
    """Train with the user's extractor named by --set; eval and video of the run need its
    module named again (--env-module): a run's files never import it (eval refuses, video
    with both modules named films)."""
    run = tmp_path / "run"
    setting = "policy_kwargs.features_extractor_class=tests.user_extractors:TinyCNN"
    args = ("train", f"tests.image_envs:{SIDE}", "--timesteps", "200", "--run-dir", run)
    result = acrl(*args, "--set", setting, "--no-progress", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "features extractor tests.user_extractors:TinyCNN" in result.stdout
    result = acrl("eval", run, "--episodes", "1", "--env-module", "tests.image_envs", cwd=ROOT)
    assert_user_error(result, "tests.user_extractors:TinyCNN", "--env-module tests.user_extractors")
    both = ("--env-module", "tests.image_envs", "--env-module", "tests.user_extractors")
    out = tmp_path / "videos"  # (eval rebuilds the same way: acrl.cli.evaluate, test_cli)
    result = acrl("video", run, "--out", out, *both, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert [v.stat().st_size > 0 for v in out.glob("*.mp4")] == [True]


def test_a3c_workers_train_a_cnn():
    model = A3C(
        "CnnPolicy", f"tests.image_envs:{SIDE}", n_workers=2, n_envs=2, seed=0, policy_kwargs=SMALL
    )
    model.learn(400)
    assert model.num_timesteps >= 400
    image = np.zeros((3, 12, 12, 3), np.uint8)
    assert model.predict(image)[0].shape == (3,)


# ---- images beside other parts: rows of bytes ----------------------------------------------
def test_a_dict_with_an_image_stores_its_floats_as_bytes_then_its_pixels():
    space = spaces.Dict(
        {
            "image": box((12, 12, 3)),
            "flip": spaces.Box(-1.0, 1.0, (1,), np.float32),
            "door": spaces.Discrete(3, start=1),
        }
    )
    layout = observation_layout(space)
    assert layout.dtype is np.uint8 and (layout.float_dim, layout.pixel_dim) == (2, 432)
    assert layout.raw_dim == 4 * 2 + 432  # not 4 * 434 bytes as float32
    image = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
    obs = {"image": image, "flip": np.array([[0.25], [-1.0]], np.float32), "door": np.array([3, 1])}
    rows = layout.flatten(obs, 2)
    assert layout.floats_of(rows).tolist() == [[0.25, 2.0], [-1.0, 0.0]]
    assert np.array_equal(layout.pixels_of(rows), image.reshape(2, -1))
    floats, pixels = split_rows(layout, torch.from_numpy(rows))
    assert floats.tolist() == [[0.25, 2.0], [-1.0, 0.0]] and floats.dtype == torch.float32
    assert torch.equal(pixels, torch.from_numpy(image.reshape(2, -1)))
    features = make_encoder(space, PolicyConfig.from_kwargs(SMALL))(torch.from_numpy(rows))
    assert features.shape == (2, 1 + 32 + 3)  # the flip value, the CNN's, the door one-hot
    assert features[:, 0].tolist() == [0.25, -1.0]
    assert features[:, 33:].tolist() == [[0, 0, 1], [1, 0, 0]]


class _NanFlipEnv(tests.image_envs.PixelDictEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        obs["flip"][0] = np.nan
        return obs, reward, terminated, truncated, info


def test_a_non_finite_value_beside_an_image_is_found_in_the_byte_rows():
    env = SyncVectorEnv([_NanFlipEnv] * 2)
    model = A2C("MultiInputPolicy", env, n_steps=3, policy_kwargs=SMALL)
    collector = RolloutCollector(env, model.policy, n_steps=3, gamma=0.99, device=model.device)
    with pytest.raises(NonFiniteError, match="returned a non-finite observation"):
        collector.collect()


def test_cli_resumes_and_repeats_an_image_run_with_stacked_frames(tmp_path):
    """config.yaml records the network the model built (net_arch [] under a CNN), so --resume
    finds the run's checkpoints and --config rebuilds the same network; frame_stack on an RGB
    env makes (K, H, W, C) frames, one image of K x C channels."""
    run = tmp_path / "run"
    args = ("--set", "frame_stack=2", "--checkpoint-every", "100", "--no-progress")
    env_id = f"tests.image_envs:{SIDE}"
    result = acrl("train", env_id, "--timesteps", "200", "--run-dir", run, *args, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "numpy backend" in result.stdout and "a small CNN" in result.stdout
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["hyperparams"]["policy_kwargs"]["net_arch"] == []
    flag = ("--env-module", "tests.image_envs")
    result = acrl("train", "--resume", run, "--timesteps", "300", "--no-progress", *flag, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    model = load_model(run / "model.acrl", env=None)
    assert model.num_timesteps >= 300 and model.policy.encoder.pixels[0].chw == (6, 12, 12)
    again = tmp_path / "again"
    result = acrl("train", "--config", run / "config.yaml", "--run-dir", again, *flag, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert load_model(again / "model.acrl").policy.config == model.policy.config


def test_cli_seeds_with_a_user_extractor_that_reads_tensors(tmp_path):
    """The extractor's module is imported by the command that names it (never on the meta
    device, where its tensors would be shapes without values), in the parent of --seeds too
    (which loads each seed's model for its summary)."""
    parent = tmp_path / "seeds"
    setting = "policy_kwargs.features_extractor_class=tests.user_extractors:FlatLinear"
    args = ("--seeds", "0", "--timesteps", "60", "--n-envs", "2", "--run-dir", parent)
    result = acrl("train", f"tests.image_envs:{SIDE}", *args, "--set", setting, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads((parent / "summary.json").read_text())
    assert [row["seed"] for row in summary["seeds"]] == [0]


def test_set_reaches_into_the_extractors_kwargs():
    assignments = ["policy_kwargs.features_extractor_kwargs.features_dim=64"]
    run = resolve_run_config(SIDE, "a2c", None, {}, assignments)
    assert run.hyperparams.policy_config.features_extractor_kwargs == {"features_dim": 64}
    with pytest.raises(UserError, match="net_arch is not a mapping"):
        resolve_run_config(
            SIDE, "a2c", None, {}, ["policy_kwargs.net_arch=[8]", "policy_kwargs.net_arch.x=1"]
        )


def test_a_file_of_an_mlp_on_raw_pixels_says_to_train_again(tmp_path):
    """Before image encoders, an image env trained an MLP on the raw bytes (CarRacing): its
    files hold no encoder weights, and loading one says why it cannot be used."""
    model = A2C("CnnPolicy", SIDE, n_envs=1, policy_kwargs=SMALL)
    tensors, meta = read_model(model.save(tmp_path / "new"))
    mlp = A2C("MlpPolicy", "CartPole-v1", n_envs=1)  # any MLP's weights: no encoder.*
    old_tensors, _ = read_model(mlp.save(tmp_path / "mlp"))
    write_model(tmp_path / "old", old_tensors, meta)
    with pytest.raises(UserError, match="train it again with CnnPolicy"):
        A2C.load(tmp_path / "old.acrl")
