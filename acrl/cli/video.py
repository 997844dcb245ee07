"""``acrl video``: MP4 files of a saved model's episodes, with their returns."""

from __future__ import annotations

import argparse
import contextlib

from acrl.cli.run_dir import holds_a_run
from acrl.errors import UserError
from acrl.run.lock import RunLock
from acrl.run.owned import VIDEOS, real_subdir


def cmd_video(args: argparse.Namespace) -> int:
    from acrl.cli.evaluate import check_seed_flag, load_cpu_model

    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    check_seed_flag(args.seed)
    model = load_cpu_model(args.path)
    from acrl.run.video import record_episodes

    if model.env_id is None:
        raise UserError(f"{args.path}: the model does not record its environment id")
    model.check_env()  # an env module the file names, an env not installed: before any file
    folder = args.path if args.path.is_dir() else args.path.parent
    into_run = args.out is None and holds_a_run(folder)  # a run's videos/: its writer's lock
    out = args.out or real_subdir(folder, VIDEOS)
    with RunLock(folder) if into_run else contextlib.nullcontext():
        try:
            episodes = record_episodes(
                model,
                model.env_id,
                out,
                args.episodes,
                args.seed,
                model.env_kwargs,
                deterministic=not args.stochastic,
                named_by=str(args.path),
                wrappers=model.env_wrappers,
            )
        except OSError as exc:
            raise UserError(f"cannot write videos to {out}: {exc.strerror or exc}") from None
    for episode in episodes:
        print(f"{episode.path}: return {episode.episode_return:.2f}, {episode.length} steps")
    return 0
