"""`make bench QUICK=1` keeps working: every measurement runs on every side and is reported.

The figures themselves are never asserted (timing claims live in ``benchmarks/``); this
checks the harness: exporters start, each side's client runs, the table and JSON appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from figures import MEASUREMENTS  # noqa: E402

GROWTH = {"flood_rss"}  # a difference, which is 0 or below when the kernel gives memory back


@pytest.mark.upstream
def test_quick_bench_measures_every_figure_on_every_side(tmp_path):
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )  # the farm: papermill runs
    result = json.loads(output.read_text())
    assert result["errors"] == [], done.stderr[-3000:]
    assert done.returncode == 0
    measured = {row["key"]: row["sides"] for row in result["rows"]}
    for measurement in MEASUREMENTS:
        for row in measurement.rows:
            assert set(measured[row]) == set(measurement.sides), row
            floor = -float("inf") if row in GROWTH else 0
            assert all(side["median"] > floor for side in measured[row].values()), row
    assert "ours/upstream" in done.stdout and "QUICK MODE" in done.stdout
    assert result["machine"]["cores"] >= 1 and result["quick"] is True
