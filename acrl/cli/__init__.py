"""The ``acrl`` command line: train, eval, plot, report, video, export, tune, presets.

Each command lives in its own module; this one builds the parser and turns a user's
mistake (UserError) into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from acrl.cli.arguments import steps
from acrl.cli.streams import EXIT_PIPE, silence_stdout, stdout_reader_gone
from acrl.errors import NonFiniteError, UserError, WorkerError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acrl", description="Advantage actor-critic (A2C, A3C) on Gymnasium.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub.add_parser("train", help="train an agent and write a run directory"))
    _add_eval(sub.add_parser("eval", help="evaluate a saved model on its environment"))
    _add_plot(sub.add_parser("plot", help="plot learning curves, diagnostics, policy slices"))
    _add_video(sub.add_parser("video", help="record MP4 videos of a saved model"))
    _add_export(
        sub.add_parser("export", help="export the deterministic policy (ONNX, TorchScript)")
    )
    _add_report(sub.add_parser("report", help="one self-contained HTML report of runs"))
    from acrl.cli.presets import add_presets

    add_presets(sub.add_parser("presets", help="list the presets, or print one's settings"))
    from acrl.cli.tune import add_tune

    add_tune(sub.add_parser("tune", help="search hyperparameters with Optuna (acrl[tune])"))
    return parser


def _add_train(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "env_id", nargs="?", help="Gymnasium env id, or a preset name (see `acrl presets`)"
    )
    train.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue RUN_DIR from its latest checkpoint to its step budget (or --timesteps)",
    )
    train.add_argument("--algo", help="algorithm: a2c or a3c (default: a2c)")
    train.add_argument(
        "--config",
        type=Path,
        metavar="FILE.yml",
        help="settings from a YAML file: a preset entry's keys, or a run's config.yaml "
        "(applied over the preset; --seed, --timesteps, --n-envs and --set apply over it)",
    )
    train.add_argument("--timesteps", type=steps, help="environment steps (default: the preset's)")
    train.add_argument("--seed", type=int, help="random seed (default: 0)")
    train.add_argument(
        "--seeds", help="comma-separated seeds: one run per seed, then summary.json and plots"
    )
    train.add_argument(
        "--jobs", type=int, default=1, help="with --seeds: runs at a time (default: 1)"
    )
    train.add_argument("--n-envs", type=int, help="parallel environments (default: the preset's)")
    train.add_argument("--preset", help="preset name (default: the env's own preset, if any)")
    train.add_argument(
        "--workers",
        type=int,
        help="A3C workers (default: the preset's, 2; without a preset, one per core)",
    )
    train.add_argument(
        "--backend",
        choices=("auto", "torch", "numpy", "processes", "ray"),
        help="compute backend: auto (the default: numpy for small MLPs and CNNs on the CPU, else "
        "torch), "
        "torch or numpy (processes and ray: the old spelling of --runtime)",
    )
    train.add_argument(
        "--runtime",
        choices=("processes", "ray"),
        help="A3C workers: processes on this machine (default) or Ray actors (acrl[ray])",
    )
    train.add_argument(
        "--address",
        metavar="ADDR",
        help="with --runtime ray: join the Ray cluster at ADDR (e.g. auto, or HOST:6379); "
        "without it a local Ray instance starts",
    )
    train.add_argument(
        "--checkpoint-every",
        type=steps,
        metavar="STEPS",
        help="save the model into the run directory every STEPS steps (default: 100000; "
        "--resume keeps the run's)",
    )
    train.add_argument(
        "--keep-checkpoints",
        type=int,
        metavar="K",
        help="checkpoints kept in RUN_DIR/checkpoints (default: 2; --resume keeps the run's)",
    )
    train.add_argument(
        "--video-every",
        type=steps,
        metavar="STEPS",
        help="record one deterministic episode into RUN_DIR/videos every STEPS steps",
    )
    train.add_argument(
        "--eval-every",
        type=steps,
        metavar="STEPS",
        help="evaluate every STEPS steps on an env of its own: RUN_DIR/evaluations.csv, the "
        "best model in RUN_DIR/best_model.acrl (--resume keeps the run's)",
    )
    train.add_argument(
        "--eval-episodes",
        type=int,
        metavar="N",
        help="deterministic episodes per evaluation (default: 10)",
    )
    train.add_argument(
        "--target",
        type=float,
        help="return that counts as solved in summary.json (default: the env's threshold)",
    )
    train.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set learning_rate=1e-3 "
        "--set policy_kwargs.net_arch=[64,64]",
    )
    train.add_argument(
        "--run-dir", type=Path, help="output directory (default: runs/ENV__ALGO__sSEED__TIME)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="A2C as one rank of a torchrun job: `torchrun --nproc-per-node K -m acrl train "
        "ENV --distributed` (gradients averaged over ranks; rank 0 writes the run)",
    )
    train.add_argument(
        "--log-interval",
        type=int,
        help="updates between metrics rows (default: about 200 rows a run; --resume keeps the "
        "run's)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_env_module(train)
    train.add_argument(
        "--device", default="cpu", help="torch device (default: cpu, fastest for MLPs)"
    )
    train.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        help="torch CPU threads while training (default: auto, as the Python API: 1 for "
        "updates of up to 800 transitions on the CPU, else torch's default; results depend "
        "on it, so keep it fixed to reproduce a run)",
    )


def _add_eval(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("path", type=Path, help="a model file (.acrl) or a run directory")
    evaluate.add_argument(
        "--episodes", type=int, default=10, help="complete episodes (default: 10)"
    )
    evaluate.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of the mode"
    )
    evaluate.add_argument("--json", action="store_true", help="print {mean, std, episodes} as JSON")
    evaluate.add_argument(
        "--seed", type=int, default=0, help="seed of the evaluation envs (default: 0)"
    )
    evaluate.add_argument(
        "--n-envs", type=int, help="parallel evaluation envs, up to --episodes (default: up to 8)"
    )
    _add_threads(evaluate)
    _add_env_module(evaluate)


def _add_plot(plot: argparse.ArgumentParser) -> None:
    plot.add_argument(
        "run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run or multi-seed directories"
    )
    plot.add_argument(
        "--out",
        type=Path,
        help="learning-curve PNG; diagnostics go beside it as NAME-diagnostics.png "
        "(default: learning_curve.png in the first RUN_DIR)",
    )
    plot.add_argument("--target", type=float, help="dashed line (default: the env's threshold)")
    plot.add_argument(
        "--window", type=int, default=100, help="episodes in the moving average (default: 100)"
    )
    plot.add_argument(
        "--band", choices=("std", "ci95"), default="std", help="band across seeds (default: std)"
    )
    plot.add_argument(
        "--policy-slice",
        action="store_true",
        help="heatmaps of the policy and value over two observation dims of one run",
    )
    plot.add_argument("--dims", default="0,1", help="with --policy-slice: I,J (default: 0,1)")
    plot.add_argument(
        "--fixed",
        help="with --policy-slice: a value per observation dim (default: zeros); "
        "write --fixed=-1,0,... when the first is negative",
    )
    plot.add_argument(
        "--range",
        dest="ranges",
        help="with --policy-slice: LOW:HIGH,LOW:HIGH for dims I and J "
        "(default: the ranges that the trained policy visits); write --range=-1:1,... "
        "when the first is negative",
    )
    plot.add_argument(
        "--resolution", type=int, default=101, help="grid points per axis (default: 101)"
    )
    _add_env_module(plot)


def _add_report(report: argparse.ArgumentParser) -> None:
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", type=Path, help="the HTML file (default: RUN_DIR/report.html)")
    report.add_argument("--target", type=float, help="return line (default: the env's threshold)")
    _add_env_module(report)


def _add_export(export: argparse.ArgumentParser) -> None:
    export.add_argument("path", type=Path, help="a model file (.acrl) or a run directory")
    export.add_argument(
        "--format", default="onnx", help="onnx (the default; needs acrl[export]) or torchscript"
    )
    export.add_argument(
        "--out", type=Path, help="the file to write (default: policy.onnx or policy.pt beside PATH)"
    )
    _add_env_module(export)


def _add_video(video: argparse.ArgumentParser) -> None:
    video.add_argument("path", type=Path, help="a model file (.acrl) or a run directory")
    video.add_argument("--episodes", type=int, default=1, help="episodes to record (default: 1)")
    video.add_argument("--out", type=Path, help="output directory (default: PATH's videos/)")
    video.add_argument(
        "--seed", type=int, default=0, help="episode i is reset with seed+i (default: 0)"
    )
    video.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of the mode"
    )
    _add_env_module(video)


def _add_env_module(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-module",
        dest="env_modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): the module of yours that registers the env "
        "of a model file or run (acrl never imports a module that a file names)",
    )


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_positive_threads,
        default=1,
        help="torch CPU threads (default: 1, the fastest for classic-control MLPs)",
    )


def _threads(text: str) -> int | str:
    return text if text == "auto" else _positive_threads(text)


def _positive_threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--threads must be >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "env_modules", None):  # the user's act, before anything else
            from acrl.envs.ids import import_env_module

            for module in args.env_modules:
                import_env_module(module)
        if args.command == "train":
            from acrl.cli.train import cmd_train

            return cmd_train(args)
        if args.command == "eval":
            from acrl.cli.evaluate import cmd_eval

            return cmd_eval(args)
        if args.command == "plot":
            from acrl.cli.plot import cmd_plot

            return cmd_plot(args)
        if args.command == "video":
            from acrl.cli.video import cmd_video

            return cmd_video(args)
        if args.command == "export":
            from acrl.cli.export import cmd_export

            return cmd_export(args)
        if args.command == "report":
            from acrl.cli.report import cmd_report

            return cmd_report(args)
        if args.command == "tune":
            from acrl.cli.tune import cmd_tune

            return cmd_tune(args)
        from acrl.cli.presets import cmd_presets

        return cmd_presets(args)
    except UserError as exc:
        print(f"acrl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling (torch importing)
        print("acrl: interrupted", file=sys.stderr)
        return 130
    except (WorkerError, NonFiniteError) as exc:  # an env's fault outside training
        print(f"acrl: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only folder: the system's refusal, one line
        if isinstance(exc, BrokenPipeError) and stdout_reader_gone():  # `acrl ... | head`
            silence_stdout()  # the reader has all it wanted; nothing left to flush at exit
            return EXIT_PIPE
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"acrl: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def _version() -> str:
    from acrl import __version__

    return f"acrl {__version__}"


if __name__ == "__main__":
    sys.exit(main())
