"""metrics.csv and episodes.csv as a kill can leave them: whole rows told apart from damage.

acrl appends these logs a row at a time, so a kill can leave a last row cut short, a header
cut short (the kill came as the file was started) or NUL bytes where the filesystem had not
written the last block. A row is whole when it ends in a newline, holds no NUL, has a field
per column and a number in each (or nothing: NaN), with an integer step count and a finite
wall time. A resume keeps the whole rows and says what it dropped; a plot skips a damaged
last row with a warning.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acrl.run.atomic import write_atomic

REQUIRED = ("timesteps", "wall_time")  # what a resume and a plot need of every row


@dataclass(frozen=True)
class Log:
    """A CSV log as read: its header, its whole rows and where the damage is."""

    header: list[str] | None  # None: damaged, and no known columns to rebuild it from
    rows: list[list[str]]  # the whole rows, in order
    damaged: list[int]  # line numbers (the header is line 1) of the damaged rows
    lines: int  # lines in the file, the header and a cut last line included
    header_fix: str | None = None  # "cut" or "damaged": the header was rebuilt (or is None)


def parse_log(data: bytes, columns: Sequence[str] | None) -> Log:
    """``data`` (a CSV log's bytes) as a Log; ``columns``: the header acrl writes, which
    replaces one that is cut or damaged (None: no replacement)."""
    lines = data.split(b"\n")
    last_cut = lines[-1] != b""  # no newline after the last line: a kill cut it
    if not last_cut:
        lines.pop()
    if not lines:
        return Log(None if columns is None else list(columns), [], [], 0)
    fields = [_fields(line) for line in lines]
    if last_cut:
        fields[-1] = None
    header, fix = fields[0], None
    if not _is_header(header):
        known = ",".join(columns or ()).encode()
        cut = len(lines) == 1 and last_cut and known.startswith(lines[0].removesuffix(b"\r"))
        fix = "cut" if cut and columns is not None else "damaged"
        header = None if columns is None else list(columns)
    if header is None:
        return Log(None, [], [], len(lines), fix)
    rows, damaged = [], []
    for number, row in enumerate(fields[1:], start=2):
        if row is not None and _is_whole(row, header):
            rows.append(row)
        else:
            damaged.append(number)
    return Log(header, rows, damaged, len(lines), fix)


def _fields(line: bytes) -> list[str] | None:
    """The fields of one terminated line; None if it holds a NUL or is not text."""
    if b"\0" in line:
        return None
    try:
        text = line.decode("utf-8").removesuffix("\r")
        return next(csv.reader([text]), [])
    except (UnicodeDecodeError, csv.Error):
        return None


def _is_header(fields: list[str] | None) -> bool:
    return (
        fields is not None
        and all(fields)
        and len(set(fields)) == len(fields)
        and all(c in fields for c in REQUIRED)
    )


def _is_whole(row: list[str], header: list[str]) -> bool:
    if len(row) != len(header):
        return False
    values: dict[str, float] = {}
    for name, field in zip(header, row, strict=True):
        if field:
            try:
                values[name] = float(field)
            except ValueError:
                return False
    if not all(math.isfinite(values.get(c, math.nan)) for c in REQUIRED):
        return False
    return values["timesteps"].is_integer()


def read_log(path: Path, columns: Sequence[str] | None) -> Log:
    return parse_log(path.read_bytes(), columns)


def rewrite_log(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Replace ``path`` by ``header`` and ``rows``, atomically (temporary file, fsync,
    rename), so that a kill during the repair leaves the old file or the new one."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows([header, *rows])
    write_atomic(path, text.getvalue().encode())


def repair_notes(name: str, log: Log, kept: int) -> list[str]:
    """What a repair of ``log`` (the file ``name``) did, one line each; ``kept``: the rows it
    kept."""
    notes, rows = [], f"{kept} row{'' if kept == 1 else 's'} kept"
    if log.header_fix == "cut":
        notes.append(f"{name}: rebuilt a header cut by a kill from the known columns")
    elif log.header_fix == "damaged":
        notes.append(f"{name}: rebuilt a damaged header from the known columns")
    if log.damaged == [log.lines]:
        notes.append(f"{name}: dropped a damaged last row (cut by a kill); {rows}")
    elif log.damaged:
        where = ", ".join(map(str, log.damaged[:5])) + (", ..." if len(log.damaged) > 5 else "")
        notes.append(f"{name}: dropped {len(log.damaged)} damaged rows (lines {where}); {rows}")
    return notes


def report(notes: Sequence[str], warning: bool = False) -> None:
    """Each note as one ``acrl:`` line on stderr."""
    for note in notes:
        print(f"acrl: {'warning: ' if warning else ''}{note}", file=sys.stderr, flush=True)
