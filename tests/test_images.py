"""Image observations: detection, uint8 rollouts, pixels scaled inside the model, channel order,
the CNNs, the policy names, a user's features extractor, learning from pixels alone and from
pixels with a vector, persistence, the CLI and A3C."""

import json
from pathlib import Path

import gymnasium as gym
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
from acrl.learner.backends import allocator
from acrl.learner.rollout import RolloutCollector
from acrl.model.encoders import (
    ImagePixels,
    UserEncoder,
    check_policy_name,
    make_encoder,
    split_rows,
)
from acrl.model.extractors import NatureCNN, SmallCNN
from acrl.model.observations import is_image_space, observation_layout
from acrl.run.model_file import read_model, write_model
from tests.image_envs import NoiseImageEnv
from tests.test_cli import acrl, assert_user_error
from tests.user_extractors import TinyCNN

ROOT = Path(__file__).resolve().parents[1]  # where `tests.image_envs` imports from
SIDE = "acrl-tests/PixelSide-v0"
DICT = "acrl-tests/PixelDict-v0"
SMALL = {"features_extractor_kwargs": {"features_dim": 32}}  # fast enough for the suite


def box(shape, dtype=np.uint8, low=0, high=255):
    return spaces.Box(low, high, shape, dtype)


# ---- detection, rows and pixels -------------------------------------------------------------
@pytest.mark.parametrize(
    "space, image",
    [
        (box((84, 84, 3)), True),
        (box((4, 84, 84)), True),
        (box((84, 84)), True),  # one grey channel
        (box((10, 10, 4), bool, 0, 1), True),  # MinAtar's
        (box((84, 84, 3), np.uint8, 0, 1), False),  # bounds other than 0-255: a vector
        (box((84, 84, 3), np.float32, 0.0, 1.0), False),
        (box((84,)), False),
        (box((2, 84, 84, 3)), True),  # frames of an RGB env, stacked first
        (box((2, 40)), False),  # a table of bytes, not a grey image
        (box((2, 84, 84, 3, 1)), False),
    ],
)
def test_images_are_detected_as_stable_baselines3_detects_them_and_stacks_of_them(space, image):
    assert is_image_space(space) is image
    kinds = [leaf.kind for leaf in observation_layout(space).leaves]
    assert kinds == ["image" if image else "box"]


def test_a_rollout_stores_pixels_as_uint8():
    """16 envs x 5 steps of 4x84x84 frames: 2.26 MB as uint8, not 9 MB as float32."""
    env = SyncVectorEnv([NoiseImageEnv] * 16)
    model = A2C("CnnPolicy", env, n_steps=5, seed=0, device="cpu")
    collector = RolloutCollector(env, model.policy, n_steps=5, gamma=0.99, device=model.device)
    rollout = collector.collect()
    assert rollout.obs.dtype == torch.uint8 and rollout.obs.shape == (5, 16, 4 * 84 * 84)
    assert rollout.obs.nbytes == 16 * 5 * 4 * 84 * 84 == 2_257_920
    assert isinstance(model.policy.encoder.cnns[0], NatureCNN)


def test_pixels_are_scaled_inside_the_model_in_channels_first_order():
    rows = np.arange(2 * 12 * 12 * 3).reshape(2, 12, 12, 3) % 256
    hwc, chw = box((12, 12, 3)), box((3, 12, 12))
    (leaf,) = observation_layout(hwc).leaves
    pixels = ImagePixels(leaf, "auto", normalize=True)
    out = pixels(torch.from_numpy(rows.astype(np.uint8).reshape(2, -1)))
    expected = torch.from_numpy(rows.transpose(0, 3, 1, 2) / 255.0).float()
    assert pixels.chw == (3, 12, 12) and torch.allclose(out, expected)
    (leaf,) = observation_layout(chw).leaves
    raw = ImagePixels(leaf, "auto", normalize=False)
    assert torch.equal(
        raw(torch.full((1, 432), 7, dtype=torch.uint8)), torch.full((1, 3, 12, 12), 7.0)
    )
    (leaf,) = observation_layout(box((10, 10, 4), bool, 0, 1)).leaves
    assert ImagePixels(leaf, "auto", normalize=True).scale == 1.0  # bools are 0 or 1 already


def test_channels_last_and_channels_first_envs_get_the_same_features():
    hwc = make_encoder(box((12, 12, 3)))
    chw = make_encoder(box((3, 12, 12)))
    chw.load_state_dict(hwc.state_dict())
    images = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    a = hwc(torch.from_numpy(images.reshape(5, -1)))
    b = chw(torch.from_numpy(images.transpose(0, 3, 1, 2).reshape(5, -1).copy()))
    assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(3, 7, 7, 3), (3, 3, 7, 7)], ids=["last", "first"])
