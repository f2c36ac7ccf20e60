"""The README's systemd unit for the lab host's exporter passes ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "examples" / "jumpstarter-exporter.service"


def test_the_exporter_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    # the unit names the lab's venv; verify checks that ExecStart exists, so point it at ours
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/lab/venv", sys.prefix))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
