"""Image observations: detection, uint8 rollouts, pixels scaled inside the model, channel order,
the CNNs, the policy names, normalization, the critic's encoder and the compute backends.
(Learning from pixels, a user's extractor, persistence, the CLI and A3C: test_image_learning.py.)"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import SyncVectorEnv

import tests.image_envs  # noqa: F401  (registers the envs)
from acrl import A2C
from acrl.config.policy import PolicyConfig
from acrl.learner.backends import allocator
from acrl.learner.rollout import RolloutCollector
from acrl.model.encoders import (
    ImagePixels,
    check_policy_name,
    make_encoder,
    split_rows,
)
from acrl.model.extractors import NatureCNN, SmallCNN
from acrl.model.observations import is_image_space, observation_layout
from tests.image_envs import NoiseImageEnv

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
