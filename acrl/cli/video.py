"""``acrl video``: MP4 files of a saved model's episodes, with their returns."""

from __future__ import annotations

import argparse

from acrl.errors import UserError


def cmd_video(args: argparse.Namespace) -> int:
    from acrl.algorithms.registry import load_model
    from acrl.run.video import record_episodes

    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    model = load_model(args.path, device="cpu")
    if model.env_id is None:
        raise UserError(f"{args.path}: the model does not record its environment id")
    out = args.out or (args.path if args.path.is_dir() else args.path.parent) / "videos"
    try:
        episodes = record_episodes(
            model,
            model.env_id,
            out,
            args.episodes,
            args.seed,
            model.env_kwargs,
            deterministic=not args.stochastic,
        )
    except OSError as exc:
        raise UserError(f"cannot write videos to {out}: {exc.strerror or exc}") from None
    for episode in episodes:
        print(f"{episode.path}: return {episode.episode_return:.2f}, {episode.length} steps")
    return 0
