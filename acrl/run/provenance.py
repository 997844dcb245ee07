"""Whether a file in a run directory (or a study directory of ``acrl tune``) is one acrl
wrote, judged by what it holds.

A name alone proves nothing: a user may keep their own ``report.html`` or ``metrics.csv`` in
a folder they train into. Before ``--overwrite`` removes a run's files, each must also look
like acrl's own on the inside: a model file whose header names acrl's format, a config or
summary as ``acrl train`` writes them, a CSV log whose header is acrl's columns (or a prefix
of them, a header a kill cut), a NumPy array, a Matplotlib PNG, an acrl report, an ONNX or
TorchScript export of PyTorch's, a TensorBoard event file, an MP4 (and in a study
directory, acrl tune's trials.csv columns, best.yml's header line, its plots). Only the
first bytes (a header, a zip directory) are read; nothing is imported, unpickled or run. An
empty file holds nothing to lose and counts as acrl's (a kill can leave one).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

from acrl.run.log_files import COLUMNS, EPISODE_COLUMNS, EVALUATION_COLUMNS

HEAD = 4096  # the bytes a check reads (a model file's header is read whole)
MAX_HEADER = 1 << 24  # the largest safetensors header acrl reads
CONFIG_BYTES = 1 << 20  # config.yaml and summary.json are read whole up to this size
REPORT_START = b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>acrl report"
BEST_START = b"# acrl tune: "  # how acrl tune's best.yml begins
TRIAL_COLUMNS = ("number", "state", "value", "seconds", "per_seed", "note")  # then the params


def is_acrl_model(path: Path) -> bool:
    """A safetensors file whose complete header names acrl's model format."""
    start = _read(path, 8)
    if start is None or len(start) < 8:
        return False
    size = int.from_bytes(start, "little")
    if not 0 < size <= MAX_HEADER:
        return False
    header = (_read(path, 8 + size) or b"")[8:]
    return len(header) == size and b'"format":"acrl-model"' in header.replace(b" ", b"")


def is_run_config(path: Path) -> bool:
    """A config.yaml as ``acrl train`` writes it: a mapping with env_id and hyperparams."""
    data = _small_text(path)
    if data is None:
        return False
    try:
        config = yaml.safe_load(data)
    except yaml.YAMLError:
        return False
    return isinstance(config, dict) and "env_id" in config and "hyperparams" in config


def is_summary(path: Path) -> bool:
    """A summary.json as ``acrl train --seeds`` writes it."""
    data = _small_text(path)
    if data is None:
        return False
    try:
        summary = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(summary, dict)
        and isinstance(summary.get("seeds"), list)
        and ("solved" in summary)
    )


def written_by_acrl(path: Path, check: Callable[[Path], bool] | None = None) -> bool:
    """Whether ``path`` holds what acrl writes under its name (``check``, by default
    ``check_for`` its name in a run directory), or nothing at all (an empty file: nothing in
    it to lose)."""
    return _read(path, 1) == b"" or (check or check_for(path.name))(path)


def check_for(name: str) -> Callable[[Path], bool]:
    """The content check for a file that acrl names ``name`` in a run directory."""
    if name in NAMED:
        return NAMED[name]
    if name.endswith(".acrl"):
        return is_acrl_model
    if name.endswith(".mp4"):
        return _is_mp4
    if name.startswith("events.out.tfevents."):
        return _is_event_file
    raise ValueError(f"{name} is not a name acrl gives a run's file")


def _csv_log(columns: tuple[str, ...], more: bool = False) -> Callable[[Path], bool]:
    """A CSV log whose first line is acrl's header for it, or the start of that header (a
    kill can cut it; acrl's columns have not changed since its first release); ``more``:
    columns of the file's own may follow."""
    header = ",".join(columns).encode()

    def check(path: Path) -> bool:
        line = _head(path).split(b"\n", 1)[0].rstrip(b"\r")
        return bool(line) and (header.startswith(line) or more and line.startswith(header))

    return check


def _is_npy(path: Path) -> bool:
    return _head(path).startswith(b"\x93NUMPY")


def _is_matplotlib_png(path: Path) -> bool:
    head = _head(path)
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Software\x00Matplotlib" in head


def _is_best_settings(path: Path) -> bool:
    return _head(path).startswith(BEST_START)


def _is_report(path: Path) -> bool:
    return _head(path).startswith(REPORT_START)


def _is_onnx(path: Path) -> bool:
    """An ONNX model that PyTorch's exporter wrote (its producer_name field, early on)."""
    return b"\x12\x07pytorch" in _head(path)[:16]


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip with a code/ folder and constants (the directory only is
    read; nothing in it is unpickled)."""
    if _read(path, 0) is None:
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("/data.pkl") for n in names)


def _is_event_file(path: Path) -> bool:
    return b"brain.Event:" in _head(path)[:64]


def _is_mp4(path: Path) -> bool:
    return _head(path)[4:8] == b"ftyp"


def _read(path: Path, size: int) -> bytes | None:
    """Up to ``size`` bytes from the start of ``path`` if it is a regular file (opened
    without following a symlink or waiting on a pipe); None otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _head(path: Path) -> bytes:
    return _read(path, HEAD) or b""


def _small_text(path: Path) -> str | None:
    data = _read(path, CONFIG_BYTES + 1)
    if data is None or len(data) > CONFIG_BYTES:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


NAMED: dict[str, Callable[[Path], bool]] = {
    "model.acrl": is_acrl_model,
    "best_model.acrl": is_acrl_model,
    "config.yaml": is_run_config,
    "summary.json": is_summary,
    "metrics.csv": _csv_log(COLUMNS),
    "episodes.csv": _csv_log(EPISODE_COLUMNS),
    "evaluations.csv": _csv_log(EVALUATION_COLUMNS),
    "advantages.npy": _is_npy,
    "advantages.png": _is_matplotlib_png,
    "learning_curve.png": _is_matplotlib_png,
    "learning_curve-diagnostics.png": _is_matplotlib_png,
    "report.html": _is_report,
    "policy.onnx": _is_onnx,
    "policy.pt": _is_torchscript,
}
# The files acrl tune replaces in a study directory as the study goes on, and their checks.
STUDY_NAMED: dict[str, Callable[[Path], bool]] = {
    "trials.csv": _csv_log(TRIAL_COLUMNS, more=True),
    "best.yml": _is_best_settings,
    "history.png": _is_matplotlib_png,
    "importances.png": _is_matplotlib_png,
}
