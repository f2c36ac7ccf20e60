"""The documentation site builds as `make docs` builds it (warnings are errors, every
cross-reference resolves, nothing fetched), and the README stays a short door into it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_without_warnings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-n",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(tmp_path / "html"),
            "-d",
            str(tmp_path / "doctrees"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    html = tmp_path / "html"
    for page in (
        "index",
        "getting-started",
        "drivers/power",
        "lab/sharing",
        "interop/upstream",
        "develop/writing-a-driver",
        "performance",
        "reliability",
        "api/clients",
        "notebooks/bringup",
    ):
        assert (html / f"{page}.html").exists(), page
    # generated, not copied: the config keys and client methods come from the code, the figures from JSON
    power = (html / "drivers" / "power.html").read_text()
    assert "voltage" in power and "cycle()" in power
    assert "Measured " in (html / "performance.html").read_text()
    assert "exporter RSS" in (html / "reliability.html").read_text()
    # the executed notebook shows its outputs (the board's uname) and no widget view
    bringup = (html / "notebooks" / "bringup.html").read_text()
    assert "Linux jumpstarter" in bringup and "widget-view" not in bringup


def test_the_readme_is_short_and_its_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    links = re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]+)\)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).exists(), link
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", readme)  # nothing dated: figures live in the docs
