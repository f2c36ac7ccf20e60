"""The wheel in environments it shares: with the oldest grpcio/protobuf it allows, and next to
upstream Jumpstarter 0.9.0 (a JupyterHub image holds many packages)."""

from __future__ import annotations

import re
import tomllib

from test_wheel import STUB_CHECK

from installed import ROOT, make_venv

UPSTREAM = [
    "jumpstarter-cli",
    "jumpstarter-driver-power",
    "jumpstarter-driver-pyserial",
    "jumpstarter-driver-network",
    "jumpstarter-driver-composite",
    "jumpstarter-driver-opendal",
]

# in IPython, as a notebook would. Here `%load_ext jumpstarter_jupyter`: next to upstream, its
# `jumpstarter` package shadows our `jumpstarter.py` shim (the README says so)
LOAD_EXTENSION = """
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "jumpstarter_jupyter")
print("jmp" in ip.magics_manager.magics["line"])
"""


def floors() -> dict[str, str]:
    """The ``name>=version`` floors of pyproject.toml's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(re.match(r"([\w-]+)>=([\w.]+)", d).groups() for d in project["dependencies"] if ">=" in d)


def test_stubs_load_with_the_floor_grpcio_and_protobuf(dist, tmp_path):
    versions = floors()
    venv = make_venv(
        tmp_path / "floor",
        str(dist.wheel),
        f"grpcio=={versions['grpcio']}",
        f"protobuf=={versions['protobuf']}",
    )
    assert venv.run("python", "-c", STUB_CHECK).stdout.split() == [
        "loaded",
        versions["grpcio"],
        versions["protobuf"],
    ]


def test_wheel_and_upstream_jumpstarter_share_one_venv(dist, tmp_path):
    venv = make_venv(tmp_path / "shared", str(dist.wheel), *(f"{name}==0.9.0" for name in UPSTREAM))
    venv.run("python", "-m", "pip", "check")
    assert "Usage: jmp" in venv.run("jmp", "--help").stdout
    assert venv.run("python", "-c", LOAD_EXTENSION).stdout == "True\n"
    assert venv.run("jumpstarter-jupyter", "--help").returncode == 0
