"""The files acrl owns in a run directory, and the only ways it removes files.

acrl deletes a file only when it can show that it wrote it: an exact name it gives its own
files (``checkpoints/step-000000004096.acrl``, ``.model.acrl.k3x9a_2q.tmp``, never a glob
that a user's ``step-best.acrl`` or ``.tmp_notes.txt`` would match), a regular file (not a
folder, not a symlink), in the run directory itself or in a real sub-directory of it (never
through a symlink), and one that holds what acrl writes under that name (acrl.run.provenance;
a run's files are checked so before ``--overwrite`` removes or a run replaces them). A
sub-directory that acrl writes into and that is a symlink is refused.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from acrl.errors import UserError
from acrl.run.provenance import is_acrl_model, written_by_acrl

CHECKPOINTS = "checkpoints"
VIDEOS = "videos"

# What a run writes at the top of its directory; --overwrite removes exactly these.
RUN_FILES = (
    "model.acrl",
    "config.yaml",
    "metrics.csv",
    "episodes.csv",
    "advantages.npy",
    "advantages.png",
    "summary.json",
    "learning_curve.png",
    "learning_curve-diagnostics.png",
    "evaluations.csv",
    "best_model.acrl",
    "report.html",
    "policy.onnx",
    "policy.pt",
)
TENSORBOARD = re.compile(r"events\.out\.tfevents\.\d+\.[^/]+")
CHECKPOINT = re.compile(r"step-(\d{12})\.acrl")
VIDEO = re.compile(r"step-\d{9}(-\d+)?\.mp4")
# Temporary files of a write that a kill interrupted: a model file's (tempfile.mkstemp's
# eight characters), model.acrl's hard link, and the files acrl.run.atomic rewrites.
TEMP = re.compile(
    r"\.(model\.acrl|step-\d{12}\.acrl|metrics\.csv|episodes\.csv|config\.yaml|advantages\.npy"
    r"|best_model\.acrl|evaluations\.csv|report\.html|policy\.onnx|policy\.pt)"
    r"\.[a-z0-9_]{8}\.tmp"
    r"|\.model\.acrl\.latest\.tmp"
    r"|\.(metrics|episodes)\.csv\.tmp"  # acrl 0.3's rewrite of the logs at a resume
)
# safetensors' save_file (acrl 0.2 and 0.3 wrote with it) renames its own ".tmpXXXXXX"; such a
# file is ours only if it starts as a safetensors file whose header names acrl's format.
SAFETENSORS_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def checkpoint_name(timesteps: int) -> str:
    """The file name of the checkpoint at ``timesteps`` steps."""
    return f"step-{timesteps:012d}.acrl"


def is_regular_file(path: Path) -> bool:
    """A regular file itself, not a symlink to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def check_run_file_names(run_dir: Path, contents: bool = True) -> None:
    """UserError if a name acrl writes at the top of ``run_dir`` is taken by anything but a
    regular file (a symlink, a folder), or (``contents``) if a file under one of a run's names
    (checkpoints and videos included) does not hold what acrl writes there
    (acrl.run.provenance): acrl never writes through a link, nor replaces or removes what it
    did not write, so the run stops before it changes anything."""
    for name in RUN_FILES:
        path = run_dir / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UserError(f"run dir {run_dir}: cannot read {name}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
            raise UserError(
                f"run dir {run_dir}: {name} is {kind}, and acrl writes its {name} only as a "
                "file of its own; move it out of the run directory"
            )
    if contents:
        check_contents(run_dir, _run_files(run_dir), "move it out of the run directory")


def check_contents(run_dir: Path, paths: list[Path], advice: str) -> None:
    """UserError naming the first of ``paths`` (in ``run_dir``) that does not hold what acrl
    writes under its name."""
    for path in paths:
        check_replaceable(path, advice, f"run dir {run_dir}: {path.relative_to(run_dir)}")


def check_replaceable(
    path: Path,
    advice: str = "move it, or name another file with --out",
    named: str | None = None,
    check: Callable[[Path], bool] | None = None,
) -> None:
    """UserError if ``path``, a file acrl is about to replace (a default output of ``acrl
    plot``, ``report`` or ``export``, a video, an evaluations.csv, a study's results), holds
    a regular file that acrl did not write there (``check``: by default the run file check
    for its name): acrl replaces only its own. A symlink there is replaced, not followed."""
    if is_regular_file(path) and not written_by_acrl(path, check):
        raise not_acrls(named or str(path), advice)


def not_acrls(named: str, advice: str) -> UserError:
    """The one line for a file (``named``) under an acrl name that acrl did not write."""
    return UserError(
        f"{named} does not hold what acrl writes under that name, and acrl replaces or "
        f"removes only its own files; {advice}"
    )


def real_subdir(run_dir: Path, name: str) -> Path:
    """``run_dir/name`` if it is a real directory or absent; UserError if it is a symlink or
    anything else, since acrl writes and deletes there."""
    path = run_dir / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise UserError(f"run dir {run_dir}: cannot read {name}/: {exc.strerror}") from None
    if stat.S_ISLNK(mode):
        raise UserError(
            f"run dir {run_dir}: {name}/ is a symlink; acrl writes and deletes its files only "
            "in a real directory inside the run dir (replace the link with a directory)"
        )
    if not stat.S_ISDIR(mode):
        raise UserError(f"run dir {run_dir}: {name} is not a directory")
    return path


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's checkpoint files as (step, path), oldest first."""
    folder = real_subdir(run_dir, CHECKPOINTS)
    return sorted(
        (int(m.group(1)), path)
        for path, m in _matching(folder, CHECKPOINT)
        if is_regular_file(path)
    )


def remove(path: Path) -> None:
    """Delete ``path`` if it is a regular file (a symlink or a folder of that name stays)."""
    if is_regular_file(path):
        path.unlink(missing_ok=True)


def remove_run_files(run_dir: Path) -> None:
    """What ``--overwrite`` removes: the run's own files, checkpoints, videos and events.
    Nothing at all if a folder it would empty is a symlink, or if a file of acrl's name does
    not hold what acrl writes there (acrl.run.provenance): a UserError names it."""
    run_files = _run_files(run_dir)
    check_contents(run_dir, run_files, "--overwrite changed nothing; move the file out")
    for path in run_files:
        path.unlink(missing_ok=True)


def _run_files(run_dir: Path) -> list[Path]:
    """The regular files under the names a run gives its files: its own, TensorBoard's
    event files, checkpoints and videos."""
    run_files = [run_dir / name for name in RUN_FILES]
    run_files += [path for path, _ in _matching(run_dir, TENSORBOARD)]
    run_files += [path for _, path in checkpoints(run_dir)]
    run_files += [path for path, _ in _matching(real_subdir(run_dir, VIDEOS), VIDEO)]
    return [path for path in run_files if is_regular_file(path)]


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files that a process killed mid-write left (never a whole model:
    a file only gets its real name once complete); the paths removed."""
    removed = []
    for folder in (run_dir, real_subdir(run_dir, CHECKPOINTS)):
        for path, _ in _matching(folder, TEMP):
            if is_regular_file(path):
                removed.append(path)
        for path, _ in _matching(folder, SAFETENSORS_TEMP):
            if is_regular_file(path) and is_acrl_model(path):
                removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _matching(folder: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Path, re.Match[str]]]:
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is not None:
            yield folder / name, match
