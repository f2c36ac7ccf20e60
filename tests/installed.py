"""The package as a user installs it: an sdist and a wheel built from a clean copy of the
tree, and a fresh venv holding the wheel, with no node on its PATH (session fixtures, shared
by tests/install and tests/browser; imported by tests/conftest.py).

The copy holds what a clone of the working tree would (tracked and unignored files, current
content), so no build output of the developer's tree (static/, dist/, node_modules/) leaks in.
The wheel is built the standard way, sdist first and the wheel from the sdist
(``python -m build``), which runs the front-end build hook with only the sdist's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 900  # seconds: npm install and two bundlers on a cold cache
INSTALL_TIMEOUT = 900


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, argv))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@dataclass
class Dist:
    """The built sdist and wheel."""

    sdist: Path
    wheel: Path

    def wheel_files(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()


@dataclass
class Venv:
    """A venv and the environment its commands run in (PATH: its bin/ only, so no node)."""

    path: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def run(self, *argv: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv[0]`` from the venv's bin/ with the venv's environment, plus ``env``.

        It runs beside the venv, outside the repository: ``python -c`` imports from its working
        directory first, and must find the installed package, never the source tree.
        """
        return run(
            [str(self.path / "bin" / argv[0]), *argv[1:]],
            env={**self.env, **(env or {})},
            cwd=self.path.parent,
            **kwargs,
        )


def clean_copy(destination: Path) -> Path:
    """Copy the tracked and unignored files of the working tree to ``destination``."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is gone from a clone too
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def make_venv(path: Path, *requirements: str) -> Venv:
    """A fresh venv with ``requirements`` installed, whose PATH holds no node."""
    run([sys.executable, "-m", "venv", str(path)])
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = str(path / "bin")
    assert shutil.which("node", path=env["PATH"]) is None
    venv = Venv(path, env)
    venv.run(
        "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *requirements,
        timeout=INSTALL_TIMEOUT,
    )
    return venv


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Dist:
    """sdist, then the wheel built from it, out of a clean copy of the tree."""
    base = tmp_path_factory.mktemp("dist")
    source = clean_copy(base / "source")
    out = base / "out"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], timeout=BUILD_TIMEOUT)
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return Dist(sdist, wheel)


@pytest.fixture(scope="session")
def installed(dist, tmp_path_factory) -> Venv:
    """The wheel with its ``lab`` extra (and Notebook 7) in a fresh venv."""
    return make_venv(tmp_path_factory.mktemp("installed") / "venv", f"{dist.wheel}[lab]", "notebook>=7")
