"""Claiming a run directory for ``acrl train``: made, or emptied of a run with --overwrite,
and locked (acrl.run.lock) for as long as the run writes it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from acrl.errors import UserError
from acrl.run import lock
from acrl.run.owned import check_run_file_names, remove_run_files
from acrl.run.provenance import is_run_config, is_summary


def check_run_dir_path(run_dir: Path) -> None:
    """Refuse a run dir that is the current directory (``--run-dir ""`` too) or one of its
    parents: --overwrite would empty the user's own folder."""
    here = Path.cwd().resolve()
    there = run_dir.resolve()
    if there == here or there in here.parents:
        raise UserError(
            f"--run-dir {run_dir} is the current directory or one of its parents; "
            "name a directory of its own for the run"
        )


@contextlib.contextmanager
def claimed_run_dir(run_dir: Path, overwrite: bool) -> Iterator[Path]:
    """``run_dir`` made (or, with ``overwrite``, emptied of a previous run's files) and locked
    until the block ends; a UserError, with nothing changed, if another process holds it,
    if it holds something without ``overwrite``, or if it is not a run's directory."""
    check_run_dir_path(run_dir)
    try:
        run_dir.mkdir(parents=True)  # atomic: two runs cannot both create the same directory
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise UserError(f"cannot create run dir {run_dir}: {exc.strerror}") from None
    if not created and not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} exists and is not a directory")
    with lock.RunLock(run_dir):  # a run that raced us to a new directory holds it
        check_run_file_names(run_dir, contents=False)  # --overwrite checks what it removes
        entries = [p for p in run_dir.iterdir() if p.name != lock.LOCK_NAME]
        if entries:
            if not overwrite:
                raise UserError(f"run dir {run_dir} already exists; pass --overwrite to replace it")
            if not holds_a_run(run_dir):
                raise UserError(
                    f"run dir {run_dir} holds files but no acrl run (no config.yaml written by "
                    "acrl train); --overwrite replaces only a run's directory"
                )
            if not os.access(run_dir, os.W_OK):
                raise UserError(f"cannot overwrite run dir {run_dir}: it is read-only")
            remove_run_files(run_dir)
        lock.announce_takeover(run_dir)  # past the checks: the run goes ahead
        yield run_dir


def holds_a_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run's directory: a config.yaml of ``acrl train``'s, or the
    summary or seed directories of a multi-seed run."""
    if is_run_config(run_dir / "config.yaml"):
        return True
    if is_summary(run_dir / "summary.json"):
        return True
    return any(
        path.name.startswith("seed-") and is_run_config(path / "config.yaml")
        for path in run_dir.iterdir()
        if path.is_dir() and not path.is_symlink()
    )
