"""The Python sources follow the project's ruff configuration (``[tool.ruff]`` in pyproject.toml):
lint, import order and format. ``ruff check --fix . && ruff format .`` mends most findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ruff_finds_nothing_to_mend():
    result = _ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_sources_are_formatted():
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
