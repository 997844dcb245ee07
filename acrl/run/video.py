"""MP4 videos of a policy: deterministic episodes rendered headless (``rgb_array``).

Frames stream into ffmpeg (imageio-ffmpeg's bundled binary) as they are rendered, so a
1000-step episode does not sit in memory. An episode of N steps gives N + 1 frames: the
initial state and one per step. Gymnasium's RecordVideo goes through moviepy, which can
drop the last frame when N + 1 frames do not fill a whole number of 1/fps periods in
floating point (Pendulum-v1: 201 frames recorded, 200 written); this writer does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from acrl.run.evaluation import Predictor

DEFAULT_FPS = 30


@dataclass(frozen=True)
class Episode:
    """A recorded episode: its video file, return and number of steps."""

    path: Path
    episode_return: float
    length: int


def record_episodes(
    model: Predictor,
    env_id: str,
    out_dir: Path,
    episodes: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    name: str = "episode",
    deterministic: bool = True,
) -> list[Episode]:
    """Record ``episodes`` episodes to ``out_dir/{name}-{i}.mp4`` (episode i reset with seed+i)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders with no display
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    out_dir.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id, render_mode="rgb_array", **(env_kwargs or {}))
    fps = int(env.metadata.get("render_fps") or DEFAULT_FPS)
    recorded = []
    try:
        for i in range(episodes):
            suffix = f"-{i}" if episodes > 1 else ""
            path = out_dir / f"{name}{suffix}.mp4"
            total, length = _record_one(model, env, path, seed + i, fps, deterministic)
            recorded.append(Episode(path, total, length))
    finally:
        env.close()
    return recorded


def _record_one(
    model: Predictor, env: gym.Env, path: Path, seed: int, fps: int, deterministic: bool
) -> tuple[float, int]:
    import imageio_ffmpeg

    obs, _ = env.reset(seed=seed)
    frame = _frame(env)
    height, width = frame.shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        quality=7,
        macro_block_size=2,  # yuv420p needs even sides; other sizes are kept as rendered
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start ffmpeg
    total, length = 0.0, 0
    try:
        writer.send(np.ascontiguousarray(frame))
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = bool(terminated or truncated)
            writer.send(np.ascontiguousarray(_frame(env)))
    finally:
        writer.close()
    return total, length


def _frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError(f"{env.spec.id if env.spec else env} cannot render rgb_array frames")
    return frame
