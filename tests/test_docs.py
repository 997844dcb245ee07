"""The documentation site builds offline with warnings as errors, and every guide is in it."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_the_docs_build_strictly_and_hold_every_page(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    nav = yaml.safe_load(
        (ROOT / "mkdocs.yml").read_text(),
    )["nav"]
    pages = []
    stack = list(nav)
    while stack:
        item = stack.pop()
        for value in item.values():
            stack.extend(value) if isinstance(value, list) else pages.append(value)
    markdown = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert markdown - {p for p in markdown if p.startswith("examples/")} == set(pages)
    for page in pages:
        built = tmp_path / page.removesuffix(".md").removesuffix("index") / "index.html"
        assert built.is_file(), page
    reference = (tmp_path / "reference" / "index.html").read_text()
    for name in ("EvalCallback", "evaluate_policy", "export_policy", "A3C"):
        assert name in reference
