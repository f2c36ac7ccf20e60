"""Which client classes a connection imports: an exporter names them, so only trusted ones load
(ours, entry-point packages, and what JMP_DRIVERS_ALLOW allows, as upstream's client reads it)."""

from __future__ import annotations

import logging
import sys

import pytest

from jumpstarter_jupyter.client import GenericClient, connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from support import serving, write_package

DRIVER = """
from dataclasses import dataclass
from jumpstarter_jupyter.driver import Driver, export


@dataclass
class Outsider(Driver):
    client = "outsider.client.OutsiderClient"

    @export
    def hello(self) -> str:
        return "hello"
"""

CLIENT = """
from jumpstarter_jupyter.client import DriverClient


class OutsiderClient(DriverClient):
    def hello(self) -> str:
        return self.call("hello")
"""


@pytest.fixture
def outsider(tmp_path, monkeypatch):
    """An exporter serving a driver from a package that registers no entry point."""
    write_package(tmp_path, "outsider", {"driver.py": DRIVER, "client.py": CLIENT})
    monkeypatch.syspath_prepend(str(tmp_path))
    from outsider.driver import Outsider

    root = Composite()
    root.children = {"thing": Outsider()}
    with serving(root) as exporter:
        yield exporter.address
    for name in [m for m in sys.modules if m == "outsider" or m.startswith("outsider.")]:
        del sys.modules[name]


def client_of(address: str):
    with connect(address) as dut:
        return type(dut.thing), dut.thing.hello() if hasattr(dut.thing, "hello") else None


def test_an_unlisted_client_class_is_not_imported(outsider, monkeypatch, caplog):
    monkeypatch.delenv("JMP_DRIVERS_ALLOW", raising=False)
    with caplog.at_level(logging.WARNING):
        cls, hello = client_of(outsider)
    assert cls is GenericClient and hello == "hello"  # the generic client still calls it
    assert "outsider.client" not in sys.modules
    assert [r.getMessage() for r in caplog.records] == [
        "thing: client class outsider.client.OutsiderClient not allowed, using the generic client "
        "(allow it with JMP_DRIVERS_ALLOW)"
    ]


@pytest.mark.parametrize("allow", ["outsider.*", "vendor.*,outsider.client.*", "UNSAFE"])
def test_jmp_drivers_allow_lets_a_client_class_load(outsider, monkeypatch, allow):
    monkeypatch.setenv("JMP_DRIVERS_ALLOW", allow)
    cls, hello = client_of(outsider)
    assert cls.__name__ == "OutsiderClient" and hello == "hello"


def test_patterns_that_do_not_match_keep_the_generic_client(outsider, monkeypatch):
    monkeypatch.setenv("JMP_DRIVERS_ALLOW", "outsider,vendor.*")  # globs on the full class path
    assert client_of(outsider)[0] is GenericClient
    assert "outsider.client" not in sys.modules


def test_every_upstream_client_our_drivers_report_maps_back_to_their_client():
    """Each interface declares its upstream names once (its common.py): what a driver reports to
    upstream clients is what our client, connected to an upstream exporter, maps back."""
    import importlib

    from jumpstarter_jupyter.client.tree import upstream_clients
    from jumpstarter_jupyter.drivers import BUILTIN

    table = upstream_clients()
    for path in BUILTIN.values():
        module, _, name = path.rpartition(".")
        driver = getattr(importlib.import_module(module), name)
        if driver.upstream_client is None:  # no upstream counterpart (a meter, a debugger): reports ours
            continue
        assert driver.upstream_client in table, f"{path} reports {driver.upstream_client}: not in the table"
        if driver is Composite or not issubclass(driver, Composite):  # boards have richer clients
            assert table[driver.upstream_client] == driver.client, path


def test_connecting_to_our_exporter_reads_no_upstream_table():
    """Our exporter names our client classes: connect() imports no other interface's common.py."""
    import subprocess

    from jumpstarter_jupyter.drivers.power.driver import MockPower

    code = (
        "import sys; from jumpstarter_jupyter import connect\n"
        "with connect(sys.argv[1]) as dut:\n"
        "    dut.on()\n"
        "print(sorted(m for m in sys.modules if m.endswith('.common')))"
    )
    with serving(MockPower()) as exporter:
        out = subprocess.run(
            [sys.executable, "-c", code, exporter.address],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    assert out.strip() == "['jumpstarter_jupyter.drivers.power.common']"
