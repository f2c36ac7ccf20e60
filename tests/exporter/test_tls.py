"""TLS: an exporter with --tls-cert/--tls-key, a client trusting that certificate."""

from __future__ import annotations

import subprocess

import pytest

from jumpstarter_jupyter import ConnectionFailed, connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.exporter import serve
from support import cli_argv


def test_tls_exporter_serves_clients_that_trust_its_certificate(certificate, monkeypatch):
    monkeypatch.delenv("JMP_GRPC_INSECURE", raising=False)
    cert, key = certificate
    root = Composite()
    root.children = {"power": MockPower()}
    exporter = serve(root, listen="127.0.0.1:0", tls_cert=cert, tls_key=key)
    try:
        with connect(exporter.address, tls_ca=cert) as dut:
            dut.power.on()
            assert dut.power.state() is True
        with pytest.raises(ConnectionFailed, match="not reachable"):
            connect(exporter.address)  # plaintext against TLS
        command = cli_argv(exporter.address, "--tls-ca", cert, "power", "off")
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert root.children["power"].powered is False
    finally:
        exporter.stop(grace=0)


def test_tls_needs_both_certificate_and_key(certificate):
    with pytest.raises(ValueError, match="TLS needs both --tls-cert and --tls-key"):
        serve(Composite(), listen="127.0.0.1:0", tls_cert=certificate[0])
