"""Tiny deterministic environments (given their seed) whose answer is only in the pixels.

Each step shows a bright 2x2 block on a noisy dark image, in its left or its right half; the
action names the half. Random actions score half an episode. ``PixelDict`` adds a ``flip``
bit beside the image: the right answer is the side, swapped when ``flip`` is 1, so it needs
both keys. Importing this module registers them (``--env-module tests.image_envs``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

EPISODE_STEPS = 10
SIZE = 12


class PixelSideEnv(gym.Env):
    """A (12, 12, 3) uint8 image by default (``layout="chw"``: (3, 12, 12); ``dtype=bool``:
    the block alone, no noise); Discrete(2): 0 left, 1 right; reward 1 when right."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self, render_mode: str | None = None, layout: str = "hwc", dtype: str = "uint8"
    ) -> None:
        self.render_mode = render_mode
        self.layout = layout
        self.bool = dtype == "bool"
        shape = (SIZE, SIZE, 3) if layout == "hwc" else (3, SIZE, SIZE)
        self.observation_space = (
            spaces.Box(0, 1, shape, dtype=bool)
            if self.bool
            else spaces.Box(0, 255, shape, np.uint8)
        )
        self.action_space = spaces.Discrete(2)
        self.side = 0
        self.image = np.zeros((SIZE, SIZE, 3), np.uint8)

    def _draw(self) -> None:
        self.side = int(self.np_random.integers(2))
        image = (
            np.zeros((SIZE, SIZE, 3), np.uint8)
            if self.bool
            else self.np_random.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
        )
        row = int(self.np_random.integers(SIZE - 1))
        col = int(self.np_random.integers(SIZE // 2 - 1)) + self.side * SIZE // 2
        image[row : row + 2, col : col + 2] = 1 if self.bool else 255
        self.image = image

    def _obs(self) -> np.ndarray:
        image = self.image if self.layout == "hwc" else self.image.transpose(2, 0, 1)
        return image.astype(bool) if self.bool else image.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._draw()
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self._draw()
        return self._obs(), reward, False, False, {}

    def render(self) -> np.ndarray:
        image = self.image * (255 if self.bool else 1)
        return np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)


class PixelDictEnv(PixelSideEnv):
    """Dict(image: (12, 12, 3) uint8, flip: Box(0, 1, (1,))); right answer: side XOR flip."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
                "flip": spaces.Box(0.0, 1.0, (1,), np.float32),
            }
        )
        self.flip = 0

    def _draw(self) -> None:
        super()._draw()
        self.flip = int(self.np_random.integers(2))

    def _obs(self):
        return {"image": self.image.copy(), "flip": np.array([self.flip], np.float32)}

    def step(self, action):
        reward = float(int(action) == self.side ^ self.flip)
        self._draw()
        return self._obs(), reward, False, False, {}


class PixelMixedEnv(PixelSideEnv):
    """Every kind of part in one Dict: a grey (H, W) image, two stacked channels-first frames,
    a Box, bits and an index with a start; the right answer is the block's side, as in
    PixelSide (shown in the grey image), so that gradients reach every encoder."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = spaces.Dict(
            {
                "grey": spaces.Box(0, 255, (SIZE, SIZE), np.uint8),
                "frames": spaces.Box(0, 255, (2, 3, 9, 8), np.uint8),
                "box": spaces.Box(-5.0, 5.0, (3,), np.float32),
                "bits": spaces.MultiBinary(2),
                "index": spaces.Discrete(4, start=2),
            }
        )

    def reset(self, *, seed=None, options=None):
        if seed is not None:  # the parts drawn by the space's own generator: seeded too
            self.observation_space.seed(seed)
        return super().reset(seed=seed, options=options)

    def _obs(self):
        obs = self.observation_space.sample()
        obs["grey"] = self.image.max(axis=2)
        return obs


class NoiseImageEnv(gym.Env):
    """Random uint8 images of any shape (``shape``), Discrete(2) actions (action 1 rewarded,
    so that gradients flow): for sizes and speed."""

    def __init__(self, shape: tuple[int, ...] = (4, 84, 84)) -> None:
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:  # the frames come from the space's own generator
            self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), float(action), False, False, {}


ENVS = {
    "acrl-tests/PixelSide-v0": (PixelSideEnv, {}),
    "acrl-tests/PixelSideCHW-v0": (PixelSideEnv, {"layout": "chw"}),
    "acrl-tests/PixelSideBool-v0": (PixelSideEnv, {"dtype": "bool"}),
    "acrl-tests/PixelDict-v0": (PixelDictEnv, {}),
    "acrl-tests/PixelMixed-v0": (PixelMixedEnv, {}),
    "acrl-tests/PixelCube-v0": (NoiseImageEnv, {"shape": (10, 10, 10)}),  # channels ambiguous
}


def register_image_envs() -> None:
    for env_id, (entry_point, kwargs) in ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id, entry_point=entry_point, max_episode_steps=EPISODE_STEPS, kwargs=kwargs
            )


register_image_envs()
