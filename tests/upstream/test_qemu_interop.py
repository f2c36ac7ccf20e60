"""Upstream 0.9.0's `j` and Python client drive our QEMU board (a real guest under QEMU)."""

from __future__ import annotations

import re

import pytest
from interop import out, output_lines

from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.qemu.images import build

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def qemu_exporter(start_our_exporter) -> str:
    build("x86_64")
    return start_our_exporter("qemu.yaml")


def succeeded(result) -> list[str]:
    assert result.returncode == 0, out(result)
    return output_lines(result)


def test_upstream_powers_the_guest_on_and_reads_its_console(peer_python, jmp_shell, qemu_exporter):
    try:
        lines = succeeded(peer_python(qemu_exporter, "qemu_session.py"))
        assert any(line.startswith("console:") and "DUT banner: disk image A" in line for line in lines), (
            lines
        )
        readings = succeeded(jmp_shell(qemu_exporter, "j", "dut", "power", "read"))
        assert readings and all(
            re.fullmatch(r"voltage=5\.0 V  current=[\d.]+ A  apparent_power=[\d.]+ VA", r) for r in readings
        ), readings
    finally:
        succeeded(jmp_shell(qemu_exporter, "j", "dut", "power", "off"))
    with connect(qemu_exporter) as root:
        assert root["dut"].power.state() is False


def test_upstream_serial_pipe_shows_the_boot_and_types_into_the_guest(peer_python, jmp_shell, qemu_exporter):
    try:
        lines = succeeded(peer_python(qemu_exporter, "qemu_pipe.py"))
    finally:
        succeeded(jmp_shell(qemu_exporter, "j", "dut", "power", "off"))
    found = {line.split(":", 1)[0]: line for line in lines if line.startswith(("boot:", "shell:", "exit:"))}
    assert all(
        text in found.get("boot", "") for text in ("Linux version", "DUT banner: disk image A", "login: ")
    ), lines
    assert "piped-42" in found.get("shell", ""), lines
    exit_line = found.get("exit", "")  # Ctrl+C ends upstream's pipe with status 2, the stream still whole
    assert exit_line.startswith("exit: 2 ") and "SIGINT pressed" in exit_line and "lost" not in exit_line, (
        lines
    )
