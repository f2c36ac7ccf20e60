"""Which client classes a connection imports: an exporter names them, so only trusted ones load
(ours, entry-point packages, and what JMP_DRIVERS_ALLOW allows, as upstream's client reads it)."""

from __future__ import annotations

import logging
import sys

import pytest

from jumpstarter_jupyter.client import GenericClient, connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from support import serving, write_package

DRIVER = '''
from dataclasses import dataclass
from jumpstarter_jupyter.driver import Driver, export


@dataclass
class Outsider(Driver):
    client = "outsider.client.OutsiderClient"

    @export
    def hello(self) -> str:
        return "hello"
'''

CLIENT = '''
from jumpstarter_jupyter.client import DriverClient


class OutsiderClient(DriverClient):
    def hello(self) -> str:
        return self.call("hello")
'''


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
        "(allow it with JMP_DRIVERS_ALLOW)"]


@pytest.mark.parametrize("allow", ["outsider.*", "vendor.*,outsider.client.*", "UNSAFE"])
def test_jmp_drivers_allow_lets_a_client_class_load(outsider, monkeypatch, allow):
    monkeypatch.setenv("JMP_DRIVERS_ALLOW", allow)
    cls, hello = client_of(outsider)
    assert cls.__name__ == "OutsiderClient" and hello == "hello"


def test_patterns_that_do_not_match_keep_the_generic_client(outsider, monkeypatch):
    monkeypatch.setenv("JMP_DRIVERS_ALLOW", "outsider,vendor.*")  # globs on the full class path
    assert client_of(outsider)[0] is GenericClient
    assert "outsider.client" not in sys.modules