def test_stacked_frames_are_one_image_of_their_channels(shape):
    """FrameStackObservation of an RGB env: (K, H, W, C) or (K, C, H, W) -> K*C channels."""
    frames = np.random.default_rng(0).integers(0, 256, (2, *shape), dtype=np.uint8)
    (leaf,) = observation_layout(box(shape)).leaves
    pixels = ImagePixels(leaf, "auto", normalize=False)
    out = pixels(torch.from_numpy(frames.reshape(2, -1)))
    chw = frames.transpose(0, 1, 4, 2, 3) if shape[-1] == 3 else frames
    assert pixels.chw == (9, 7, 7)
    assert torch.equal(out, torch.from_numpy(chw.reshape(2, 9, 7, 7).astype(np.float32)))


@pytest.mark.parametrize("shape", [(7, 7, 3), (5, 9)], ids=["7x7x3", "grey 5x9"])
def test_images_of_any_byte_count_train_and_predict_alone_and_in_a_dict(shape):
    """Rows of a Dict with an odd number of pixels are padded so that every row's floats
    view as float32 in place; a single observation (B=1) too."""
    if len(shape) == 2:
        shape = (9, 9)  # a grey image needs 8x8 at least
    gym_id = f"acrl-tests/Noise{'x'.join(map(str, shape))}-v0"
    if gym_id not in gym.registry:
        gym.register(gym_id, entry_point=NoiseImageEnv, kwargs={"shape": shape})
    model = A2C("CnnPolicy", gym_id, n_envs=1, n_steps=3, policy_kwargs=SMALL)
    model.learn(12)
    assert model.predict(np.zeros(shape, np.uint8))[0] in (0, 1)
    space = spaces.Dict({"image": box(shape), "v": spaces.Box(-1.0, 1.0, (1,), np.float32)})
    layout = observation_layout(space)
    assert layout.raw_dim % 4 == 0 and layout.raw_dim >= 4 + int(np.prod(shape))
    rows = layout.flatten({"image": np.zeros((3, *shape), np.uint8), "v": np.ones((3, 1))}, 3)
    for row in torch.from_numpy(rows).split(1):  # one row at a time, at offsets of the batch
        floats, pixels = split_rows(layout, row)
        assert floats.tolist() == [[1.0]] and pixels.shape == (1, int(np.prod(shape)))
    odd = torch.from_numpy(rows).reshape(-1)[1 : 1 + layout.raw_dim].reshape(1, -1)
    assert split_rows(layout, odd)[0].shape == (1, 1)  # misaligned rows are copied


def test_an_ambiguous_shape_is_one_line_and_image_channels_settles_it():
    with pytest.raises(ValueError, match="set policy_kwargs.image_channels to 'first' or 'last'"):
        make_encoder(box((10, 10, 10)))
    last = PolicyConfig.from_kwargs({"image_channels": "last"})
    assert make_encoder(box((10, 10, 10)), last).pixels[0].channels_last
    first = PolicyConfig.from_kwargs({"image_channels": "first"})
    assert not make_encoder(box((10, 10, 10)), first).pixels[0].channels_last


def test_the_cnn_fits_the_image_size():
    small = make_encoder(box((10, 10, 4), bool, 0, 1))
    assert isinstance(small.cnns[0], SmallCNN) and small.features_dim == 128
    nature = make_encoder(box((84, 84, 4)))
    convs = [m for m in nature.cnns[0].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64] and nature.features_dim == 512
    config = PolicyConfig.from_kwargs({"features_extractor_class": "NatureCNN"})
    with pytest.raises(ValueError, match="NatureCNN needs images of at least 36x36, not 10x10"):
        make_encoder(box((10, 10, 4), bool, 0, 1), config)
    bigger = PolicyConfig.from_kwargs({"features_extractor_kwargs": {"features_dim": 64}})
    assert make_encoder(box((84, 84, 4)), bigger).features_dim == 64


# ---- the policy names, normalization, the critic's encoder, backends ------------------------
def test_policy_names_fit_the_space():
    with pytest.raises(ValueError, match="holds images: use 'CnnPolicy'"):
        A2C("MlpPolicy", SIDE, n_envs=1)
    with pytest.raises(ValueError, match="holds images: use 'MultiInputPolicy'"):
        A2C("MlpPolicy", DICT, n_envs=1)
    with pytest.raises(ValueError, match="CnnPolicy is for image observations") as info:
        A2C("CnnPolicy", "LunarLander-v3", n_envs=1)
    assert "\n" not in str(info.value)  # the Box's bounds on one line
    pair = spaces.Tuple((box((12, 12, 3)), spaces.Discrete(2)))  # no SB3 name fits: "auto"
    for name in ("MlpPolicy", "CnnPolicy"):
        with pytest.raises(ValueError, match="use 'auto'"):
            check_policy_name(name, pair)
    check_policy_name("auto", pair)
    cnn = A2C("auto", SIDE, n_envs=1)
    assert cnn.policy.config.net_arch == ()  # SB3's: the heads read the CNN's features
    both = A2C("MultiInputPolicy", DICT, n_envs=1, policy_kwargs=SMALL)
    assert both.policy.config.net_arch == (64, 64)
    assert both.policy.encoder.features_dim == 32 + 1  # the CNN's and the flip bit


