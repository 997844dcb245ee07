"""``acrl export``: a saved model's deterministic policy as ONNX or TorchScript."""

from __future__ import annotations

import argparse

from acrl.errors import UserError


def cmd_export(args: argparse.Namespace) -> int:
    from acrl.cli.evaluate import load_cpu_model
    from acrl.run.model_path import FORMATS

    if args.format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    folder = args.path if args.path.is_dir() else args.path.parent
    out = args.out or folder / f"policy{FORMATS[args.format]}"
    if out.is_dir():
        name = f"policy{FORMATS[args.format]}"
        raise UserError(f"--out {out} is a directory; name the file to write, e.g. {out / name}")
    if args.out is None:
        from acrl.run.owned import check_replaceable

        check_replaceable(out)
    model = load_cpu_model(args.path)  # a wrong path: one line, before torch
    from acrl.run.export import export_policy

    path = export_policy(model, out, args.format)
    inputs = "obs, state" if model.policy.recurrent else "obs"
    outputs = "action, next_state" if model.policy.recurrent else "action"
    print(f"{path}: ({inputs}) -> ({outputs}), deterministic")
    return 0
