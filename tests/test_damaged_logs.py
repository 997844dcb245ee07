"""metrics.csv and episodes.csv as a kill leaves them (a row or the header cut short, NUL
bytes): --resume repairs them to their whole rows and says so, and `acrl plot` skips a
damaged last row with a warning instead of refusing the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acrl.cli import main
from acrl.plotting.runs import read_columns
from acrl.run.csv_repair import parse_log
from acrl.run.metrics import COLUMNS, EPISODE_COLUMNS, MetricsLog

HEADER = ",".join(COLUMNS).encode() + b"\r\n"
ROW = b"32,2,0.021,1527.3,1,15,15,-0.0255,13.9,0.67,7.9,-0.16,0.0029\r\n"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run of 640 steps: a metrics row every 2 updates, a checkpoint every 128."""
    run = tmp_path_factory.mktemp("logs") / "run"
    argv = ["train", "CartPole-v1", "--timesteps", "640", "--n-envs", "2", "--log-interval", "2"]
    assert main([*argv, "--checkpoint-every", "128", "--run-dir", str(run), "--no-progress"]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path, capsys) -> Path:
    capsys.readouterr()
    return Path(shutil.copytree(finished, tmp_path / "run"))


def last_row_start(data: bytes) -> int:
    return data.rindex(b"\n", 0, len(data) - 1) + 1


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\r\n")[:-1]


def resume(run: Path, capsys) -> list[str]:
    """``acrl train --resume`` to 704 steps; its stderr lines."""
    assert main(["train", "--resume", str(run), "--timesteps", "704", "--no-progress"]) == 0
    return capsys.readouterr().err.strip().splitlines()


def plot(run: Path, capsys) -> list[str]:
    assert main(["plot", str(run), "--out", str(run / "curve.png")]) == 0
    assert (run / "curve.png").stat().st_size > 0
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: last_row_start(data) + 9],  # cut mid-row
        lambda data: data[: last_row_start(data)] + b"\0" * (len(data) - last_row_start(data)),
        lambda data: data[:-1],  # cut between "\r" and "\n"
    ],
    ids=["cut-mid-row", "nul-bytes", "cut-before-newline"],
)
def test_resume_drops_a_damaged_last_metrics_row_says_so_and_plot_works(run, capsys, damage):
    metrics = run / "metrics.csv"
    whole = lines_of(metrics)[:-1]
    metrics.write_bytes(damage(metrics.read_bytes()))
    err = resume(run, capsys)
    expected = (
        f"acrl: metrics.csv: dropped a damaged last row (cut by a kill); {len(whole) - 1} rows kept"
    )
    assert expected in err
    assert not any("Traceback" in line or "episodes.csv" in line for line in err)
    after = lines_of(metrics)
    assert after[: len(whole)] == whole and len(after) > len(whole)  # repaired, then appended
    assert read_columns(metrics)["timesteps"][len(whole) - 1] > 640
    assert plot(run, capsys) == []


def test_resume_drops_a_damaged_last_episodes_row(run, capsys):
    episodes = run / "episodes.csv"
    data = episodes.read_bytes()
    kept = len(lines_of(episodes)) - 2
    episodes.write_bytes(data[: last_row_start(data) + 4])
    err = resume(run, capsys)
    expected = f"acrl: episodes.csv: dropped a damaged last row (cut by a kill); {kept} rows kept"
    assert expected in err
    assert plot(run, capsys) == []


def test_resume_rebuilds_a_header_cut_by_a_kill(run, capsys):
    metrics = run / "metrics.csv"
    metrics.write_bytes(HEADER[:20])
    err = resume(run, capsys)
    assert "acrl: metrics.csv: rebuilt a header cut by a kill from the known columns" in err
    assert lines_of(metrics)[0] == HEADER[:-2] and len(lines_of(metrics)) > 1
    assert plot(run, capsys) == []


def test_plot_skips_a_damaged_last_row_with_a_warning(run, capsys):
    metrics = run / "metrics.csv"
    data = metrics.read_bytes()
    metrics.write_bytes(data + b"\0" * 512)
    rows = len(lines_of(run / "metrics.csv")) - 1
    err = plot(run, capsys)
    assert err == [
        f"acrl: warning: {metrics}: skipped a damaged last row (line {rows + 2}, cut by a kill?)"
    ]
    assert len(read_columns(metrics)["timesteps"]) == rows
    assert metrics.read_bytes() == data + b"\0" * 512  # plot reads, never repairs


def test_plot_refuses_a_damaged_row_in_the_middle_naming_the_line(run, capsys):
    metrics = run / "metrics.csv"
    lines = metrics.read_bytes().split(b"\r\n")
    lines[3] = lines[3][:10]
    metrics.write_bytes(b"\r\n".join(lines))
    assert main(["plot", str(run), "--out", str(run / "curve.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"acrl: error: {metrics}: line 4 is damaged"), err
    assert not (run / "curve.png").exists()


@pytest.mark.parametrize(
    "data, rows, damaged, fix",
    [
        (HEADER + ROW * 3, 3, [], None),
        (HEADER + ROW * 3 + ROW[:7], 3, [5], None),
        (HEADER + ROW * 2 + b"\0" * 64, 2, [4], None),
        (HEADER + ROW + b"\0" * 30 + b"\r\n" + ROW, 2, [3], None),
        (HEADER + ROW + b"32,2,0.1\r\n" + ROW, 2, [3], None),  # too few fields
        (HEADER + ROW.replace(b"32,", b"3.5,") + ROW, 1, [2], None),  # not a step count
        (HEADER + b"\r\n" + ROW, 1, [2], None),  # an empty line
        (HEADER[:11], 0, [], "cut"),
        (HEADER[:-1], 0, [], "cut"),
        (b"\0" * 40 + b"\r\n" + ROW, 1, [], "damaged"),
    ],
)
def test_parse_log_tells_whole_rows_from_damage(data, rows, damaged, fix):
    log = parse_log(data, COLUMNS)
    assert log.header == list(COLUMNS)
    assert (len(log.rows), log.damaged, log.header_fix) == (rows, damaged, fix)
    assert all(row == ROW[:-2].decode().split(",") for row in log.rows)


def test_parse_log_of_an_episodes_file_and_of_unknown_columns():
    header = ",".join(EPISODE_COLUMNS).encode() + b"\r\n"
    log = parse_log(header + b"64,0.02,15,15\r\n64,0.02,", EPISODE_COLUMNS)
    assert (log.rows, log.damaged) == ([["64", "0.02", "15", "15"]], [3])
    assert parse_log(b"\0\0\0", None).header is None


def test_continuing_a_log_through_the_api_repairs_a_cut_last_row_first(tmp_path, capsys):
    metrics = tmp_path / "metrics.csv"
    metrics.write_bytes(HEADER + ROW + ROW[:9])
    MetricsLog(metrics, 32, None)  # as learn(..., reset_num_timesteps=False) opens it
    assert metrics.read_bytes() == HEADER + ROW
    assert capsys.readouterr().err == (
        "acrl: metrics.csv: dropped a damaged last row (cut by a kill); 1 row kept\n"
    )
    assert (tmp_path / "episodes.csv").read_bytes() == b"timesteps,wall_time,return,length\r\n"
