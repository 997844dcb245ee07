"""``acrl report``: one offline HTML page of a run's (or several runs') curves, diagnostics,
config and videos."""

from __future__ import annotations

import argparse

from acrl.errors import UserError


def cmd_report(args: argparse.Namespace) -> int:
    out = args.out or args.run_dirs[0] / "report.html"
    if out.suffix.lower() != ".html":
        raise UserError(f"--out must name a .html file, got {out}")
    if args.out is None:
        from acrl.run.owned import check_replaceable

        check_replaceable(out)
    from acrl.plotting.report import build_report
    from acrl.run.atomic import write_atomic

    page = build_report(args.run_dirs, args.target)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page.encode())
    print(f"report: {out} ({len(page) / 1e6:.1f} MB, opens offline)")
    return 0