def test_normalization_covers_the_vector_parts_never_the_pixels():
    model = A2C("MultiInputPolicy", DICT, n_envs=2, normalize_obs=True, policy_kwargs=SMALL)
    assert model.policy.normalization.obs_rms.mean.shape == (1,)  # the flip bit alone
    model.learn(100)
    assert float(model.policy.normalization.obs_rms.count) > 1


def test_without_a_shared_extractor_the_critic_has_a_cnn_of_its_own():
    model = A2C("CnnPolicy", SIDE, n_envs=2, policy_kwargs={"share_features_extractor": False})
    policy = model.policy
    actor, critic = policy.encoder, policy.critic_encoder
    assert critic is not None and {id(p) for p in actor.parameters()}.isdisjoint(
        id(p) for p in critic.parameters()
    )
    obs = torch.randint(0, 256, (3, 12 * 12 * 3), dtype=torch.uint8)
    policy.value(obs).sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in actor.parameters())
    assert any(p.grad is not None and p.grad.any() for p in critic.parameters())


def test_auto_computes_small_cnns_in_numpy_and_large_ones_in_torch_saying_why():
    small = A2C("CnnPolicy", SIDE, n_envs=2)
    assert small.compute.backend == "numpy" and small.compute.threads == 1
    assert small.compute.reason == "auto: a small CNN on the CPU, 10 transitions per update"
    assert not small.compute.keep_memory
    nature = A2C("CnnPolicy", SyncVectorEnv([NoiseImageEnv] * 2), device="cpu")
    assert nature.compute.backend == "torch" and nature.compute.threads is None
    # NatureCNN's 1.7M parameters: glibc keeps its blocks
    assert nature.compute.keep_memory == allocator.available()
    if allocator.available():
        assert nature.compute.describe().startswith(
            "torch backend, torch's default threads, freed memory kept where gradients are "
            "computed (auto: "
        )
    assert "auto: CNNs of 9,342,976 multiply-adds per observation (compute-bound" in (
        nature.compute.reason
    )
    assert A2C("CnnPolicy", SyncVectorEnv([NoiseImageEnv]), backend="numpy").compute.backend == (
        "numpy"
    )


@pytest.mark.skipif(not allocator.available(), reason="glibc's malloc")
def test_learning_with_a_large_cpu_cnn_has_glibc_keep_freed_memory(monkeypatch):
    import acrl.algorithms.a2c as a2c

    calls: list[bool] = []
    monkeypatch.setattr(a2c, "keep_freed_memory", lambda: calls.append(True) or True)
    A2C("CnnPolicy", SIDE, n_envs=2, device="cpu").learn(10)  # SmallCNN: no
    assert calls == []
    nature = A2C("CnnPolicy", SyncVectorEnv([NoiseImageEnv] * 2), n_steps=2, device="cpu")
    nature.learn(4)
    assert calls == [True]


@pytest.mark.parametrize(
    ("policy_kwargs", "gap"),
    [
        ({"share_features_extractor": False}, "a CNN of the critic's own"),
        ({"features_extractor_class": "tests.user_extractors:TinyCNN"}, "the features extractor"),
    ],
)
def test_numpy_refuses_the_image_encoders_it_does_not_compute(policy_kwargs, gap):
    model = A2C("CnnPolicy", SIDE, n_envs=2, policy_kwargs=policy_kwargs)
    assert model.compute.backend == "torch" and gap in model.compute.reason
    with pytest.raises(ValueError, match=f"does not cover this model: {gap}"):
        A2C("CnnPolicy", SIDE, n_envs=2, backend="numpy", policy_kwargs=policy_kwargs)


def test_predict_takes_pixels_as_uint8_or_whole_numbers_and_refuses_scaled_ones():
    model = A2C("CnnPolicy", SIDE, n_envs=1, seed=0)
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    action, _ = model.predict(image, deterministic=True)
    again, _ = model.predict(image.astype(np.float64), deterministic=True)
    assert action == again
    with pytest.raises(ValueError, match="whole numbers from 0 to 255"):
        model.predict(image / 255.0)


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
