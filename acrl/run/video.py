"""MP4 videos of a policy: deterministic episodes rendered headless (``rgb_array``).

Frames stream into ffmpeg (imageio-ffmpeg's bundled binary) as they are rendered, so a
1000-step episode does not sit in memory. An episode of N steps gives N + 1 frames: the
initial state and one per step. Gymnasium's RecordVideo goes through moviepy, which can
drop the last frame when N + 1 frames do not fill a whole number of 1/fps periods in
floating point (Pendulum-v1: 201 frames recorded, 200 written); this writer does not.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from acrl.config.wrappers import EnvWrapper
from acrl.engines.signals import stop_asked
from acrl.envs import (
    WrapperStack,
    check_named_env,
    check_spaces,
    env_failed_to_start,
    wrapper_classes,
)
from acrl.envs.frame_skip import FrameSkip
from acrl.errors import UserError
from acrl.learner.rollout import EnvCalls
from acrl.run.atomic import publish
from acrl.run.evaluation import EvaluationStopped, Predictor, watched_calls
from acrl.run.owned import check_replaceable

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
    named_by: str = "record_episodes' env",
    wrappers: Sequence[EnvWrapper] = (),
) -> list[Episode]:
    """Record ``episodes`` episodes to ``out_dir/{name}-{i}.mp4`` (episode i reset with seed+i).

    ``env_id`` and ``wrappers`` (around the env, innermost first) never import a module
    ("pkg:Env-v0" needs ``pkg`` imported already: they are usually a model's, which its
    file, ``named_by``, named). Nothing is written if the env cannot be made, if its
    observation space is not the model's (when the model has one), or if a file under one of
    the names holds something other than an acrl video (UserError).
    """
    paths = [out_dir / f"{name}{f'-{i}' if episodes > 1 else ''}.mp4" for i in range(episodes)]
    for path in paths:  # acrl replaces only its own videos
        check_replaceable(path, "move it, or record into another folder")
    env = make_render_env(env_id, env_kwargs, named_by, wrappers)
    try:
        _check_observations(model, env, named_by)
        out_dir.mkdir(parents=True, exist_ok=True)
    except BaseException:
        env.close()
        raise
    fps = _fps(env)
    recorded = []
    try:
        for i, path in enumerate(paths):
            with watched_calls(env) as calls:
                total, length = _record_one(model, env, path, seed + i, fps, deterministic, calls)
            recorded.append(Episode(path, total, length))
    finally:
        env.close()
    return recorded


def _check_observations(model: Predictor, env: gym.Env, named_by: str) -> None:
    """A one-line UserError if the env's observations are not what the model takes."""
    expected = getattr(model, "observation_space", None)
    if expected is not None:
        try:
            check_spaces(env.observation_space, expected, "observation")
        except UserError as exc:
            raise UserError(f"{named_by}: {exc}") from None


def make_render_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    named_by: str = "the video's env",
    wrappers: Sequence[EnvWrapper] = (),
) -> gym.Env:
    """``env_id`` inside ``wrappers``, rendering ``rgb_array`` frames headless; a one-line
    UserError if it cannot be made (``env_kwargs`` that ask for another render mode, an env
    that fails to start, a wrapper that cannot be rebuilt)."""
    kwargs = dict(env_kwargs or {})
    render_mode = kwargs.pop("render_mode", None)
    if render_mode not in (None, "rgb_array"):
        raise UserError(
            f"{named_by} sets env_kwargs.render_mode to {render_mode!r}, but a video records "
            "'rgb_array' frames (record_episodes takes env_kwargs without render_mode)"
        )
    check_named_env(env_id, kwargs, named_by)
    classes = wrapper_classes(wrappers, named_by)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders with no display
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"{env_id} needs a package that is not installed: {exc}") from None
    except Exception as exc:
        raise env_failed_to_start(env_id, exc) from None
    return WrapperStack(wrappers, classes)(env)


def _record_one(
    model: Predictor,
    env: gym.Env,
    path: Path,
    seed: int,
    fps: int,
    deterministic: bool,
    calls: EnvCalls,
) -> tuple[float, int]:
    import imageio_ffmpeg

    obs, _ = calls.run("reset()", env.reset, seed=seed)
    frame = _frame(env)
    height, width = frame.shape[:2]
    # written beside the file, then renamed over it: a symlink at ``path`` is replaced, never
    # written through, and a failure leaves no half video
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    writer = imageio_ffmpeg.write_frames(
        tmp,
        (width, height),
        fps=fps,
        quality=7,
        macro_block_size=2,  # yuv420p needs even sides; other sizes are kept as rendered
        ffmpeg_log_level="error",
        output_params=["-f", "mp4"],  # the temporary name says no format
    )
    total, length = 0.0, 0
    try:
        writer.send(None)  # start ffmpeg
        writer.send(np.ascontiguousarray(frame))
        done = False
        state: Any = None  # a recurrent policy's, from the episode's start
        while not done:
            if stop_asked():  # a stop signal while training films: honoured now
                raise EvaluationStopped
            action, state = model.predict(obs, state=state, deterministic=deterministic)
            obs, reward, terminated, truncated, _ = calls.run("step()", env.step, action)
            total += float(reward)
            length += 1
            done = bool(terminated or truncated)
            writer.send(np.ascontiguousarray(_frame(env)))
        writer.close()
        publish(Path(tmp), path)
    except BaseException:
        writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return total, length


ATARI_HZ = 60  # frames a second of the Atari 2600's screen


def _fps(env: gym.Env) -> int:
    """Frames a second that play the episode in real time: the screen's rate (an Atari
    game's 60 Hz, else the env's render_fps) over the frames each step skips (ALE's own,
    AtariPreprocessing's, FrameSkip's)."""
    base = env.unwrapped
    rate, skip = int(env.metadata.get("render_fps") or DEFAULT_FPS), 1.0
    if type(base).__module__.startswith("ale_py"):
        rate, frames = ATARI_HZ, getattr(base, "_frameskip", 1)
        # a random skip in [low, high) (v0 ids): its mean
        skip = frames if isinstance(frames, int) else statistics.fmean(range(*frames))
    layer: Any = env
    while isinstance(layer, gym.Wrapper):
        if type(layer).__name__ == "AtariPreprocessing":
            skip *= int(getattr(layer, "frame_skip", 1))
        elif isinstance(layer, FrameSkip):
            skip *= layer.skip
        layer = layer.env
    return max(1, round(rate / skip))


MIN_VIDEO_SIDE = 160  # smaller frames (MinAtar's 10x10) are enlarged, each pixel a block
# Gymnasium's env checker warns of what the writer handles: no render_fps (_fps picks the
# rate) and float frames (_frame scales them to bytes); MinAtar's envs trip both.
HANDLED_RENDER_WARNINGS = (r".*No render fps was declared", r".*RGB-array rendering should return")


def _frame(env: gym.Env) -> np.ndarray:
    """The env's frame as uint8 RGB: float colours in [0, 1] (MinAtar's) scaled to bytes, and
    small frames enlarged by a whole factor (nearest neighbour: the game's own pixels)."""
    with warnings.catch_warnings():
        for message in HANDLED_RENDER_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError(f"{env.spec.id if env.spec else env} cannot render rgb_array frames")
    if frame.dtype.kind == "f":
        frame = (np.clip(frame, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    factor = -(-MIN_VIDEO_SIDE // max(1, min(frame.shape[:2])))
    if factor > 1:
        frame = frame.repeat(factor, axis=0).repeat(factor, axis=1)
    return frame
