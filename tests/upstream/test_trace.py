"""Trace check: upstream's ``jmp shell`` makes the same RPCs with the same outcomes against both exporters.

The same config (upstream type names) is served by upstream's ``jmp run`` and by ours; the
same ``jmp shell … -- j …`` command runs through a recording proxy in front of each, and the
sequences of (method, status code) must match. GetStatus is polled on a timer by the shell,
so after its first probe only its outcomes are compared, not how often it ran.
"""

from __future__ import annotations

import pytest
from interop import error_lines, out, output_lines

pytestmark = pytest.mark.upstream

COMMANDS = {
    "power-on": (("j", "power", "on"), None),
    "power-read": (("j", "power", "read"), None),
    "driver-error": (("j", "deadnet", "address"), None),
    "serial-pipe": (("j", "serial", "pipe"), b"hello trace\n"),
}


def shell_through(proxy, jmp_shell, target: str, command: tuple[str, ...], stdin: bytes | None, **options):
    recording = proxy(target)
    result = jmp_shell(recording.address, *command, stdin=stdin, **options)
    assert recording.wait_until_finished(30), f"calls still open: {recording.sequence()}"
    return result, recording.sequence()


def comparable(sequence: list[tuple[str, str | None]]) -> tuple[list, set]:
    """(the calls in order with repeated GetStatus polls dropped, the set of GetStatus outcomes)."""
    ordered, probed = [], False
    for method, code in sequence:
        if method == "GetStatus":
            if probed:
                continue
            probed = True
        ordered.append((method, code))
    return ordered, {code for method, code in sequence if method == "GetStatus"}


@pytest.mark.parametrize("name", COMMANDS)
def test_same_rpcs_and_status_codes(name, proxy, jmp_shell, upstream_exporter, our_exporter):
    command, stdin = COMMANDS[name]
    theirs, their_trace = shell_through(proxy, jmp_shell, upstream_exporter, command, stdin)
    ours, our_trace = shell_through(proxy, jmp_shell, our_exporter, command, stdin)

    assert comparable(our_trace) == comparable(their_trace), f"upstream: {their_trace}\nours: {our_trace}"
    assert ours.returncode == theirs.returncode, f"upstream:\n{out(theirs)}\nours:\n{out(ours)}"
    assert output_lines(ours) == output_lines(theirs), f"upstream:\n{out(theirs)}\nours:\n{out(ours)}"
    assert error_lines(ours) == error_lines(theirs)
    # the shell's own calls come first: report, status probe, then its log stream
    assert [m for m, _ in comparable(our_trace)[0][:3]] == ["GetReport", "GetStatus", "LogStream"]
    assert ("EndSession", "OK") not in our_trace and all(m != "Reset" for m, _ in our_trace)


def test_power_on_trace_is_what_upstream_documents(proxy, jmp_shell, our_exporter):
    """Against our exporter: shell GetReport/GetStatus/LogStream, then the child's GetReport + DriverCall."""
    result, trace = shell_through(proxy, jmp_shell, our_exporter, ("j", "power", "on"), None)
    assert result.returncode == 0, out(result)
    ordered, status_codes = comparable(trace)
    assert ordered == [
        ("GetReport", "OK"),
        ("GetStatus", "OK"),
        ("LogStream", "CANCELLED"),
        ("GetReport", "OK"),
        ("DriverCall", "OK"),
    ]
    assert status_codes == {"OK"}


@pytest.mark.parametrize("passphrase", ["wrong", None], ids=["wrong", "missing"])
def test_passphrase_refusal_traces_match(passphrase, proxy, jmp_shell, guarded):
    theirs, their_trace = shell_through(
        proxy, jmp_shell, guarded["upstream"], ("j", "power", "on"), None, passphrase=passphrase
    )
    ours, our_trace = shell_through(
        proxy, jmp_shell, guarded["ours"], ("j", "power", "on"), None, passphrase=passphrase
    )
    assert our_trace == their_trace == [("GetReport", "UNAUTHENTICATED")]
    assert ours.returncode == theirs.returncode == 1
    assert (
        error_lines(ours)
        == error_lines(theirs)
        == ["Error: Authentication failed: invalid or missing passphrase"]
    )
