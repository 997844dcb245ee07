"""``acrl plot``: learning curves and diagnostics of runs, or a policy slice of one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from acrl.errors import UserError


def cmd_plot(args: argparse.Namespace) -> int:
    if args.window < 1:
        raise UserError(f"--window must be >= 1, got {args.window}")
    if args.resolution < 2:
        raise UserError(f"--resolution must be >= 2, got {args.resolution}")
    if args.policy_slice:
        return _policy_slice(args)
    out = args.out or args.run_dirs[0] / "learning_curve.png"
    _check_png(out)
    if args.out is None:
        from acrl.run.owned import check_replaceable

        for path in (out, out.with_name("learning_curve-diagnostics.png")):
            check_replaceable(path)
    from acrl.plotting.curves import save_curves
    from acrl.plotting.runs import load_runs, solved_threshold

    runs = load_runs(args.run_dirs)
    target = args.target if args.target is not None else solved_threshold(runs[0].env_id)
    curve, diag = save_curves(runs, out, target, args.window, args.band)
    print(f"learning curve: {curve}\ndiagnostics: {diag}")
    return 0


def _policy_slice(args: argparse.Namespace) -> int:
    from acrl.cli.evaluate import load_cpu_model

    if len(args.run_dirs) != 1:
        raise UserError("--policy-slice draws one run: give one RUN_DIR (or a .acrl file)")
    path = args.run_dirs[0]
    dims = _numbers(args.dims, "--dims", int)
    model = load_cpu_model(path)
    from acrl.plotting.curves import save
    from acrl.plotting.policy_slice import check_dims, policy_slice

    size = check_dims(model, dims)
    fixed = None if args.fixed is None else _numbers(args.fixed, "--fixed", float)
    if fixed is not None and len(fixed) != size:
        raise UserError(f"--fixed needs {size} values (one per observation dim), got {len(fixed)}")
    ranges = None if args.ranges is None else _ranges(args.ranges)
    out = args.out or (path if path.is_dir() else path.parent) / (
        f"policy_slice_{dims[0]}_{dims[1]}.png"
    )
    _check_png(out)
    fig = policy_slice(model, dims, fixed, ranges, args.resolution)
    print(f"policy slice: {save(fig, out)}")
    return 0


def _numbers(text: str, flag: str, kind: type) -> list:
    try:
        return [kind(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _ranges(text: str) -> list[tuple[float, float]]:
    try:
        pairs = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        pairs = []
    if len(pairs) != 2 or any(len(p) != 2 or not p[0] < p[1] for p in pairs):
        raise UserError(f"--range takes LOW:HIGH,LOW:HIGH with LOW < HIGH, got {text!r}")
    return [(p[0], p[1]) for p in pairs]


def _check_png(out: Path) -> None:
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file, got {out}")
