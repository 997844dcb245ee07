"""acrl report: one self-contained HTML file, opened by a real browser (headless Chromium,
network off) that renders every figure."""

import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.test_cli import acrl, assert_user_error

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    result = acrl(
        "train", "CartPole-v1", "--seeds", "0,1", "--timesteps", "6000", "--eval-every", "2000",
        "--eval-episodes", "2", "--video-every", "3000", "--run-dir", root / "cartpole",
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root / "cartpole"


def chromium(*args):
    assert CHROMIUM, "Chromium is missing: `make setup` installs Debian's chromium package"
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu"]
    command += ["--disable-dev-shm-usage", *OFFLINE, "--virtual-time-budget=20000", *args]
    return subprocess.run(command, capture_output=True, timeout=120)


def test_the_report_renders_every_figure_offline_in_a_browser(runs, tmp_path):
    result = acrl("report", runs, "--out", tmp_path / "report.html")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # nothing to fetch
    figures = re.findall(r'id="figure-(\d+)"', page)
    assert len(figures) == 4  # curves, diagnostics, advantages, the policy/value slice
    assert page.count("<video") == len(list(runs.glob("seed-*/videos/*.mp4"))) >= 2
    dom = chromium("--dump-dom", (tmp_path / "report.html").as_uri()).stdout.decode()
    for number in figures:  # Plotly drew each one: an svg inside its div
        after = dom.split(f'id="figure-{number}"', 1)[1].split('id="figure-', 1)[0]
        assert 'class="main-svg"' in after, f"figure {number} was not drawn"
    assert dom.count("<video") == page.count("<video")
    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,2400", f"--screenshot={shot}", (tmp_path / "report.html").as_uri())
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1200) and pixels.std() > 10 and (pixels < 128).mean() > 0.005


def test_report_mistakes_are_one_line(runs, tmp_path):
    assert_user_error(acrl("report", runs, "--out", tmp_path / "r.png"), "--out must name")
    assert_user_error(acrl("report", tmp_path), "is not a run directory")
